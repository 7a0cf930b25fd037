package unixreceiver

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestNoLeakOver1000Collections collects 1,000 times with node_exporter's
// default collectors: goroutines and open file descriptors stay flat.
func TestNoLeakOver1000Collections(t *testing.T) {
	if isolated(t) {
		return
	}
	r := newTestReceiver(t, createDefaultConfig())
	collect := func() {
		if _, err := r.collectMetrics(); err != nil {
			t.Logf("collection reported: %v", err)
		}
	}
	for i := 0; i < 10; i++ { // let the collectors set up what they keep
		collect()
	}
	g0, fd0 := settledGoroutines(), openFDs(t)
	start := time.Now()
	for i := 0; i < 1000; i++ {
		collect()
	}
	g1, fd1 := settledGoroutines(), openFDs(t)
	t.Logf("1,000 collections in %s; goroutines %d → %d, open fds %d → %d", time.Since(start).Round(time.Millisecond), g0, g1, fd0, fd1)
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if fd1 > fd0+2 {
		t.Errorf("open file descriptors grew from %d to %d", fd0, fd1)
	}
}

func settledGoroutines() int {
	time.Sleep(100 * time.Millisecond)
	return runtime.NumGoroutine()
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
