package relabelprocessor

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.yaml.in/yaml/v2"

	"github.com/sluicehq/sluice/internal/promseries"
)

// rulesFrom reads rules written as YAML, as a user writes them.
func rulesFrom(t testing.TB, y string) []map[string]any {
	t.Helper()
	var raw []map[string]any
	if err := yaml.Unmarshal([]byte(y), &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func newTestProcessor(t testing.TB, cfg *Config) *relabelProcessor {
	t.Helper()
	tel, err := newTelemetry(component.MustNewID("relabel"), componenttest.NewNopTelemetrySettings())
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessor(cfg, tel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// series walks md as the exporter would and returns one line per sample.
func series(t testing.TB, md pmetric.Metrics, opts promseries.Options) []string {
	t.Helper()
	var out []string
	if _, err := promseries.Walk(md, opts, func(s *promseries.Sample) error {
		out = append(out, sampleLine(labels.New(s.Labels...), s))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func sampleLine(ls labels.Labels, s *promseries.Sample) string {
	if s.H != nil {
		return fmt.Sprintf("%s @%d h=%s", ls, s.T, s.H)
	}
	return fmt.Sprintf("%s @%d v=%g", ls, s.T, s.V)
}

// input is a mix of Prometheus data (two targets of one job: counters,
// gauges, a classic histogram, a summary) and OTLP-native data (with a
// service namespace, colliding attribute names and an exponential histogram).
func input() pmetric.Metrics {
	b := promseries.NewBuilder("scrape")
	b.SetMetadata("http_requests", promseries.Metadata{Type: model.MetricTypeCounter, Help: "requests"})
	b.SetMetadata("temperature", promseries.Metadata{Type: model.MetricTypeGauge})
	b.SetMetadata("rpc_seconds", promseries.Metadata{Type: model.MetricTypeHistogram})
	b.SetMetadata("rpc_quantiles", promseries.Metadata{Type: model.MetricTypeSummary})
	const t0 = 1_700_000_000_000
	for _, inst := range []string{"a:1", "b:1"} {
		base := []string{"job", "api", "instance", inst}
		add := func(v float64, kv ...string) {
			b.Add(labels.FromStrings(append(append([]string{}, base...), kv...)...), t0, v, 0)
		}
		for i, method := range []string{"GET", "POST"} {
			for j, code := range []string{"200", "500"} {
				add(float64(10*i+j+1), "__name__", "http_requests_total", "method", method, "code", code)
			}
			add(1, "__name__", "rpc_seconds_bucket", "method", method, "le", "0.1")
			add(3, "__name__", "rpc_seconds_bucket", "method", method, "le", "1.0")
			add(4, "__name__", "rpc_seconds_bucket", "method", method, "le", "+Inf")
			add(2.5, "__name__", "rpc_seconds_sum", "method", method)
			add(4, "__name__", "rpc_seconds_count", "method", method)
			add(0.2, "__name__", "rpc_quantiles", "method", method, "quantile", "0.5")
			add(0.7, "__name__", "rpc_quantiles", "method", method, "quantile", "0.9")
			add(9, "__name__", "rpc_quantiles_sum", "method", method)
			add(20, "__name__", "rpc_quantiles_count", "method", method)
		}
		add(21.5, "__name__", "temperature", "room", "Kitchen", "Env", "PROD", "zone", "z1", "area", "z1")
		add(19, "__name__", "temperature", "room", "Hall", "Env", "Dev", "zone", "z1", "area", "z2")
	}
	md := b.Metrics()

	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr("service.name", "checkout")
	res.PutStr("service.namespace", "shop")
	res.PutStr("service.instance.id", "pod-1")
	res.PutStr("host.name", "h1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.Timestamp(t0 * 1e6)

	g := ms.AppendEmpty()
	g.SetName("queue.depth")
	for _, q := range []string{"q1", "q2"} {
		dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetIntValue(int64(len(q)))
		dp.Attributes().PutStr("queue.name", q)
		dp.Attributes().PutStr("method", "GET")
	}
	sum := ms.AppendEmpty()
	sum.SetName("requests")
	sum.SetUnit("1")
	s := sum.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, m := range []string{"GET", "POST"} {
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(float64(100 + i))
		dp.Attributes().PutStr("http.method", m)
		dp.Attributes().PutStr("a.b", "x")
		dp.Attributes().PutStr("a_b", "y") // collides with a.b: one label "a_b" = "x;y"
	}
	h := ms.AppendEmpty()
	h.SetName("latency")
	h.SetUnit("s")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hdp := hh.DataPoints().AppendEmpty()
	hdp.SetTimestamp(ts)
	hdp.ExplicitBounds().FromRaw([]float64{0.5, 1})
	hdp.BucketCounts().FromRaw([]uint64{1, 2, 3})
	hdp.SetCount(6)
	hdp.SetSum(7)
	hdp.Attributes().PutStr("method", "POST")
	e := ms.AppendEmpty()
	e.SetName("size")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	edp := eh.DataPoints().AppendEmpty()
	edp.SetTimestamp(ts)
	edp.SetScale(2)
	edp.SetCount(3)
	edp.SetSum(10)
	edp.SetZeroCount(1)
	edp.Positive().SetOffset(3)
	edp.Positive().BucketCounts().FromRaw([]uint64{1, 1})
	edp.Attributes().PutStr("method", "GET")
	return md
}

func process(t testing.TB, p *relabelProcessor, md pmetric.Metrics) pmetric.Metrics {
	t.Helper()
	out, err := p.processMetrics(context.Background(), md)
	if err != nil && md.ResourceMetrics().Len() > 0 {
		t.Fatal(err)
	}
	return out
}
