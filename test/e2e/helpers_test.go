package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/internal/freeport"
)

// repoRoot is where the Makefile, configs/ and bin/ are.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// sluiceBin is the binary under test: $SLUICE_BIN, or bin/sluice of this tree.
func sluiceBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SLUICE_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "bin", "sluice")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Sluice binary at %s (run `make build` first, or set SLUICE_BIN): %v", bin, err)
	}
	return bin
}

// freePort returns a TCP port on 127.0.0.1 for a process the test starts: one
// that was free a moment ago and that no outgoing connection can take in the
// meantime (internal/freeport).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// syncBuffer collects a process's output; tests read it while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a running Sluice.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// startSluice runs `sluice --config path` and stops it (SIGTERM) at the end
// of the test, printing its output when the test failed.
func startSluice(t *testing.T, config string) *process {
	t.Helper()
	return startSluiceArgs(t, "--config", config)
}

// startSluiceArgs runs sluice with the given arguments, as startSluice does.
func startSluiceArgs(t *testing.T, args ...string) *process {
	t.Helper()
	return startSluiceEnv(t, nil, args...)
}

// startSluiceEnv runs sluice with env added to the environment, as
// startSluice does.
func startSluiceEnv(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(sluiceBin(t), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("sluice did not stop within 15 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("sluice output:\n%s", p.out.String())
		}
	})
	return p
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHealthy waits until the process's health check answers on port, and
// fails at once, not at the timeout, when the process exits first (a port
// taken, a config refused: its output says which).
func (p *process) waitHealthy(t *testing.T, port int, timeout time.Duration, what string) {
	t.Helper()
	waitFor(t, timeout, what+" healthy", func() bool {
		if !p.running() {
			t.Fatalf("%s exited before its health check answered on port %d", what, port)
		}
		return healthy(port)
	})
}

// healthy reports whether a health_check extension answers 200 at port.
func healthy(port int) bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startSink starts a bench/sink recording server on loopback.
func startSink(t *testing.T) (*sink.Sink, string) {
	t.Helper()
	s := sink.New()
	addr, stop, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s, addr
}

// gauge builds one gauge metric with n data points.
func gauge(name string, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for i := 0; i < n; i++ {
		dp := dps.AppendEmpty()
		dp.SetDoubleValue(float64(i))
		dp.Attributes().PutInt("i", int64(i))
	}
	return md
}

// sendOTLP posts metrics to an OTLP/HTTP receiver on port.
func sendOTLP(t *testing.T, port int, md pmetric.Metrics) {
	t.Helper()
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/metrics", port), "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("sending OTLP to 127.0.0.1:%d: %v", port, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sending OTLP to 127.0.0.1:%d: status %d", port, resp.StatusCode)
	}
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// forwardConfig is a pipeline OTLP/HTTP in on otlpPort -> OTLP/HTTP out to
// sinkAddr, with a health check on healthPort and no own-telemetry listener
// (so several instances can run at once).
func forwardConfig(otlpPort int, sinkAddr string, healthPort int) string {
	return strings.NewReplacer(
		"OTLP_PORT", fmt.Sprint(otlpPort),
		"SINK_ADDR", sinkAddr,
		"HEALTH_PORT", fmt.Sprint(healthPort),
	).Replace(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:OTLP_PORT
exporters:
  otlp_http:
    endpoint: http://SINK_ADDR
    sending_queue:
      enabled: false
extensions:
  health_check:
    endpoint: 127.0.0.1:HEALTH_PORT
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [otlp_http]
`)
}
