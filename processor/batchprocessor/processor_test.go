package batchprocessor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sluicehq/sluice/internal/comptest"
)

var (
	bg          = context.Background()
	errBackendA = errors.New("backend: 503 A")
	errBackendB = errors.New("backend: 503 B")
)

func triggerIs(tr string) attribute.KeyValue { return attribute.String("trigger", tr) }

// sequence is from, from+1, ..., n values: what gauge numbers.
func sequence(from, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = int64(from + i)
	}
	return s
}

func TestSizeTrigger(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, func(c *Config) { c.SendBatchSize = 100; c.Timeout = time.Hour })
	for i := range 2 {
		require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", i*40, 40)))
	}
	require.Zero(t, sink.DataPointCount(), "80 of 100 points must wait")
	require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", 80, 40)))
	comptest.WaitFor(t, 5*time.Second, "the batch", func() bool { return sink.DataPointCount() == 120 })
	require.Len(t, sink.AllMetrics(), 1, "one batch: no send_batch_max_size")
	require.Equal(t, map[string][]int64{"a": sequence(0, 120)}, sequences(sink.AllMetrics()))
	// The send is counted once the export returned, just after the sink saw it.
	comptest.WaitFor(t, 5*time.Second, "the size-triggered send counted", func() bool {
		return r.counter(t, "otelcol_batch_sends", triggerIs(triggerSize)) == 1
	})
}

func TestTimeoutTrigger(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, func(c *Config) { c.Timeout = 20 * time.Millisecond })
	require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", 0, 10)))
	comptest.WaitFor(t, 5*time.Second, "the timeout to send", func() bool { return sink.DataPointCount() == 10 })
	comptest.WaitFor(t, 5*time.Second, "the timeout-triggered send counted", func() bool {
		return r.counter(t, "otelcol_batch_sends", triggerIs(triggerTimeout)) == 1
	})
}

// timeout 0: the first request goes at once; what arrives while it is
// being exported goes together right after.
func TestTimeoutZero(t *testing.T) {
	sink := newSlowSink()
	sink.gate = make(chan struct{})
	r := start(t, sink, func(c *Config) { c.Timeout = 0 })
	require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", 0, 10)))
	comptest.WaitFor(t, 5*time.Second, "the first export", func() bool { return sink.calls.Load() == 1 })
	for i := 1; i <= 3; i++ {
		require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", i*10, 10)))
	}
	close(sink.gate)
	comptest.WaitFor(t, 5*time.Second, "all points", func() bool { return sink.DataPointCount() == 40 })
	got := sink.AllMetrics()
	require.Len(t, got, 2)
	require.Equal(t, 30, got[1].DataPointCount())
	require.Equal(t, map[string][]int64{"a": sequence(0, 40)}, sequences(got))
}

// Batches over send_batch_max_size are split; nothing is lost, reordered
// or altered, and each piece stands on its own.
func TestSplitAtMaxSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size, max uint32
		want      []int
	}{
		{"max 25", 10, 25, []int{25, 25, 10}},
		{"no max", 10, 0, []int{60}},
		{"max equal to the data", 10, 60, []int{60}},
		{"size 0, max 7", 0, 7, []int{7, 7, 7, 7, 7, 7, 7, 7, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := new(consumertest.MetricsSink)
			r := start(t, sink, func(c *Config) { c.SendBatchSize = tc.size; c.SendBatchMaxSize = tc.max; c.Timeout = time.Hour })
			in := mixed(2, 3) // 60 points of all five types
			want := flatten(in)
			require.NoError(t, r.p.ConsumeMetrics(bg, in))
			comptest.WaitFor(t, 5*time.Second, "the batches", func() bool { return sink.DataPointCount() == 60 })
			var sizes []int
			for _, md := range sink.AllMetrics() {
				sizes = append(sizes, md.DataPointCount())
			}
			require.Equal(t, tc.want, sizes)
			require.Equal(t, want, flattenAll(sink.AllMetrics()))
		})
	}
}

