package remotewriteexporter

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/internal/diskqueue"
)

// layoutRecords opens an earlier layout's queues (the exporter stopped)
// and counts the records they hold.
func layoutRecords(t *testing.T, dir string, count int) int64 {
	t.Helper()
	var n int64
	for i := range count {
		q, err := diskqueue.Open(diskqueue.Options{Dir: filepath.Join(dir, strconv.Itoa(i)), MaxBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		n += q.Stats().Records
		_ = q.Close()
	}
	return n
}

// queueUnder queues 5 rounds of 8 series at timestamps from, with shards
// shards, while nothing listens at the endpoint.
func queueUnder(t *testing.T, dir string, shards int, from int64) {
	t.Helper()
	r := startExporter(t, "http://127.0.0.1:1/api/v1/write", dir, func(cfg *Config) { cfg.Shards = shards })
	for i := range int64(5) {
		if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", from+i, 1, "a", "b", "c", "d", "e", "f", "g", "h")); err != nil {
			t.Fatal(err)
		}
	}
	r.stop(t)
}

// Shutdown while an earlier layout drains (the backend failing) leaves it
// on disk with its data, however the shutdown races the senders; the next
// start delivers it all, in order, and only then removes it.
func TestShutdownDuringDrainKeepsTheOldLayout(t *testing.T) {
	dir := t.TempDir()
	queueUnder(t, dir, 2, 1000)
	s, url := startSink(t)
	old := ""
	for range 5 {
		if err := s.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		before := s.Stats().Faulted
		r := startExporter(t, url, dir, func(cfg *Config) { cfg.Shards = 3 })
		old = filepath.Join(r.exp.dir, "shards-2")
		comptest.WaitFor(t, 5*time.Second, "failed attempts", func() bool { return s.Stats().Faulted > before })
		r.stop(t)
		if n := layoutRecords(t, old, 2); n == 0 {
			t.Fatal("the earlier layout lost its records at shutdown")
		}
	}
	s.ClearFault()
	startExporter(t, url, dir, func(cfg *Config) { cfg.Shards = 3 })
	comptest.WaitFor(t, 10*time.Second, "40 samples", func() bool { return s.Stats().RemoteWrite.Samples >= 40 })
	comptest.WaitFor(t, 5*time.Second, "the drained layout removed", func() bool {
		_, err := os.Stat(old)
		return os.IsNotExist(err)
	})
	if st := s.Stats().RemoteWrite; st.Samples != 40 || st.OutOfOrder != 0 {
		t.Fatalf("%d samples (want 40), %d out of order", st.Samples, st.OutOfOrder)
	}
}

// Two earlier layouts (3 shards, then 2 while the 3 still held data) and a
// current one of 4: the oldest drains first, then the next, then the
// current layout sends: no series goes out of order.
func TestOldLayoutsDrainOldestFirst(t *testing.T) {
	dir := t.TempDir()
	// The 3-shard layout is written first; then, with 2 shards, the
	// 3-shard one cannot drain (nothing listens) and stays while newer data
	// is queued under 2. Name order would put the newer one first.
	queueUnder(t, dir, 3, 1000)
	queueUnder(t, dir, 2, 1005)
	s, url := startSink(t)
	// Slow answers: layouts draining at once would interleave.
	_ = s.SetFault(sink.Fault{Mode: "slow", Delay: sink.Duration(10 * time.Millisecond), For: sink.Duration(time.Minute)})
	r := startExporter(t, url, dir, func(cfg *Config) { cfg.Shards = 4 })
	for i := int64(1010); i < 1015; i++ {
		if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", i, 1, "a", "b", "c", "d", "e", "f", "g", "h")); err != nil {
			t.Fatal(err)
		}
	}
	comptest.WaitFor(t, 20*time.Second, "120 samples", func() bool { return s.Stats().RemoteWrite.Samples >= 120 })
	if st := s.Stats().RemoteWrite; st.Samples != 120 || st.OutOfOrder != 0 || st.Duplicates != 0 {
		t.Fatalf("%d samples (want 120), %d out of order, %d duplicates", st.Samples, st.OutOfOrder, st.Duplicates)
	}
	comptest.WaitFor(t, 5*time.Second, "both earlier layouts removed", func() bool {
		for _, n := range []string{"shards-2", "shards-3"} {
			if _, err := os.Stat(filepath.Join(r.exp.dir, n)); !os.IsNotExist(err) {
				return false
			}
		}
		return true
	})
}

// bigRound is n series whose label values are random (so the requests do
// not compress), about 1 KiB each, at timestamp ts.
func bigRound(n int, ts int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	comptest.AppendIncompressible(newResource(md, "j", "host:1"), n, ms(ts))
	return md
}

// An earlier layout whose reading fails halfway (its directory replaced by
// a file when the sender reaches its second segment) is neither removed nor
// skipped: the current layout waits, and once the directory is back the
// old data goes first, then the new, in order, and the old layout is gone.
func TestOldLayoutReadErrorKeepsIt(t *testing.T) {
	dir := t.TempDir()
	r := startExporter(t, "http://127.0.0.1:1/api/v1/write", dir, func(cfg *Config) {
		cfg.Shards = 1
		cfg.Queue.MaxSize = 4 << 20 // 1 MiB segments
	})
	for i := range int64(6) {
		if err := r.exp.ConsumeMetrics(context.Background(), bigRound(400, 1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	r.stop(t)
	segs, _ := filepath.Glob(filepath.Join(dir, "remote_write", "shards-1", "0", "*"))
	if len(segs) < 3 { // a checkpoint and at least two segments
		t.Fatalf("want the old layout over several segments, got %v", segs)
	}

	s, url := startSink(t)
	_ = s.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Hour)})
	r2 := startExporter(t, url, dir, func(cfg *Config) {
		cfg.Shards = 2
		cfg.Queue.MaxSize = 8 << 20
	})
	comptest.WaitFor(t, 5*time.Second, "the old layout's first request", func() bool { return s.Stats().Faulted > 0 })
	old := filepath.Join(r2.exp.dir, "shards-1", "0")
	away := filepath.Join(t.TempDir(), "away")
	if err := os.Rename(old, away); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := int64(1006); i < 1009; i++ {
		if err := r2.exp.ConsumeMetrics(context.Background(), bigRound(400, i)); err != nil {
			t.Fatal(err)
		}
	}
	s.ClearFault()
	comptest.WaitFor(t, 5*time.Second, "a failed read of the old layout", func() bool {
		return r2.counter(t, "otelcol_remote_write_queue_errors") > 0
	})
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(r2.exp.dir, "shards-1")); err != nil {
		t.Fatalf("the old layout was removed while it still held data: %v", err)
	}
	// Only the old layout's first segment can have gone; nothing of the
	// current layout (rounds 1006 to 1008) may.
	if n := s.Stats().RemoteWrite.Samples; n >= 6*400 {
		t.Fatalf("%d samples delivered while the old layout could not be read: more than it holds, the current layout sent", n)
	}
	if err := os.Remove(old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, old); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 20*time.Second, "every sample", func() bool { return s.Stats().RemoteWrite.Samples >= 9*400 })
	if st := s.Stats().RemoteWrite; st.OutOfOrder != 0 {
		t.Fatalf("%d samples out of order", st.OutOfOrder)
	}
	comptest.WaitFor(t, 5*time.Second, "the drained layout removed", func() bool {
		_, err := os.Stat(filepath.Join(r2.exp.dir, "shards-1"))
		return os.IsNotExist(err)
	})
}
