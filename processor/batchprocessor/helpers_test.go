package batchprocessor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/processor/batchprocessor/internal/metadata"
)

// running is a started processor and its telemetry; the test's cleanup
// shuts it down.
type running struct {
	p    *batchProcessor
	tel  *componenttest.Telemetry
	done bool
}

func start(t *testing.T, next consumer.Metrics, mut func(*Config)) *running {
	t.Helper()
	cfg := createDefaultConfig()
	if mut != nil {
		mut(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tt := componenttest.NewTelemetry()
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	proc, err := NewFactory().CreateMetrics(context.Background(), set, cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	r := &running{p: proc.(*batchProcessor), tel: tt}
	t.Cleanup(func() {
		r.stop(t)
		_ = tt.Shutdown(context.Background())
	})
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.done {
		return
	}
	r.done = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.p.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

// counter sums a counter of the processor's telemetry over the points
// whose attributes include want.
func (r *running) counter(t *testing.T, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	return comptest.Counter(r.tel, name, want...)
}

// slowSink is a next consumer that can be held shut (gate), slowed down or
// made to fail, and checks that exports of one shard (told by its tenant
// metadata) never overlap.
type slowSink struct {
	consumertest.MetricsSink
	gate    chan struct{} // when not nil, each export waits for a receive
	delay   time.Duration
	fail    func(pmetric.Metrics) error
	mu      sync.Mutex
	active  map[string]int // exports under way, by tenant
	overlap atomic.Bool    // two exports of one tenant were under way at once
	calls   atomic.Int64   // exports entered (before the gate)
}

func newSlowSink() *slowSink { return &slowSink{active: map[string]int{}} }

func (s *slowSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *slowSink) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	s.calls.Add(1)
	// The shard is told by the exported metadata (unset and "" differ).
	vals := client.FromContext(ctx).Metadata.Get("tenant")
	tenant := fmt.Sprintf("%v %q", vals == nil, vals)
	s.mu.Lock()
	s.active[tenant]++
	if s.active[tenant] > 1 {
		s.overlap.Store(true)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active[tenant]--
		s.mu.Unlock()
	}()
	if s.gate != nil {
		<-s.gate
	}
	time.Sleep(s.delay)
	if s.fail != nil {
		if err := s.fail(md); err != nil {
			return err
		}
	}
	return s.MetricsSink.ConsumeMetrics(ctx, md)
}

// tenantOf is the "tenant" resource attribute of md's first resource.
func tenantOf(md pmetric.Metrics) string {
	if md.ResourceMetrics().Len() == 0 {
		return ""
	}
	v, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("tenant")
	return v.AsString()
}

// gauge is one resource (tenant, caller) with one gauge of n points whose
// values are first, first+1, ...: a caller's stream numbered for order checks.
func gauge(tenant, caller string, first, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("tenant", tenant)
	rm.Resource().Attributes().PutStr("caller", caller)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("seq")
	dps := m.SetEmptyGauge().DataPoints()
	for i := range n {
		dp := dps.AppendEmpty()
		dp.SetIntValue(int64(first + i))
		dp.SetTimestamp(pcommon.Timestamp(first + i))
	}
	return md
}

// sequences reads back what gauge wrote: per caller, the values in the
// order exported.
func sequences(batches []pmetric.Metrics) map[string][]int64 {
	out := map[string][]int64{}
	for _, md := range batches {
		for _, rm := range md.ResourceMetrics().All() {
			c, _ := rm.Resource().Attributes().Get("caller")
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					for _, dp := range m.Gauge().DataPoints().All() {
						out[c.AsString()] = append(out[c.AsString()], dp.IntValue())
					}
				}
			}
		}
	}
	return out
}

// mixed builds metrics of every type with every header field set:
// resources × 2 scopes × 5 metrics (gauge, sum, histogram, exponential
// histogram, summary) of points points each.
func mixed(resources, points int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	v := 0
	for r := range resources {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
		rm.Resource().Attributes().PutInt("replica", int64(r))
		for s := range 2 {
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.SetSchemaUrl("scope-schema")
			sm.Scope().SetName(fmt.Sprintf("scope-%d", s))
			sm.Scope().SetVersion("v1")
			sm.Scope().Attributes().PutStr("lib", "x")
			for k := range 5 {
				m := sm.Metrics().AppendEmpty()
				m.SetName(fmt.Sprintf("metric_%d", k))
				m.SetDescription(fmt.Sprintf("description %d", k))
				m.SetUnit("s")
				m.Metadata().PutStr("prometheus.type", "x")
				for range points {
					v++
					addPoint(m, k, v)
				}
			}
		}
	}
	return md
}

func addPoint(m pmetric.Metric, kind, v int) {
	ts := pcommon.Timestamp(v)
	switch kind {
	case 0:
		g := m.Gauge()
		if m.Type() != pmetric.MetricTypeGauge {
			g = m.SetEmptyGauge()
		}
		dp := g.DataPoints().AppendEmpty()
		dp.SetDoubleValue(float64(v))
		dp.SetTimestamp(ts)
		dp.Attributes().PutInt("i", int64(v))
	case 1:
		s := m.Sum()
		if m.Type() != pmetric.MetricTypeSum {
			s = m.SetEmptySum()
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			s.SetIsMonotonic(true)
		}
		dp := s.DataPoints().AppendEmpty()
		dp.SetIntValue(int64(v))
		dp.SetTimestamp(ts)
		dp.Attributes().PutInt("i", int64(v))
	case 2:
		h := m.Histogram()
		if m.Type() != pmetric.MetricTypeHistogram {
			h = m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		}
		dp := h.DataPoints().AppendEmpty()
		dp.SetCount(uint64(v))
		dp.SetSum(float64(v))
		dp.ExplicitBounds().FromRaw([]float64{1, 10})
		dp.BucketCounts().FromRaw([]uint64{1, uint64(v), 0})
		dp.SetTimestamp(ts)
		dp.Attributes().PutInt("i", int64(v))
	case 3:
		h := m.ExponentialHistogram()
		if m.Type() != pmetric.MetricTypeExponentialHistogram {
			h = m.SetEmptyExponentialHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		}
		dp := h.DataPoints().AppendEmpty()
		dp.SetCount(uint64(v))
		dp.SetScale(2)
		dp.Positive().BucketCounts().FromRaw([]uint64{uint64(v)})
		dp.SetTimestamp(ts)
		dp.Attributes().PutInt("i", int64(v))
	case 4:
		s := m.Summary()
		if m.Type() != pmetric.MetricTypeSummary {
			s = m.SetEmptySummary()
		}
		dp := s.DataPoints().AppendEmpty()
		dp.SetCount(uint64(v))
		dp.SetSum(float64(v))
		q := dp.QuantileValues().AppendEmpty()
		q.SetQuantile(0.5)
		q.SetValue(float64(v))
		dp.SetTimestamp(ts)
		dp.Attributes().PutInt("i", int64(v))
	}
}

// flatten lists md's data points in order, each with everything that
// describes it: resource, scope, metric header and the point itself. Two
// Metrics carry the same data in the same order iff their flattenings are
// equal, whatever their grouping into resources, scopes and metrics.
func flatten(md pmetric.Metrics) []string {
	var out []string
	for _, rm := range md.ResourceMetrics().All() {
		res := fmt.Sprintf("%v %s", rm.Resource().Attributes().AsRaw(), rm.SchemaUrl())
		for _, sm := range rm.ScopeMetrics().All() {
			sc := fmt.Sprintf("%s %s %v %s", sm.Scope().Name(), sm.Scope().Version(), sm.Scope().Attributes().AsRaw(), sm.SchemaUrl())
			for _, m := range sm.Metrics().All() {
				head := fmt.Sprintf("%s|%s|%s|%v|%s", m.Name(), m.Description(), m.Unit(), m.Metadata().AsRaw(), m.Type())
				add := func(kind string, attrs pcommon.Map, ts pcommon.Timestamp, value string) {
					out = append(out, fmt.Sprintf("%s / %s / %s %s / %v %d %s", res, sc, head, kind, attrs.AsRaw(), ts, value))
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						add("", dp.Attributes(), dp.Timestamp(), fmt.Sprint(dp.DoubleValue(), dp.IntValue()))
					}
				case pmetric.MetricTypeSum:
					kind := fmt.Sprint(m.Sum().AggregationTemporality(), m.Sum().IsMonotonic())
					for _, dp := range m.Sum().DataPoints().All() {
						add(kind, dp.Attributes(), dp.Timestamp(), fmt.Sprint(dp.DoubleValue(), dp.IntValue()))
					}
				case pmetric.MetricTypeHistogram:
					kind := m.Histogram().AggregationTemporality().String()
					for _, dp := range m.Histogram().DataPoints().All() {
						add(kind, dp.Attributes(), dp.Timestamp(), fmt.Sprint(dp.Count(), dp.Sum(), dp.ExplicitBounds().AsRaw(), dp.BucketCounts().AsRaw()))
					}
				case pmetric.MetricTypeExponentialHistogram:
					kind := m.ExponentialHistogram().AggregationTemporality().String()
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						add(kind, dp.Attributes(), dp.Timestamp(), fmt.Sprint(dp.Count(), dp.Scale(), dp.Positive().BucketCounts().AsRaw()))
					}
				case pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						add("", dp.Attributes(), dp.Timestamp(), fmt.Sprint(dp.Count(), dp.Sum(), dp.QuantileValues().At(0).Value()))
					}
				}
			}
		}
	}
	return out
}

// flattenAll concatenates the flattenings of batches, in order.
func flattenAll(batches []pmetric.Metrics) []string {
	var out []string
	for _, md := range batches {
		out = append(out, flatten(md)...)
	}
	return out
}

func processorSettings() processor.Settings { return processortest.NewNopSettings(metadata.Type) }

// gaugeValue reads an observable gauge of the processor's telemetry.
func (r *running) gaugeValue(t *testing.T, name string) int64 {
	t.Helper()
	m, err := r.tel.GetMetric(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var v int64
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		v += dp.Value
	}
	return v
}