// tenantCtx is a request context with client metadata, as a receiver with
// include_metadata sets it.
func tenantCtx(md map[string][]string) context.Context {
	return client.NewContext(bg, client.Info{Metadata: client.NewMetadata(md)})
}

func TestMetadataSeparation(t *testing.T) {
	sink := newSlowSink()
	sink.delay = time.Millisecond
	r := start(t, sink, func(c *Config) {
		c.MetadataKeys = []string{"Tenant"}
		c.SendBatchSize = 50
		c.Timeout = 10 * time.Millisecond
	})
	var wg sync.WaitGroup
	for _, tenant := range []string{"acme", "globex"} {
		for caller := range 2 {
			wg.Go(func() {
				ctx := tenantCtx(map[string][]string{"tenant": {tenant}, "authorization": {"secret"}})
				for i := range 20 {
					if err := r.p.ConsumeMetrics(ctx, gauge(tenant, fmt.Sprint(tenant, caller), i*5, 5)); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	// Unset and empty are two more combinations, as in the core processor.
	require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "unset", 0, 1)))
	require.NoError(t, r.p.ConsumeMetrics(tenantCtx(map[string][]string{"tenant": {""}}), gauge("", "empty", 0, 1)))
	require.EqualValues(t, 4, r.gaugeValue(t, "otelcol_batch_metadata_cardinality"))
	r.stop(t)

	require.Equal(t, 402, sink.DataPointCount())
	require.False(t, sink.overlap.Load(), "two exports of one tenant overlapped")
	ctxs := sink.Contexts()
	for i, md := range sink.AllMetrics() {
		tenant := tenantOf(md)
		for _, rm := range md.ResourceMetrics().All() {
			v, _ := rm.Resource().Attributes().Get("tenant")
			require.Equal(t, tenant, v.AsString(), "batch %d mixes tenants", i)
		}
		info := client.FromContext(ctxs[i])
		want := []string{tenant}
		if c, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("caller"); c.AsString() == "unset" {
			want = nil
		}
		require.Equal(t, want, info.Metadata.Get("tenant"), "batch %d", i)
		require.Nil(t, info.Metadata.Get("authorization"), "only metadata_keys are exported")
	}
}

func TestCardinalityLimit(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, func(c *Config) { c.MetadataKeys = []string{"tenant"}; c.MetadataCardinalityLimit = 2 })
	ctx := func(tenant string) context.Context { return tenantCtx(map[string][]string{"tenant": {tenant}}) }
	require.NoError(t, r.p.ConsumeMetrics(ctx("a"), gauge("a", "a", 0, 1)))
	require.NoError(t, r.p.ConsumeMetrics(ctx("b"), gauge("b", "b", 0, 1)))
	err := r.p.ConsumeMetrics(ctx("c"), gauge("c", "c", 0, 1))
	require.EqualError(t, err, "Permanent error: batch processor: metadata_cardinality_limit (2) reached: refusing data with a new combination of metadata_keys values")
	require.True(t, consumererror.IsPermanent(err))
	require.NoError(t, r.p.ConsumeMetrics(ctx("a"), gauge("a", "a", 1, 1)), "known combinations still pass")
	r.stop(t)
	require.Equal(t, 3, sink.DataPointCount())
}

// Concurrent callers, a slow exporter and a small bound: every caller's
// points arrive in the order it sent them, one export at a time.
func TestOrderPerShard(t *testing.T) {
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait_for_result=%v", wait), func(t *testing.T) {
			sink := newSlowSink()
			sink.delay = 200 * time.Microsecond
			r := start(t, sink, func(c *Config) {
				c.SendBatchSize = 30
				c.SendBatchMaxSize = 30
				c.MaxPendingDataPoints = 100
				c.Timeout = 2 * time.Millisecond
				c.WaitForResult = wait
			})
			const callers, requests, points = 8, 60, 7
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					for i := range requests {
						if err := r.p.ConsumeMetrics(bg, gauge("", fmt.Sprint(c), i*points, points)); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			r.stop(t)
			require.False(t, sink.overlap.Load(), "two exports of one shard overlapped")
			got := sequences(sink.AllMetrics())
			require.Len(t, got, callers)
			for c, seq := range got {
				require.Equal(t, sequence(0, requests*points), seq, "caller %s", c)
			}
			for i, md := range sink.AllMetrics() {
				require.LessOrEqual(t, md.DataPointCount(), 30, "batch %d", i)
			}
		})
	}
}

