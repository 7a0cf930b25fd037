// Package systems starts each system the benchmarks compare — Sluice and the
// references: the contrib collector pipeline (in-memory queue and WAL),
// vmagent and Prometheus in agent mode — on one workload: scrape these
// loopback targets at this interval and remote-write to this URL, keeping
// state in this directory. bench/reference/install installs the references.
//
// Settings are each system's production defaults unless noted in its file;
// every listener is on 127.0.0.1.
package systems

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Spec is the workload a system is started with.
type Spec struct {
	Targets        []string      // host:port of loopback scrape targets (path /metrics)
	Interval       time.Duration // scrape interval; the scrape timeout is the same, capped at 10 s
	RemoteWriteURL string        // e.g. http://127.0.0.1:9201/api/v1/write
	Dir            string        // state directory (WAL, queue, config, log); reused on restart
	Port           int           // a free loopback port for the system's own HTTP listener
}

func (s Spec) timeout() time.Duration { return min(s.Interval, 10*time.Second) }

// System is one thing the benchmarks run.
type System interface {
	Name() string
	// Available is nil when the system's binary is there, else says how to get it.
	Available() error
	// Start writes the system's config under spec.Dir and starts it. Restart
	// after a kill is Start again with the same Dir.
	Start(spec Spec) (*Process, error)
	// Version names what runs, for the results file.
	Version() string
}

// All returns the reference systems, in the order tables list them.
func All() []System {
	return []System{contrib{wal: false}, contrib{wal: true}, vmagent{}, promAgent{}}
}

// Process is a running system.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Pid is the operating-system process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// start runs bin with args, its output appended to dir/<name>.log.
func start(dir, name, bin string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to timeout, then kills.
func (p *Process) Stop(timeout time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.Kill()
		return fmt.Errorf("did not stop within %s of SIGTERM; killed", timeout)
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() error {
	if p.Exited() {
		return nil
	}
	err := p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	return err
}

// LogTail returns the end of the process's log, for error messages.
func (p *Process) LogTail(n int) string {
	b, _ := os.ReadFile(p.log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// repoRoot is the Sluice checkout: $SLUICE_REPO, else found from this file.
func repoRoot() string {
	if r := os.Getenv("SLUICE_REPO"); r != "" {
		return r
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// findBinary returns the absolute path of a binary or an error naming the fix.
func findBinary(path, hint string) (string, error) {
	if !filepath.IsAbs(path) {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("%s not installed: %s", path, hint)
		}
		return p, nil
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not built: %s", path, hint)
	}
	return path, nil
}

const installHint = "run bench/reference/install (as root)"

// quoted renders targets as a YAML/JSON flow list.
func quoted(targets []string) string {
	q := make([]string, len(targets))
	for i, t := range targets {
		q[i] = fmt.Sprintf("%q", t)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func writeFile(dir, name, content string) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(content), 0o644)
}

// version runs bin with args and returns the first line it prints.
func version(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

var errNoTargets = errors.New("systems: Spec.Targets is empty")
