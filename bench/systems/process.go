package systems

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Process is a running system. Its stdout and stderr go to <Dir>/<name>.log,
// appended across restarts, so a failure can be shown with the system's own
// words (LogTail) and the state directory holds everything about a run.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process has been reaped
	err  error         // the exit error; read only after done is closed

	mu     sync.Mutex
	killed bool // Kill was called: the SIGKILL exit is the expected end
}

// start runs bin with args in dir, its output appended to dir/<name>.log.
func start(dir, name, bin string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("systems: %w", err)
	}
	fmt.Fprintf(logf, "--- %s: %s %q\n", time.Now().UTC().Format(time.RFC3339), bin, args)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// A benchmark or test that dies must not leave a collector scraping and
	// writing behind it: the kernel kills the child when its parent goes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("systems: starting %s: %w", bin, err)
	}
	p := &Process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the operating-system process id, for sampling /proc.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait blocks until the process ends and returns how it ended: nil for exit
// status 0, else an *exec.ExitError.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Stop asks the process to shut down (SIGTERM), as an operator would, and
// waits up to timeout for it; then it kills it. It returns nil only for a
// clean shutdown: exit status 0 within the timeout. A process that had
// already ended by itself is an error too (it crashed), unless Kill ended it.
func (p *Process) Stop(timeout time.Duration) error {
	if p.Exited() {
		if p.wasKilled() {
			return nil
		}
		return p.failure("had already exited", p.err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("systems: %s: SIGTERM: %w", p.name, err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			return p.failure("did not exit cleanly on SIGTERM", p.err)
		}
		return nil
	case <-time.After(timeout):
		_ = p.Kill()
		return p.failure(fmt.Sprintf("did not stop within %s of SIGTERM; killed", timeout), nil)
	}
}

// Kill ends the process with SIGKILL (a crash, as far as the system can
// tell) and waits until it is gone.
func (p *Process) Kill() error {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("systems: %s: SIGKILL: %w", p.name, err)
	}
	<-p.done
	return nil
}

func (p *Process) wasKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

// LogPath is the file the process's output goes to.
func (p *Process) LogPath() string { return p.log }

// LogTail returns the last n bytes of the process's log, for error messages.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// failure is an error that carries the end of the log, since the reason a
// collector failed is usually in what it printed last.
func (p *Process) failure(what string, err error) error {
	if err != nil {
		what = fmt.Sprintf("%s (%v)", what, err)
	}
	return fmt.Errorf("systems: %s (pid %d) %s; end of %s:\n%s", p.name, p.Pid(), what, p.log, p.LogTail(1500))
}
