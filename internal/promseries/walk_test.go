package promseries

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

const t0 = pcommon.Timestamp(1_700_000_000_123 * 1e6) // ns; 1700000000123 ms

// testMetric returns a metric in a resource of job prod/api, instance host:9100.
func testMetric(md pmetric.Metrics, name string, promType string) pmetric.Metric {
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "api")
	rm.Resource().Attributes().PutStr("service.namespace", "prod")
	rm.Resource().Attributes().PutStr("service.instance.id", "host:9100")
	rm.Resource().Attributes().PutStr("host.arch", "amd64")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	if promType != "" {
		m.Metadata().PutStr(MetadataType, promType)
	}
	return m
}

// render walks md and prints one line per sample: labels, time, value.
func render(t *testing.T, md pmetric.Metrics, opts Options) (string, Dropped) {
	t.Helper()
	var b strings.Builder
	dropped, err := Walk(md, opts, func(s *Sample) error {
		switch {
		case s.H != nil:
			fmt.Fprintf(&b, "%s %d H%v", labels.New(s.Labels...), s.T, s.H)
		case value.IsStaleNaN(s.V):
			fmt.Fprintf(&b, "%s %d stale", labels.New(s.Labels...), s.T)
		default:
			fmt.Fprintf(&b, "%s %d %g", labels.New(s.Labels...), s.T, s.V)
		}
		if s.Delta {
			b.WriteString(" delta")
		}
		if s.StartT != 0 {
			fmt.Fprintf(&b, " start=%d", s.StartT)
		}
		for _, e := range s.Exemplars {
			fmt.Fprintf(&b, " ex(%s %g)", e.Labels, e.Value)
		}
		fmt.Fprintf(&b, " [%s]\n", s.Meta.Type)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), dropped
}

func TestWalk(t *testing.T) {
	cases := []struct {
		name  string
		build func(md pmetric.Metrics)
		opts  Options
		want  string
		drop  Dropped
	}{{
		name: "prometheus counter keeps its exact name; job and instance from the resource",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "http_requests_total", "counter")
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := s.DataPoints().AppendEmpty()
			dp.SetTimestamp(t0)
			dp.SetStartTimestamp(t0 - 60e9)
			dp.SetDoubleValue(5)
			dp.Attributes().PutStr("code", "200")
			dp.Attributes().PutStr("empty", "")
		},
		want: `{__name__="http_requests_total", code="200", instance="host:9100", job="prod/api"} 1700000000123 5 start=1699999940123 [counter]` + "\n",
	}, {
		name: "OTLP-native names follow the otlptranslator rules, colliding labels join",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "http.server.requests", "")
			m.SetUnit("1")
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := s.DataPoints().AppendEmpty()
			dp.SetTimestamp(t0)
			dp.SetIntValue(7)
			dp.Attributes().PutStr("http.method", "GET")
			dp.Attributes().PutStr("a_b", "two")
			dp.Attributes().PutStr("a.b", "one")
		},
		opts: Options{AddMetricSuffixes: true},
		want: `{__name__="http_server_requests_total", a_b="one;two", http_method="GET", instance="host:9100", job="prod/api"} 1700000000123 7 [counter]` + "\n",
	}, {
		name: "resource_to_telemetry_conversion adds every resource attribute",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "temperature", "")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(t0)
			dp.SetDoubleValue(21.5)
		},
		opts: Options{ResourceToLabels: true},
		want: `{__name__="temperature", host_arch="amd64", instance="host:9100", job="prod/api"} 1700000000123 21.5 [gauge]` + "\n",
	}, {
		name: "a data-point attribute overrides the resource's job",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "up", "gauge")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(t0)
			dp.SetDoubleValue(1)
			dp.Attributes().PutStr("job", "override")
		},
		want: `{__name__="up", instance="host:9100", job="override"} 1700000000123 1 [gauge]` + "\n",
	}, {
		name: "stale marker",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "up", "gauge")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(t0)
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		},
		want: `{__name__="up", instance="host:9100", job="prod/api"} 1700000000123 stale [gauge]` + "\n",
	}, {
		name: "classic histogram: cumulative buckets, le formatted as Prometheus does, exemplars per bucket",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "rpc_seconds", "histogram")
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := h.DataPoints().AppendEmpty()
			dp.SetTimestamp(t0)
			dp.ExplicitBounds().FromRaw([]float64{0.1, 1})
			dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
			dp.SetCount(6)
			dp.SetSum(3.5)
			ex := dp.Exemplars().AppendEmpty()
			ex.SetDoubleValue(0.5)
			ex.FilteredAttributes().PutStr("trace_id", "abc")
		},
		want: `{__name__="rpc_seconds_bucket", instance="host:9100", job="prod/api", le="0.1"} 1700000000123 1 [histogram]
{__name__="rpc_seconds_bucket", instance="host:9100", job="prod/api", le="1.0"} 1700000000123 3 ex({trace_id="abc"} 0.5) [histogram]
{__name__="rpc_seconds_bucket", instance="host:9100", job="prod/api", le="+Inf"} 1700000000123 6 [histogram]
{__name__="rpc_seconds_sum", instance="host:9100", job="prod/api"} 1700000000123 3.5 [histogram]
{__name__="rpc_seconds_count", instance="host:9100", job="prod/api"} 1700000000123 6 [histogram]
`,
	}, {
		name: "classic histogram points with different bounds each get their own le values",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "lat", "histogram")
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for i, bounds := range [][]float64{{0, 1}, {0, 1}, {0.5, 2}, {0}} {
				dp := h.DataPoints().AppendEmpty()
				dp.SetTimestamp(t0 + pcommon.Timestamp(i)*1e6)
				dp.ExplicitBounds().FromRaw(bounds)
				dp.BucketCounts().FromRaw(make([]uint64, len(bounds)+1))
			}
		},
		want: `{__name__="lat_bucket", instance="host:9100", job="prod/api", le="0.0"} 1700000000123 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="1.0"} 1700000000123 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="+Inf"} 1700000000123 0 [histogram]
{__name__="lat_count", instance="host:9100", job="prod/api"} 1700000000123 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="0.0"} 1700000000124 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="1.0"} 1700000000124 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="+Inf"} 1700000000124 0 [histogram]
{__name__="lat_count", instance="host:9100", job="prod/api"} 1700000000124 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="0.5"} 1700000000125 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="2.0"} 1700000000125 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="+Inf"} 1700000000125 0 [histogram]
{__name__="lat_count", instance="host:9100", job="prod/api"} 1700000000125 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="0.0"} 1700000000126 0 [histogram]
{__name__="lat_bucket", instance="host:9100", job="prod/api", le="+Inf"} 1700000000126 0 [histogram]
{__name__="lat_count", instance="host:9100", job="prod/api"} 1700000000126 0 [histogram]
`,
	}, {
		name: "summary",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "gc_seconds", "summary")
			dp := m.SetEmptySummary().DataPoints().AppendEmpty()
			dp.SetTimestamp(t0)
			q := dp.QuantileValues().AppendEmpty()
			q.SetQuantile(0.5)
			q.SetValue(0.01)
			q = dp.QuantileValues().AppendEmpty()
			q.SetQuantile(1)
			q.SetValue(0.2)
			dp.SetSum(4)
			dp.SetCount(100)
		},
		want: `{__name__="gc_seconds", instance="host:9100", job="prod/api", quantile="0.5"} 1700000000123 0.01 [summary]
{__name__="gc_seconds", instance="host:9100", job="prod/api", quantile="1.0"} 1700000000123 0.2 [summary]
{__name__="gc_seconds_sum", instance="host:9100", job="prod/api"} 1700000000123 4 [summary]
{__name__="gc_seconds_count", instance="host:9100", job="prod/api"} 1700000000123 100 [summary]
`,
	}, {
		name: "delta sums are flagged for the caller",
		build: func(md pmetric.Metrics) {
			m := testMetric(md, "bytes", "")
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			dp := s.DataPoints().AppendEmpty()
			dp.SetTimestamp(t0)
			dp.SetIntValue(3)
		},
		want: `{__name__="bytes", instance="host:9100", job="prod/api"} 1700000000123 3 delta [counter]` + "\n",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := pmetric.NewMetrics()
			tc.build(md)
			got, dropped := render(t, md, tc.opts)
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			if len(dropped) != len(tc.drop) {
				t.Errorf("dropped = %v, want %v", dropped, tc.drop)
			}
		})
	}
}

