package remotewriteexporter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/internal/comptest"
)

// Many writers, four shards, a backend that fails on and off: every sample
// arrives, none out of order, none twice (no crash, so no resends).
func TestOrderUnderConcurrency(t *testing.T) {
	s, url := startSink(t)
	r := startExporter(t, url, "", func(cfg *Config) {
		cfg.Shards = 4
		cfg.MaxSamplesPerSend = 7
	})
	stop := make(chan struct{})
	var faults sync.WaitGroup
	faults.Add(1)
	go func() { // 503 for 50 ms out of every 150 ms
		defer faults.Done()
		for {
			select {
			case <-stop:
				s.ClearFault()
				return
			case <-time.After(100 * time.Millisecond):
			}
			_ = s.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(50 * time.Millisecond)})
		}
	}()
	const writers, rounds, perRound = 8, 40, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := make([]string, perRound)
			for i := range names {
				names[i] = fmt.Sprintf("w%d_s%d", w, i)
			}
			for round := range rounds {
				if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", int64(1000+round), float64(round), names...)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := writers * rounds * perRound
	comptest.WaitFor(t, 30*time.Second, fmt.Sprintf("%d samples at the sink", want), func() bool { return s.Stats().RemoteWrite.Samples >= want })
	close(stop)
	faults.Wait()
	st := s.Stats().RemoteWrite
	if st.Samples != want || st.Series != writers*perRound || st.OutOfOrder != 0 || st.Duplicates != 0 {
		t.Fatalf("sink: %d samples (want %d), %d series (want %d), %d out of order, %d duplicates",
			st.Samples, want, st.Series, writers*perRound, st.OutOfOrder, st.Duplicates)
	}
	if got := r.counter(t, "otelcol_remote_write_failed", kind(kindSamples)); got == 0 {
		t.Error("the backend never failed a request: the test did not exercise retries")
	}
}

// What is queued while the backend is down survives a restart of the
// exporter and is delivered afterwards.
func TestQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := startExporter(t, "http://127.0.0.1:1/api/v1/write", dir, nil) // nothing listens there
	for i := range 10 {
		if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", int64(1000+i), float64(i), "a", "b", "c")); err != nil {
			t.Fatal(err)
		}
	}
	// The queue's telemetry shows the backlog, labelled with the exporter id.
	if n, ok := r.gauge(t, "otelcol_remote_write_queue_records"); !ok || n < 10 || n > 30 { // 10 batches of 3 series over 4 shards
		t.Errorf("queue_records = %v (found %v), want 10 to 30 (10 batches, 3 series, 4 shards)", n, ok)
	}
	if b, ok := r.gauge(t, "otelcol_remote_write_queue_size"); !ok || b <= 0 {
		t.Errorf("queue_size = %v bytes (found %v), want > 0", b, ok)
	}
	if age, ok := r.gauge(t, "otelcol_remote_write_queue_oldest_age"); !ok || age <= 0 {
		t.Errorf("queue_oldest_age = %v s (found %v), want > 0", age, ok)
	}
	if n, ok := r.gauge(t, "otelcol_remote_write_shards"); !ok || n != 4 {
		t.Errorf("shards = %v (found %v), want 4", n, ok)
	}
	r.stop(t)
	s, url := startSink(t)
	r2 := startExporter(t, url, dir, nil)
	comptest.WaitFor(t, 10*time.Second, "30 samples after the restart", func() bool { return s.Stats().RemoteWrite.Samples == 30 })
	comptest.WaitFor(t, 5*time.Second, "an empty queue", func() bool {
		for _, q := range r2.exp.allQueues() {
			if q.Stats().Records > 0 {
				return false
			}
		}
		return true
	})
	if st := s.Stats().RemoteWrite; st.OutOfOrder != 0 || st.Duplicates != 0 {
		t.Fatalf("%d out of order, %d duplicates", st.OutOfOrder, st.Duplicates)
	}
}

// A new shard count: the data queued under the old one goes first, so no
// series goes out of order, and the old layout is removed once drained.
func TestShardCountChangeDrainsOldLayoutFirst(t *testing.T) {
	dir := t.TempDir()
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	r := startExporter(t, "http://127.0.0.1:1/api/v1/write", dir, func(cfg *Config) { cfg.Shards = 2 })
	for i := range 5 {
		if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", int64(1000+i), 1, names...)); err != nil {
			t.Fatal(err)
		}
	}
	r.stop(t)
	s, url := startSink(t)
	s.SetFault(sink.Fault{Mode: "slow", Delay: sink.Duration(20 * time.Millisecond), For: sink.Duration(time.Second)})
	r2 := startExporter(t, url, dir, func(cfg *Config) { cfg.Shards = 3 })
	for i := 5; i < 10; i++ {
		if err := r2.exp.ConsumeMetrics(context.Background(), gauges("j", int64(1000+i), 1, names...)); err != nil {
			t.Fatal(err)
		}
	}
	comptest.WaitFor(t, 10*time.Second, "80 samples", func() bool { return s.Stats().RemoteWrite.Samples == 80 })
	if st := s.Stats().RemoteWrite; st.OutOfOrder != 0 || st.Duplicates != 0 {
		t.Fatalf("%d out of order, %d duplicates", st.OutOfOrder, st.Duplicates)
	}
	comptest.WaitFor(t, 5*time.Second, "the old layout removed", func() bool {
		_, err := os.Stat(filepath.Join(r2.exp.dir, "shards-2"))
		return os.IsNotExist(err)
	})
}

