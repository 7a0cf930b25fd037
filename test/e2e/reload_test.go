package e2e

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// `systemctl reload sluice` sends SIGHUP (deploy/systemd/sluice.service).
// Sluice must apply the changed config in the same process: here the exporter
// moves from one backend to another and the health check to another port.
func TestSIGHUPReloadsConfigWithoutRestart(t *testing.T) {
	sinkA, addrA := startSink(t)
	sinkB, addrB := startSink(t)
	otlpPort, healthA, healthB := freePort(t), freePort(t), freePort(t)

	dir := t.TempDir()
	path := writeFile(t, dir, "config.yaml", forwardConfig(otlpPort, addrA, healthA))
	p := startSluice(t, path)
	pid := p.cmd.Process.Pid
	p.waitHealthy(t, healthA, 30*time.Second, "sluice")

	sendOTLP(t, otlpPort, gauge("before_reload", 3))
	waitFor(t, 10*time.Second, "before_reload at backend A", func() bool { return sinkA.Stats().Metrics["before_reload"] == 3 })

	// Rewrite the file in place (as an editor or config management would) and reload.
	if err := os.WriteFile(path, []byte(forwardConfig(otlpPort, addrB, healthB)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the reloaded health check on the new port", func() bool { return healthy(healthB) })
	if healthy(healthA) {
		t.Error("the old health check port still answers after the reload")
	}

	sendOTLP(t, otlpPort, gauge("after_reload", 5))
	waitFor(t, 10*time.Second, "after_reload at backend B", func() bool { return sinkB.Stats().Metrics["after_reload"] == 5 })
	if n := sinkA.Stats().Metrics["after_reload"]; n != 0 {
		t.Errorf("backend A received %d after_reload points; the reload did not move the exporter", n)
	}
	if !p.running() || p.cmd.Process.Pid != pid {
		t.Fatal("sluice restarted or exited on SIGHUP; it must reload in place")
	}
}