// With a stuck exporter, callers block once max_pending_data_points are
// held, the processor never holds more, and all is delivered once the
// exporter moves again. A blocked caller whose context ends gets its error
// and its data is not taken.
func TestPushBack(t *testing.T) {
	sink := newSlowSink()
	sink.gate = make(chan struct{})
	var maxHeld atomic.Int64
	r := start(t, sink, func(c *Config) {
		c.SendBatchSize = 10
		c.SendBatchMaxSize = 10
		c.MaxPendingDataPoints = 50
		c.Timeout = time.Hour
	})
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			if held, _ := r.p.held(); int64(held) > maxHeld.Load() {
				maxHeld.Store(int64(held))
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	})
	defer func() { close(stopWatch); watch.Wait() }()

	var accepted atomic.Int64
	var callers sync.WaitGroup
	for c := range 20 {
		callers.Go(func() {
			if err := r.p.ConsumeMetrics(bg, gauge("", fmt.Sprint(c), 0, 10)); err != nil {
				t.Error(err)
			}
			accepted.Add(1)
		})
	}
	comptest.WaitFor(t, 5*time.Second, "5 requests to fill the bound", func() bool { return accepted.Load() == 5 })
	time.Sleep(20 * time.Millisecond)
	require.EqualValues(t, 5, accepted.Load(), "callers past the bound must block")
	held, _ := r.p.held()
	require.Equal(t, 50, held)
	require.EqualValues(t, 50, r.gaugeValue(t, "otelcol_batch_pending"))

	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.p.ConsumeMetrics(ctx, gauge("", "late", 0, 10)), context.DeadlineExceeded)

	close(sink.gate)
	callers.Wait()
	r.stop(t)
	require.Equal(t, 200, sink.DataPointCount(), "all accepted data delivered, the refused request not")
	require.NotContains(t, sequences(sink.AllMetrics()), "late")
	require.LessOrEqual(t, maxHeld.Load(), int64(50))
}

// A request larger than the bound is let in alone rather than never.
func TestPushBackOversizedRequest(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, func(c *Config) { c.SendBatchSize = 10; c.MaxPendingDataPoints = 20; c.Timeout = time.Hour })
	require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", 0, 5)))
	done := make(chan error)
	go func() { done <- r.p.ConsumeMetrics(bg, gauge("", "a", 5, 100)) }()
	select {
	case err := <-done:
		t.Fatalf("oversized request let in beside pending data: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	r.stop(t) // refuses the blocked caller
	require.ErrorContains(t, <-done, "shut down")

	// Once the timeout has sent the 5 pending points, the shard is empty
	// and the large request goes in.

	sink2 := new(consumertest.MetricsSink)
	r2 := start(t, sink2, func(c *Config) { c.SendBatchSize = 10; c.MaxPendingDataPoints = 20; c.Timeout = 5 * time.Millisecond })
	require.NoError(t, r2.p.ConsumeMetrics(bg, gauge("", "a", 0, 5)))
	require.NoError(t, r2.p.ConsumeMetrics(bg, gauge("", "a", 5, 100)), "let in once the shard is empty")
	r2.stop(t)
	require.Equal(t, map[string][]int64{"a": sequence(0, 105)}, sequences(sink2.AllMetrics()))
}

// Callers blocked for room when Shutdown comes are refused; what was
// accepted is exported.
func TestShutdownRefusesBlockedCallers(t *testing.T) {
	sink := newSlowSink()
	sink.gate = make(chan struct{})
	r := start(t, sink, func(c *Config) { c.SendBatchSize = 10; c.MaxPendingDataPoints = 10; c.Timeout = time.Hour })
	require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", 0, 10)))
	blocked := make(chan error)
	go func() { blocked <- r.p.ConsumeMetrics(bg, gauge("", "b", 0, 10)) }()
	comptest.WaitFor(t, 5*time.Second, "the caller to block", func() bool {
		s := r.p.single.Load()
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.blocked) == 1
	})
	shutdown := make(chan error)
	go func() { shutdown <- r.p.Shutdown(bg) }()
	require.EqualError(t, <-blocked, "batch processor: shut down, data refused")
	close(sink.gate)
	require.NoError(t, <-shutdown)
	r.done = true
	require.Equal(t, map[string][]int64{"a": sequence(0, 10)}, sequences(sink.AllMetrics()))
}