func TestDeltaIsRefusedAndCounted(t *testing.T) {
	c, url := startCapture(t, nil)
	r := startExporter(t, url, "", nil)
	md := gauges("j", 1000, 1, "kept")
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	m.SetName("requests")
	sum := m.SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	sum.DataPoints().AppendEmpty().SetTimestamp(ms(1000))
	if err := r.exp.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "the gauge", func() bool { return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 1 })
	if got := r.counter(t, "otelcol_remote_write_dropped", kind(kindSamples), reason(reasonDelta)); got != 1 {
		t.Errorf("dropped delta_temporality = %d, want 1", got)
	}
	if n := len(c.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestSecondProcessOnTheSameQueueIsRefused(t *testing.T) {
	dir := t.TempDir()
	startExporter(t, "http://127.0.0.1:1/api/v1/write", dir, nil)
	cfg := createDefaultConfig()
	cfg.ClientConfig.Endpoint = "http://127.0.0.1:1/api/v1/write"
	cfg.Queue.Directory = dir
	e := newExporter(cfg, exporterSettings())
	err := e.Start(context.Background(), nopHost{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second exporter on one queue: err %v, want 'in use by another process'", err)
	}
}

// kill -9 of a whole exporter at random moments while it takes data and
// the backend fails half the time: after each restart, every sample that
// ConsumeMetrics acknowledged reaches the sink, in order per series.
func TestKillDuringExport(t *testing.T) {
	s, url := startSink(t)
	dir := t.TempDir()
	acked := filepath.Join(dir, "acked")
	const kills = 12
	for i := range kills {
		if i%2 == 0 {
			_ = s.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Hour)})
		} else {
			s.ClearFault()
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SLUICE_EXPORT_CHILD=1", "SLUICE_CHILD_URL="+url, "SLUICE_CHILD_DIR="+dir,
			"SLUICE_CHILD_ACKED="+acked, fmt.Sprintf("SLUICE_CHILD_ROUND=%d", i))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+rand.IntN(300)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	s.ClearFault()
	r := startExporter(t, url, dir, func(cfg *Config) { cfg.Shards = 3 })
	_ = r
	b, err := os.ReadFile(acked)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line != "" {
			want = append(want, line)
		}
	}
	if len(want) < kills {
		t.Fatalf("only %d acknowledged batches over %d runs: the children did not get to work", len(want), kills)
	}
	comptest.WaitFor(t, 30*time.Second, "every acknowledged sample", func() bool {
		for _, w := range want {
			var round, batch int
			fmt.Sscanf(w, "%d %d", &round, &batch)
			if !hasSample(s, round, batch) {
				return false
			}
		}
		return true
	})
	st := s.Stats().RemoteWrite
	if st.OutOfOrder != 0 {
		t.Fatalf("%d samples out of order", st.OutOfOrder)
	}
	// At-least-once: a kill can lose the acknowledgement of the one request
	// in flight per shard, never more. A request here holds at most the 20
	// samples of one batch.
	if bound := kills * 3 * 20; st.Duplicates > bound {
		t.Fatalf("%d duplicates, more than one request per shard per kill (%d)", st.Duplicates, bound)
	}
	t.Logf("%d kills, %d acknowledged batches, all delivered; sink: %d samples, %d duplicates (resent after kills)", kills, len(want), st.Samples, st.Duplicates)
}

// hasSample: did the sink get batch's sample of round's series s0?
func hasSample(s *sink.Sink, round, batch int) bool {
	for _, p := range s.Samples(fmt.Sprintf(`{__name__="s0", instance="host:1", job="r%d"}`, round)) {
		if p.T == int64(1000+batch) {
			return true
		}
	}
	return false
}

// childExport is the killed process: it consumes batches of 20 series of
// job r<round> and appends "round batch" to the acked file after each
// ConsumeMetrics that returned nil.
func childExport() {
	cfg := createDefaultConfig()
	cfg.ClientConfig.Endpoint = os.Getenv("SLUICE_CHILD_URL")
	cfg.Queue.Directory = os.Getenv("SLUICE_CHILD_DIR")
	cfg.Queue.MaxSize = 64 << 20
	cfg.Queue.Sync = "always"
	cfg.Shards = 3
	cfg.RetryOnFailure.InitialInterval = 10 * time.Millisecond
	cfg.RetryOnFailure.MaxInterval = 50 * time.Millisecond
	e := newExporter(cfg, exporterSettings())
	if err := e.Start(context.Background(), nopHost{}); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	f, err := os.OpenFile(os.Getenv("SLUICE_CHILD_ACKED"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		os.Exit(4)
	}
	round := os.Getenv("SLUICE_CHILD_ROUND")
	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	for batch := 0; ; batch++ {
		if err := e.ConsumeMetrics(context.Background(), gauges("r"+round, int64(1000+batch), 1, names...)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(5)
		}
		fmt.Fprintf(f, "%s %d\n", round, batch)
		time.Sleep(5 * time.Millisecond)
	}
}