func expHistogram(md pmetric.Metrics, scale int32, offset int32, counts []uint64) pmetric.ExponentialHistogramDataPoint {
	m := testMetric(md, "latency", "histogram")
	h := m.SetEmptyExponentialHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.SetTimestamp(t0)
	dp.SetScale(scale)
	dp.Positive().SetOffset(offset)
	dp.Positive().BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += c
	}
	dp.SetZeroCount(1)
	dp.SetCount(n + 1)
	dp.SetSum(10)
	return dp
}

func TestNativeHistograms(t *testing.T) {
	var got []*histogram.Histogram
	collect := func(s *Sample) error { got = append(got, s.H.Copy()); return nil }

	// Scale 0, OpenTelemetry buckets 0 and 1 (and an empty 2, and 3) -> Prometheus indexes 1, 2, 4.
	md := pmetric.NewMetrics()
	expHistogram(md, 0, 0, []uint64{1, 2, 0, 4})
	if _, err := Walk(md, Options{}, collect); err != nil {
		t.Fatal(err)
	}
	want := &histogram.Histogram{Schema: 0, ZeroCount: 1, Count: 8, Sum: 10,
		PositiveSpans: []histogram.Span{{Offset: 1, Length: 2}, {Offset: 1, Length: 1}}, PositiveBuckets: []int64{1, 1, 2}}
	if len(got) != 1 || !got[0].Equals(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// The bucket boundaries agree: Prometheus bucket 2 at schema 0 is (2, 4], OpenTelemetry bucket 1 at scale 0 is (2, 4].
	it := got[0].PositiveBucketIterator()
	it.Next()
	it.Next()
	if b := it.At(); b.Lower != 2 || b.Upper != 4 || b.Count != 2 {
		t.Fatalf("second bucket = %+v, want (2, 4] with 2", b)
	}

	// Scale 10 is merged down to schema 8: four neighbours of scale 10 make one of scale 8.
	got = nil
	md = pmetric.NewMetrics()
	expHistogram(md, 10, 4, []uint64{1, 1, 1, 1, 5})
	if _, err := Walk(md, Options{}, collect); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Schema != 8 || got[0].PositiveSpans[0].Offset != 2 || len(got[0].PositiveBuckets) != 2 ||
		got[0].PositiveBuckets[0] != 4 || got[0].PositiveBuckets[1] != 1 {
		t.Fatalf("downscaled = %v, want schema 8, buckets 4 and 5 from index 2", got)
	}

	// Scale -5 has no Prometheus schema: dropped and counted.
	got = nil
	md = pmetric.NewMetrics()
	expHistogram(md, -5, 0, []uint64{1})
	dropped, err := Walk(md, Options{}, collect)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 || dropped[DropScaleTooSmall] != 1 {
		t.Fatalf("scale -5: got %v, dropped %v", got, dropped)
	}

	// A stale native histogram has a StaleNaN sum.
	got = nil
	md = pmetric.NewMetrics()
	dp := expHistogram(md, 0, 0, []uint64{1})
	dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	if _, err := Walk(md, Options{}, collect); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !value.IsStaleNaN(got[0].Sum) {
		t.Fatalf("stale: got %v", got)
	}
}

func TestWalkStopsAtCallbackError(t *testing.T) {
	md := pmetric.NewMetrics()
	m := testMetric(md, "g", "gauge")
	m.SetEmptyGauge().DataPoints().AppendEmpty()
	m.Gauge().DataPoints().AppendEmpty()
	calls := 0
	_, err := Walk(md, Options{}, func(*Sample) error { calls++; return fmt.Errorf("full") })
	if err == nil || calls != 1 {
		t.Fatalf("err=%v calls=%d, want the callback's error after one call", err, calls)
	}
}