func TestWaitForResult(t *testing.T) {
	// failOn fails batches that carry the point with value v of caller c.
	failOn := func(c string, v int64, err error) func(pmetric.Metrics) error {
		return func(md pmetric.Metrics) error {
			if slices.Contains(sequences([]pmetric.Metrics{md})[c], v) {
				return err
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name   string
		fail   func(pmetric.Metrics) error
		wantA  []error // errors A's call returns (none: success)
		wantB  []error
		exactA string // A's exact error message, when set
		failed int64  // batches refused
	}{
		{name: "all exported", fail: nil},
		{name: "A's first batch fails", fail: failOn("a", 0, errBackendA), wantA: []error{errBackendA}, failed: 1},
		{name: "the shared batch fails", fail: failOn("b", 20, errBackendA), wantA: []error{errBackendA}, wantB: []error{errBackendA}, failed: 1},
		{
			name: "both batches fail differently",
			fail: func(md pmetric.Metrics) error {
				if err := failOn("a", 0, errBackendA)(md); err != nil {
					return err
				}
				return errBackendB
			},
			wantA: []error{errBackendA, errBackendB}, wantB: []error{errBackendB},
			exactA: "backend: 503 A\nbackend: 503 B", failed: 2,
		},
		{
			name: "both batches fail alike", fail: func(pmetric.Metrics) error { return errBackendA },
			wantA: []error{errBackendA}, wantB: []error{errBackendA}, exactA: "backend: 503 A", failed: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A sends 15 points: its first 10 are batch 1, held in export
			// by the gate; B's 5 points complete batch 2 = A[10..14]+B.
			sink := newSlowSink()
			sink.gate = make(chan struct{})
			sink.fail = tc.fail
			r := start(t, sink, func(c *Config) {
				c.SendBatchSize = 10
				c.SendBatchMaxSize = 10
				c.Timeout = time.Hour
				c.WaitForResult = true
			})
			errA, errB := make(chan error), make(chan error)
			go func() { errA <- r.p.ConsumeMetrics(bg, gauge("", "a", 0, 15)) }()
			comptest.WaitFor(t, 5*time.Second, "batch 1 in export", func() bool { return sink.calls.Load() == 1 })
			go func() { errB <- r.p.ConsumeMetrics(bg, gauge("", "b", 20, 5)) }()
			comptest.WaitFor(t, 5*time.Second, "batch 2 cut", func() bool { held, _ := r.p.held(); return held == 20 })
			close(sink.gate)
			check := func(who string, err error, want []error) {
				if len(want) == 0 {
					require.NoError(t, err, who)
				}
				for _, w := range want {
					require.ErrorIs(t, err, w, who)
				}
			}
			gotA, gotB := <-errA, <-errB
			check("A", gotA, tc.wantA)
			check("B", gotB, tc.wantB)
			if tc.exactA != "" {
				require.EqualError(t, gotA, tc.exactA)
			}
			require.Equal(t, tc.failed, r.counter(t, "otelcol_batch_export_errors"))
		})
	}
}

// With wait_for_result, a successful call returns once its data is out.
func TestWaitForResultReturnsAfterExport(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, func(c *Config) { c.Timeout = 5 * time.Millisecond; c.WaitForResult = true })
	require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", 0, 3)))
	require.Equal(t, 3, sink.DataPointCount())
	errSink := consumertest.NewErr(errBackendA)
	r2 := start(t, errSink, func(c *Config) { c.Timeout = 5 * time.Millisecond; c.WaitForResult = true })
	require.ErrorIs(t, r2.p.ConsumeMetrics(bg, gauge("", "a", 0, 3)), errBackendA)
}

