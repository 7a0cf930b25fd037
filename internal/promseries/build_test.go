package promseries

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

var stale = math.Float64frombits(value.StaleNaN)

type in struct {
	ls     labels.Labels
	t      int64
	v      float64
	startT int64
}

func s(v float64, t int64, kv ...string) in { return in{ls: labels.FromStrings(kv...), t: t, v: v} }

func line(ls labels.Labels, t int64, v float64, startT int64) string {
	val := fmt.Sprint(v)
	if value.IsStaleNaN(v) {
		val = "stale"
	}
	return fmt.Sprintf("%s %d %s start=%d", ls, t, val, startT)
}

// roundTrip builds pdata from the samples and walks it back.
func roundTrip(t *testing.T, meta map[string]Metadata, samples []in) (pmetric.Metrics, []string) {
	t.Helper()
	b := NewBuilder("test")
	for fam, m := range meta {
		b.SetMetadata(fam, m)
	}
	for _, x := range samples {
		b.Add(x.ls, x.t, x.v, x.startT)
	}
	md := b.Metrics()
	var out []string
	if _, err := Walk(md, Options{}, func(sm *Sample) error {
		out = append(out, line(labels.New(sm.Labels...), sm.T, sm.V, sm.StartT))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return md, out
}

func shapes(md pmetric.Metrics) string {
	var parts []string
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			parts = append(parts, ms.At(j).Name()+":"+ms.At(j).Type().String())
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func TestRoundTrip(t *testing.T) {
	job := []string{"job", "node", "instance", "host:9100"}
	with := func(kv ...string) []string { return append(append([]string{}, job...), kv...) }
	hist := map[string]Metadata{"rpc_seconds": {Type: model.MetricTypeHistogram, Help: "RPC latency"}}
	summ := map[string]Metadata{"gc_seconds": {Type: model.MetricTypeSummary}}
	histogramSeries := func(b1, b2, inf, sum, count float64, le1 string) []in {
		return []in{
			s(b1, 1000, with("__name__", "rpc_seconds_bucket", "le", le1, "path", "/a")...),
			s(b2, 1000, with("__name__", "rpc_seconds_bucket", "le", "1.0", "path", "/a")...),
			s(inf, 1000, with("__name__", "rpc_seconds_bucket", "le", "+Inf", "path", "/a")...),
			s(sum, 1000, with("__name__", "rpc_seconds_sum", "path", "/a")...),
			s(count, 1000, with("__name__", "rpc_seconds_count", "path", "/a")...),
		}
	}
	cases := []struct {
		name   string
		meta   map[string]Metadata
		in     []in
		shapes string
	}{
		{"counter, gauge and unknown keep their names",
			map[string]Metadata{"http_requests_total": {Type: model.MetricTypeCounter}, "temp": {Type: model.MetricTypeGauge}},
			[]in{s(5, 1000, with("__name__", "http_requests_total", "code", "200")...), s(21, 1000, with("__name__", "temp")...), s(1, 1000, with("__name__", "mystery", "le", "5")...)},
			"http_requests_total:Sum mystery:Gauge temp:Gauge"},
		{"OpenMetrics counter family without _total",
			map[string]Metadata{"http_requests": {Type: model.MetricTypeCounter}},
			[]in{{ls: labels.FromStrings(with("__name__", "http_requests_total")...), t: 1000, v: 3, startT: 500}},
			"http_requests_total:Sum"},
		{"classic histogram in its shape", hist, histogramSeries(1, 3, 6, 3.5, 6, "0.1"), "rpc_seconds:Histogram"},
		{"non-integer bucket travels raw", hist, histogramSeries(1.5, 3, 6, 3.5, 6, "0.1"),
			"rpc_seconds_bucket:Gauge rpc_seconds_count:Gauge rpc_seconds_sum:Gauge"},
		{"non-canonical le travels raw", hist, histogramSeries(1, 3, 6, 3.5, 6, "0.10"),
			"rpc_seconds_bucket:Gauge rpc_seconds_count:Gauge rpc_seconds_sum:Gauge"},
		{"count differing from +Inf travels raw", hist, histogramSeries(1, 3, 6, 3.5, 7, "0.1"),
			"rpc_seconds_bucket:Gauge rpc_seconds_count:Gauge rpc_seconds_sum:Gauge"},
		{"wholly stale histogram keeps its shape", hist, histogramSeries(stale, stale, stale, stale, stale, "0.1"), "rpc_seconds:Histogram"},
		{"partly stale histogram travels raw", hist, histogramSeries(stale, 3, 6, 3.5, 6, "0.1"),
			"rpc_seconds_bucket:Gauge rpc_seconds_count:Gauge rpc_seconds_sum:Gauge"},
		{"a plain series named like its histogram family, first", hist,
			append([]in{s(9, 1000, with("__name__", "rpc_seconds", "path", "/a")...)}, histogramSeries(1, 3, 6, 3.5, 6, "0.1")...),
			"rpc_seconds:Gauge rpc_seconds:Histogram"},
		{"a plain series named like its histogram family, last", hist,
			append(histogramSeries(1, 3, 6, 3.5, 6, "0.1"), s(9, 1000, with("__name__", "rpc_seconds", "path", "/a")...)),
			"rpc_seconds:Gauge rpc_seconds:Histogram"},
		{"histogram without +Inf travels raw", hist, histogramSeries(1, 3, 6, 3.5, 6, "0.1")[:2], "rpc_seconds_bucket:Gauge"},
		{"summary in its shape", summ, []in{
			s(0.1, 1000, with("__name__", "gc_seconds", "quantile", "0.5")...),
			s(0.9, 1000, with("__name__", "gc_seconds", "quantile", "0.99")...),
			s(12, 1000, with("__name__", "gc_seconds_sum")...),
			s(40, 1000, with("__name__", "gc_seconds_count")...),
		}, "gc_seconds:Summary"},
		{"summary with non-canonical quantile travels raw", summ, []in{
			s(0.1, 1000, with("__name__", "gc_seconds", "quantile", "0.50")...),
			s(12, 1000, with("__name__", "gc_seconds_sum")...),
			s(40, 1000, with("__name__", "gc_seconds_count")...),
		}, "gc_seconds:Gauge gc_seconds_count:Gauge gc_seconds_sum:Gauge"},
		{"targets become resources; namespaced jobs and missing labels survive", nil, []in{
			s(1, 1000, "__name__", "up", "job", "prod/api", "instance", "a:1"),
			s(1, 1000, "__name__", "up", "job", "/odd", "instance", "a:1"),
			s(1, 1000, "__name__", "up", "job", "b"),
			s(1, 1000, "__name__", "up"),
		}, "up:Gauge up:Gauge up:Gauge up:Gauge"},
		{"two scrapes of one series are two points", nil, []in{
			s(1, 1000, with("__name__", "up")...), s(stale, 2000, with("__name__", "up")...),
		}, "up:Gauge"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md, got := roundTrip(t, tc.meta, tc.in)
			var want []string
			for _, x := range tc.in {
				want = append(want, line(x.ls, x.t, x.v, x.startT))
			}
			sort.Strings(want)
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("round trip differs\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if sh := shapes(md); sh != tc.shapes {
				t.Errorf("pdata shapes = %q, want %q", sh, tc.shapes)
			}
		})
	}
}

func TestMetadataTravels(t *testing.T) {
	b := NewBuilder("test")
	b.SetMetadata("rpc_seconds", Metadata{Type: model.MetricTypeHistogram, Help: "RPC latency", Unit: "seconds"})
	b.Add(labels.FromStrings("__name__", "rpc_seconds_bucket", "le", "+Inf"), 1, 1, 0)
	b.Add(labels.FromStrings("__name__", "rpc_seconds_sum"), 1, 1, 0)
	b.Add(labels.FromStrings("__name__", "rpc_seconds_count"), 1, 1, 0)
	m := b.Metrics().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	typ, prom := IsPrometheus(m)
	if !prom || typ != model.MetricTypeHistogram || m.Description() != "RPC latency" || m.Unit() != "seconds" {
		t.Fatalf("metric %s: type %q prom %v help %q unit %q", m.Name(), typ, prom, m.Description(), m.Unit())
	}
}

func TestNativeHistogramRoundTrip(t *testing.T) {
	h := &histogram.Histogram{Schema: 2, ZeroThreshold: 1e-128, ZeroCount: 2, Count: 15, Sum: 30,
		PositiveSpans: []histogram.Span{{Offset: -1, Length: 2}, {Offset: 3, Length: 1}}, PositiveBuckets: []int64{2, 1, 2},
		NegativeSpans: []histogram.Span{{Offset: 0, Length: 1}}, NegativeBuckets: []int64{3}}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	b := NewBuilder("test")
	b.SetMetadata("latency", Metadata{Type: model.MetricTypeHistogram})
	ls := labels.FromStrings("__name__", "latency", "job", "j")
	b.AddHistogram(ls, 1000, h, nil, 0)
	md := b.Metrics()
	var got []*histogram.Histogram
	if _, err := Walk(md, Options{}, func(sm *Sample) error {
		if labels.New(sm.Labels...).String() != ls.String() {
			t.Errorf("labels %s, want %s", labels.New(sm.Labels...), ls)
		}
		got = append(got, sm.H.Copy())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Equals(h) {
		t.Fatalf("got %v\nwant %v", got, h)
	}
}

// AddHistogram refuses, with the reason, what an exponential histogram point
// cannot hold; a gap just inside the bound still round-trips.
func TestAddHistogramUnfit(t *testing.T) {
	gap := func(offset int32) *histogram.FloatHistogram {
		return &histogram.FloatHistogram{Schema: 0, Count: 2, Sum: 1,
			PositiveSpans: []histogram.Span{{Offset: -3, Length: 1}, {Offset: offset, Length: 1}}, PositiveBuckets: []float64{1, 1}}
	}
	cases := []struct {
		name string
		fh   *histogram.FloatHistogram
		want string
	}{
		{"fits", gap(5), ""},
		{"widest that fits", gap(MaxDenseBuckets - 2), ""},
		{"one bucket too wide", gap(MaxDenseBuckets - 1), NativeTooWide},
		{"negative side too wide", &histogram.FloatHistogram{Schema: 0, Count: 2,
			NegativeSpans: []histogram.Span{{Offset: 0, Length: 1}, {Offset: 1 << 30, Length: 1}}, NegativeBuckets: []float64{1, 1}}, NativeTooWide},
		{"schema 9", &histogram.FloatHistogram{Schema: 9, Count: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []float64{1}}, NativeSchema},
		{"fractional", &histogram.FloatHistogram{Schema: 0, Count: 0.5, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []float64{0.5}}, NativeFractional},
		{"custom buckets", &histogram.FloatHistogram{Schema: histogram.CustomBucketsSchema, Count: 1, CustomValues: []float64{1},
			PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []float64{1}}, NativeCustomBuckets},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder("test")
			ls := labels.FromStrings("__name__", "h", "job", "j")
			if got := b.AddHistogram(ls, 1000, nil, tc.fh, 0); got != tc.want {
				t.Fatalf("reason %q, want %q", got, tc.want)
			}
			md := b.Metrics()
			var got []*histogram.Histogram
			if _, err := Walk(md, Options{}, func(sm *Sample) error {
				got = append(got, sm.H.Copy())
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if tc.want != "" {
				if md.DataPointCount() != 0 {
					t.Fatalf("refused histogram emitted: %d points", md.DataPointCount())
				}
				return
			}
			if len(got) != 1 || !got[0].ToFloat(nil).Equals(tc.fh) {
				t.Fatalf("round trip gives %v, want %v", got, tc.fh)
			}
		})
	}
}
