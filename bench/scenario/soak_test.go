package scenario

import (
	"strings"
	"testing"
	"time"
)

func TestSumMetricAddsTheShardsOfOneMetricOnly(t *testing.T) {
	exposition := `# HELP otelcol_remote_write_queue_size_bytes Bytes in the queue.
# TYPE otelcol_remote_write_queue_size_bytes gauge
otelcol_remote_write_queue_size_bytes{exporter="remote_write",shard="0"} 1000
otelcol_remote_write_queue_size_bytes{exporter="remote_write",shard="1"} 2.5e3
otelcol_remote_write_queue_records{exporter="remote_write",shard="0"} 7
otelcol_remote_write_queue_size_other 99
`
	if got := sumMetric(strings.NewReader(exposition), "otelcol_remote_write_queue_size"); got != 3500 {
		t.Fatalf("sum = %d, want 3500", got)
	}
	if got := sumMetric(strings.NewReader("up 1\n"), "otelcol_remote_write_queue_size"); got != -1 {
		t.Fatalf("sum of a missing metric = %d, want -1", got)
	}
}

func TestJudgeFlagsGrowthAndAnUndrainedQueue(t *testing.T) {
	p := Soak{CycleLength: 10 * time.Second, OutageFor: 3 * time.Second}
	var pts []SoakPoint
	// Three cycles: the queue fills during each outage and drains, but in
	// cycle 3 RSS grows 30% and the queue stays at 50 MiB.
	for c := 0; c < 3; c++ {
		for s := 0; s < 10; s++ {
			q := int64(100 << 20)
			if s >= 3 {
				q = 1 << 20
				if c == 2 {
					q = 50 << 20
				}
			}
			rss := int64(200 << 20)
			if c == 2 {
				rss = 260 << 20
			}
			pts = append(pts, SoakPoint{At: time.Duration(c*10+s) * time.Second, RSS: rss, Goroutines: 80 + c, QueueBytes: q, Outage: s < 3})
		}
	}
	// The previous cycle's last reading, taken just past its end with its
	// own view (no outage), must not count as cycle 2 draining at once.
	pts[10].Outage, pts[10].QueueBytes = false, 0
	r := SoakResult{Points: pts, Served: 10, Received: 10}
	for c := 0; c < 3; c++ {
		r.Cycles = append(r.Cycles, summarizeCycle(c, false, p, pts, time.Duration(c)*p.CycleLength))
	}
	if d := r.Cycles[0].DrainSeconds; d != 0 {
		t.Errorf("cycle 1 drained in %v s, want 0 (the first point after the outage)", d)
	}
	if d := r.Cycles[1].DrainSeconds; d != 0 {
		t.Errorf("cycle 2 drained in %v s, want 0", d)
	}
	if d := r.Cycles[2].DrainSeconds; d != -1 {
		t.Errorf("cycle 3 drained in %v s, want -1 (never under a tenth of its peak)", d)
	}
	v := Judge(r)
	if v.RSSFlat || v.RSSGrowth < 0.29 || v.RSSGrowth > 0.31 {
		t.Errorf("RSS growth %v flat=%v, want 0.30 and not flat", v.RSSGrowth, v.RSSFlat)
	}
	if !v.GoroutinesFlat || v.GoroutineSpread != 1 {
		t.Errorf("goroutine spread %d flat=%v, want 1 and flat", v.GoroutineSpread, v.GoroutinesFlat)
	}
	if v.QueuesDrained || len(v.QueueNotDrained) != 1 || v.QueueNotDrained[0] != 3 {
		t.Errorf("queues drained=%v, not drained %v, want cycle 3 only", v.QueuesDrained, v.QueueNotDrained)
	}
	if !v.NothingLostTwice {
		t.Error("nothing was lost, duplicated or reordered, but the verdict says otherwise")
	}
}
