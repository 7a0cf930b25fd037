package unixreceiver

import (
	"log/slog"
	"syscall"
	"testing"
)

// BenchmarkCollect is one full collection with node_exporter's default
// collectors on this machine, to pdata: cpu-ms/op is the CPU time (user +
// system, all threads) per collection, as the collectors run in parallel.
func BenchmarkCollect(b *testing.B) {
	cfg := createDefaultConfig()
	g, err := gatherer(cfg.flags(), false, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	r, err := newReceiver(cfg, receiverSettings(), nil)
	if err != nil {
		b.Fatal(err)
	}
	r.g, r.instance = g, "benchhost"
	if _, err := r.collectMetrics(); err != nil {
		b.Logf("collection reported: %v", err)
	}
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	points := 0
	for i := 0; i < b.N; i++ {
		md, _ := r.collectMetrics()
		points = md.DataPointCount()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-before)/1e6/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(points), "points")
}

func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