// A caller whose context ends while it waits for the result gets the
// context's error; its data is still exported.
func TestWaitForResultContextEnds(t *testing.T) {
	sink := newSlowSink()
	sink.gate = make(chan struct{})
	r := start(t, sink, func(c *Config) { c.SendBatchSize = 1; c.WaitForResult = true })
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.p.ConsumeMetrics(ctx, gauge("", "a", 0, 3)), context.DeadlineExceeded)
	close(sink.gate)
	comptest.WaitFor(t, 5*time.Second, "the export", func() bool { return sink.DataPointCount() == 3 })
}

func TestShutdownFlushes(t *testing.T) {
	sink := newSlowSink()
	sink.delay = 2 * time.Millisecond
	r := start(t, sink, func(c *Config) { c.SendBatchSize = 100; c.SendBatchMaxSize = 100; c.Timeout = time.Hour })
	for i := range 21 {
		require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", i*50, 50)))
	}
	r.stop(t)
	require.Equal(t, map[string][]int64{"a": sequence(0, 1050)}, sequences(sink.AllMetrics()))
	require.EqualValues(t, 10, r.counter(t, "otelcol_batch_sends", triggerIs(triggerSize)))
	require.EqualValues(t, 1, r.counter(t, "otelcol_batch_sends", triggerIs(triggerShutdown)))
}

func TestRefusedOutsideLifecycle(t *testing.T) {
	for _, keys := range [][]string{nil, {"tenant"}} {
		t.Run(fmt.Sprintf("metadata_keys=%v", keys), func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.MetadataKeys = keys
			p, err := newBatchProcessor(processorSettings(), cfg, consumertest.NewNop())
			require.NoError(t, err)
			require.EqualError(t, p.ConsumeMetrics(bg, gauge("", "a", 0, 1)), "batch processor: not started, data refused")
			require.NoError(t, p.Start(bg, nil))
			require.NoError(t, p.ConsumeMetrics(bg, gauge("", "a", 0, 1)))
			require.NoError(t, p.Shutdown(bg))
			require.EqualError(t, p.ConsumeMetrics(bg, gauge("", "a", 0, 1)), "batch processor: shut down, data refused")
			require.EqualError(t, p.ConsumeMetrics(tenantCtx(map[string][]string{"tenant": {"new"}}), gauge("", "a", 0, 1)), "batch processor: shut down, data refused")
			require.NoError(t, p.Shutdown(bg), "a second Shutdown is harmless")
		})
	}
}

// Requests without data points are accepted and dropped, as by the core
// processor: a batch of them would carry nothing a backend stores.
func TestEmptyRequest(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, nil)
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetName("no_points")
	require.NoError(t, r.p.ConsumeMetrics(bg, md))
	r.stop(t)
	require.Empty(t, sink.AllMetrics())
}

func TestSendSizeTelemetry(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, func(c *Config) { c.SendBatchSize = 10; c.SendBatchMaxSize = 10; c.Timeout = time.Hour })
	require.NoError(t, r.p.ConsumeMetrics(bg, gauge("", "a", 0, 25)))
	r.stop(t)
	m, err := r.tel.GetMetric("otelcol_batch_send_size")
	require.NoError(t, err)
	dp := m.Data.(metricdata.Histogram[int64]).DataPoints
	require.Len(t, dp, 1)
	require.EqualValues(t, 3, dp[0].Count)
	require.EqualValues(t, 25, dp[0].Sum)
	v, _ := dp[0].Attributes.Value("processor")
	require.True(t, strings.HasPrefix(v.AsString(), "batch"), "processor attribute %q", v.AsString())
}
