// Package systems starts the systems Sluice's benchmarks compare, each on the
// same workload: scrape these loopback targets (job "loadgen", path /metrics)
// at this interval, remote-write (protocol 1.0) everything to this URL, keep
// state in this directory, listen only on 127.0.0.1. The runner
// (bench/scenario) measures the process it gets back; a restart after kill -9
// is Start again with the same Spec.
//
// Sluice itself (sluice.go, bin/sluice from `make build`), then the
// references, in All's order:
//
//   - contrib, contrib-wal: the contrib collector pipeline (prometheus
//     receiver -> batch -> prometheus_remote_write exporter, v0.160.0) that
//     bench/reference/install builds with ocb, with the exporter's in-memory
//     queue and with its WAL (contrib.go);
//   - vmagent: the current release (VmagentRelease, v1.151.0), which
//     bench/reference/install builds with `go install`, the reference every
//     ratio is taken against; vmagent-1.79 is Debian's victoria-metrics
//     package, a 2022 build kept as a second row (debian.go);
//   - prometheus-agent: Prometheus 2.42 from Debian's prometheus package in
//     agent mode (debian.go).
//
// Each runs with its production defaults except where a setting is needed to
// deliver the same series Prometheus would, or to deliver within seconds as
// the others do; every deviation is listed, with its reason, on the system's
// type. Scrape timeout is the interval capped at 10 s, because every system
// rejects a timeout longer than the interval and 10 s is Prometheus' default.
//
// Binaries are found by absolute path, never through $PATH, so a run measures
// exactly what bench/reference/install put there: /usr/bin/{vmagent,prometheus}
// from the Debian packages, and the contrib and vmagent builds under the checkout's
// bench/reference/_build/ (the checkout is $SLUICE_REPO, else the nearest
// directory above the working directory whose go.mod is this module's, which
// covers both `go test ./bench/systems/` and `go run ./bench/cmd/bench`).
package systems

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Spec is the workload a system is started with.
type Spec struct {
	Targets        []string      // host:port of loopback scrape targets (path /metrics)
	Interval       time.Duration // scrape interval; the scrape timeout is the same, capped at 10 s
	RemoteWriteURL string        // e.g. http://127.0.0.1:9201/api/v1/write
	Dir            string        // state directory (config, log, WAL/queue); reused on restart
	Port           int           // a free loopback port for the system's own HTTP listener
	// For the collectors (sluice, contrib): the port of their own telemetry
	// (0: a free one is picked) and of the pprof extension (0: none), so a
	// soak can read queue bytes and goroutines while it runs.
	MetricsPort int
	PprofPort   int
}

// validate names the field at fault. needURL is false for the scrape-only
// systems, which deliver nowhere.
func (s Spec) validate(needURL bool) error {
	var errs []error
	if len(s.Targets) == 0 {
		errs = append(errs, errors.New("Spec.Targets is empty"))
	}
	if s.Interval < time.Millisecond {
		errs = append(errs, fmt.Errorf("Spec.Interval must be >= 1ms, got %s", s.Interval))
	}
	if needURL && s.RemoteWriteURL == "" {
		errs = append(errs, errors.New("Spec.RemoteWriteURL is empty"))
	}
	if s.Dir == "" {
		errs = append(errs, errors.New("Spec.Dir is empty"))
	}
	if s.Port <= 0 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("Spec.Port must be a TCP port, got %d", s.Port))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("systems: %w", err)
	}
	return nil
}

// promDuration writes d the way Prometheus-style configs parse it: they take
// "10s" or "1500ms" but not Go's "1.5s" or "1m0s".
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

func (s Spec) interval() string { return promDuration(s.Interval) }
func (s Spec) timeout() string  { return promDuration(min(s.Interval, 10*time.Second)) }

// listen is the loopback address of the system's own HTTP listener.
func (s Spec) listen() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// System is one thing the benchmarks run.
type System interface {
	// Name is the system's row in the results: "contrib", "contrib-wal",
	// "vmagent" (the current release), "vmagent-1.79" (Debian's), "prometheus-agent".
	Name() string
	// Available is nil when the system's binary is there, else an error
	// saying how to get it.
	Available() error
	// Start writes the system's config under spec.Dir and starts it. Restart
	// (after a kill, say) is Start again with the same Spec: state in Dir is
	// picked up, config and log are rewritten and appended to.
	Start(spec Spec) (*Process, error)
	// Version names what runs, for the results file.
	Version() string
}

// All returns Sluice and the reference systems, in the order the tables
// list them.
func All() []System {
	return []System{sluice{}, contrib{}, contrib{wal: true}, vmagent{}, vmagent{debian: true}, promAgent{}}
}

// installHint is how every missing reference is put in place.
const installHint = "run bench/reference/install as root (make bench does)"

// binary returns path if it is an executable file, else an error naming the fix.
func binary(path, what string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %s not found: %s", what, path, installHint)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s: %s is not an executable file: %s", what, path, installHint)
	}
	return path, nil
}

// modulePath is what go.mod at the checkout's root declares.
const modulePath = "github.com/sluicehq/sluice"

// repoRoot is the Sluice checkout: $SLUICE_REPO, else the nearest directory
// at or above the working directory whose go.mod declares this module.
func repoRoot() (string, error) {
	if r := os.Getenv("SLUICE_REPO"); r != "" {
		return filepath.Abs(r)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if declaresModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no Sluice checkout at or above %s: set SLUICE_REPO", wd)
		}
	}
}

// declaresModule reports whether the go.mod at path is the root module's; a
// nested module (such as the generated contrib reference) is not.
func declaresModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(mod), `"`) == modulePath
		}
	}
	return false
}

// inRepo returns the absolute path of rel inside the checkout.
func inRepo(rel ...string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(append([]string{root}, rel...)...), nil
}

// quoted renders targets as a YAML flow list of double-quoted strings.
func quoted(targets []string) string {
	q := make([]string, len(targets))
	for i, t := range targets {
		q[i] = fmt.Sprintf("%q", t)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// writeConfig writes a system's config into its state directory, creating
// the directory on first start.
func writeConfig(dir, name, content string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("systems: state directory: %w", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return "", fmt.Errorf("systems: writing config: %w", err)
	}
	return path, nil
}

// version runs bin with args and returns the first line it prints.
func version(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil && line == "" {
		return "unknown"
	}
	return line
}
