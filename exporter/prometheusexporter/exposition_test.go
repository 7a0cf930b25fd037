package prometheusexporter

import (
	"context"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/internal/promseries"
)

// fixture is a target's exposition: every type the text format has, a
// counter without _total, escapes in HELP and label values, +Inf and NaN.
const fixture = `# HELP http_requests_total Requests served, by "code".\n and method
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 1027
http_requests_total{code="500",method="post"} 3
# HELP legacy_hits A counter named before _total was the rule.
# TYPE legacy_hits counter
legacy_hits 12
# HELP temperature_celsius Room temperature.
# TYPE temperature_celsius gauge
temperature_celsius{room="a \"quoted\" room\\name"} 21.5
temperature_celsius{room="cold"} -3
temperature_celsius{room="broken"} NaN
# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds histogram
rpc_seconds_bucket{service="x",le="0.05"} 24
rpc_seconds_bucket{service="x",le="0.5"} 129
rpc_seconds_bucket{service="x",le="1"} 133
rpc_seconds_bucket{service="x",le="+Inf"} 144
rpc_seconds_sum{service="x"} 53.4
rpc_seconds_count{service="x"} 144
# HELP gc_seconds GC pauses.
# TYPE gc_seconds summary
gc_seconds{quantile="0"} 0.0001
gc_seconds{quantile="0.5"} 0.0004
gc_seconds{quantile="1"} 0.02
gc_seconds_sum 1.5
gc_seconds_count 310
# TYPE mystery untyped
mystery{kind="x"} 7
free_form_series 1e+21
`

const fixtureT = 1_700_000_000_123 // ms: a scrape time with milliseconds

// scrapeInto parses an exposition as Prometheus does and builds the pdata
// a receiver would, with job and instance as the scrape gave them.
func scrapeInto(t *testing.T, b *promseries.Builder, body, contentType string, ts int64) map[string]string {
	t.Helper()
	p, err := textparse.New([]byte(body), contentType, labels.NewSymbolTable(), textparse.ParserOptions{KeepClassicOnClassicAndNativeHistograms: true})
	if err != nil {
		t.Fatal(err)
	}
	direct := map[string]string{}
	meta := map[string]promseries.Metadata{}
	for {
		entry, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch entry {
		case textparse.EntryType:
			name, typ := p.Type()
			m := meta[string(name)]
			m.Type = typ
			meta[string(name)] = m
			b.SetMetadata(string(name), m)
		case textparse.EntryHelp:
			name, help := p.Help()
			m := meta[string(name)]
			m.Help = string(help)
			meta[string(name)] = m
			b.SetMetadata(string(name), m)
		case textparse.EntrySeries:
			var ls labels.Labels
			p.Labels(&ls)
			ls = labels.NewBuilder(ls).Set("job", "fixture").Set("instance", "127.0.0.1:1").Labels()
			_, _, v := p.Series()
			b.Add(ls, ts, v, 0)
			direct[normalize(ls)] = formatValue(v) + "@" + strconv.FormatInt(ts, 10)
		}
	}
	return direct
}

// What a scraper of /metrics reads is what a direct scrape of the target
// read — series, values, timestamps, types and help — in each format.
func TestPrometheusDataExposedAsScraped(t *testing.T) {
	e, url := startExporter(t, nil)
	b := promseries.NewBuilder("test")
	direct := scrapeInto(t, b, fixture, "text/plain; version=0.0.4", fixtureT)
	md := b.Metrics()
	if err := e.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	wantMeta := parse(t, []byte(fixture), "text/plain; version=0.0.4").meta
	for name, accept := range formats {
		t.Run(name, func(t *testing.T) {
			body, ct := scrape(t, url, accept)
			got := parse(t, body, ct)
			if d := diff(direct, got.series); len(d) > 0 {
				t.Errorf("%s (%s) differs from the direct scrape:\n%s\n%s", name, ct, strings.Join(d, "\n"), body)
			}
			if d := diff(walked(t, md, promseries.Options{}, false, true), got.series); len(d) > 0 {
				t.Errorf("%s differs from what remote_write sends:\n%s", name, strings.Join(d, "\n"))
			}
			for fam, m := range wantMeta {
				if name == "openmetrics" && fam == "legacy_hits" {
					// OpenMetrics counters end in _total; expfmt writes
					// one that does not as unknown, keeping its name.
					m = "unknown" + strings.TrimPrefix(m, "counter")
				}
				if name == "openmetrics" && fam == "http_requests_total" {
					fam = "http_requests" // the family name of the counter in OpenMetrics
				}
				if got.meta[fam] != m {
					t.Errorf("%s: family %s: metadata %q, want %q", name, fam, got.meta[fam], m)
				}
			}
		})
	}
}

// A native histogram is exposed in the protobuf format, with its classic
// buckets when it has them; text and OpenMetrics, which cannot carry it,
// show its count, sum and +Inf bucket, as client_golang does.
func TestNativeHistograms(t *testing.T) {
	e, url := startExporter(t, nil)
	b := promseries.NewBuilder("test")
	b.SetMetadata("req_seconds", promseries.Metadata{Type: model.MetricTypeHistogram, Help: "Requests."})
	b.SetMetadata("empty_seconds", promseries.Metadata{Type: model.MetricTypeHistogram})
	h := &histogram.Histogram{
		Schema: 1, ZeroThreshold: 1e-9, ZeroCount: 2, Count: 14, Sum: 12.5,
		PositiveSpans: []histogram.Span{{Offset: -1, Length: 2}, {Offset: 3, Length: 1}}, PositiveBuckets: []int64{3, 1, -2},
		NegativeSpans: []histogram.Span{{Offset: 0, Length: 1}}, NegativeBuckets: []int64{3},
	}
	base := labels.FromStrings("job", "fixture", "instance", "127.0.0.1:1", "path", "/")
	named := func(name string, kv ...string) labels.Labels {
		lb := labels.NewBuilder(base).Set("__name__", name)
		for i := 0; i+1 < len(kv); i += 2 {
			lb.Set(kv[i], kv[i+1])
		}
		return lb.Labels()
	}
	b.AddHistogram(named("req_seconds"), fixtureT, h, nil, 0)
	b.AddHistogram(named("empty_seconds"), fixtureT, &histogram.Histogram{Schema: 3, ZeroThreshold: 1e-9}, nil, 0)
	// the classic side of req_seconds, as a target serving both sends it
	b.Add(named("req_seconds_bucket", "le", "1"), fixtureT, 9, 0)
	b.Add(named("req_seconds_bucket", "le", "+Inf"), fixtureT, 14, 0)
	b.Add(named("req_seconds_sum"), fixtureT, 12.5, 0)
	b.Add(named("req_seconds_count"), fixtureT, 14, 0)
	md := b.Metrics()
	if err := e.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	body, ct := scrape(t, url, acceptProtobuf)
	if !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
		t.Fatalf("content type %q", ct)
	}
	got := parse(t, body, ct)
	if d := diff(walked(t, md, promseries.Options{}, false, true), got.series); len(d) > 0 {
		t.Errorf("protobuf differs from what remote_write sends:\n%s", strings.Join(d, "\n"))
	}

	body, ct = scrape(t, url, acceptText)
	got = parse(t, body, ct)
	at := "@" + strconv.FormatInt(fixtureT, 10)
	want := map[string]string{
		normalize(named("req_seconds_bucket", "le", "1")):      "9" + at,
		normalize(named("req_seconds_bucket", "le", "+Inf")):   "14" + at,
		normalize(named("req_seconds_sum")):                    "12.5" + at,
		normalize(named("req_seconds_count")):                  "14" + at,
		normalize(named("empty_seconds_bucket", "le", "+Inf")): "0" + at,
		normalize(named("empty_seconds_sum")):                  "0" + at,
		normalize(named("empty_seconds_count")):                "0" + at,
	}
	if d := diff(want, got.series); len(d) > 0 {
		t.Errorf("text:\n%s\n%s", strings.Join(d, "\n"), body)
	}
}

// OTLP-native data is named and labelled as the remote_write exporter
// names it, with the same options; target_info carries the resource.
func TestOTLPDataNamedAsRemoteWrite(t *testing.T) {
	for _, suffixes := range []bool{false, true} {
		t.Run("add_metric_suffixes="+strconv.FormatBool(suffixes), func(t *testing.T) {
			e, url := startExporter(t, func(c *Config) {
				c.AddMetricSuffixes = suffixes
				c.TargetInfo.Enabled = true
			})
			md := otlpMetrics()
			if err := e.ConsumeMetrics(context.Background(), md); err != nil {
				t.Fatal(err)
			}
			if n := len(walked(t, md, promseries.Options{AddMetricSuffixes: suffixes}, true, true)); n < 9 {
				t.Fatalf("the oracle gives only %d series", n)
			}
			for name, accept := range formats {
				want := walked(t, md, promseries.Options{AddMetricSuffixes: suffixes}, true, true)
				body, ct := scrape(t, url, accept)
				got := parse(t, body, ct)
				if name != "protobuf" {
					// the exponential histogram is a native one: only
					// protobuf carries it; the others show count and sum
					for k := range want {
						if strings.Contains(want[k], "native") {
							delete(want, k)
						}
					}
					for k := range got.series {
						if strings.Contains(k, "payload") {
							delete(got.series, k)
						}
					}
				}
				if d := diff(want, got.series); len(d) > 0 {
					t.Errorf("%s differs from what remote_write sends:\n%s", name, strings.Join(d, "\n"))
				}
			}
		})
	}
}

// otlpMetrics is an application's push: dotted names and attributes, a
// resource with more than job and instance, every point type, and a delta
// sum, which a scraper could not read and is left out.
func otlpMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	rm.Resource().Attributes().PutStr("service.namespace", "shop")
	rm.Resource().Attributes().PutStr("service.instance.id", "pod-1")
	rm.Resource().Attributes().PutStr("k8s.pod.name", "checkout-7d9")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.Timestamp(int64(fixtureT) * 1e6)

	g := ms.AppendEmpty()
	g.SetName("process.memory.usage")
	g.SetUnit("By")
	g.SetDescription("Resident memory.")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(123456)
	dp.Attributes().PutStr("memory.state", "used")

	s := ms.AppendEmpty()
	s.SetName("http.server.requests")
	s.SetUnit("{request}")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, code := range []string{"200", "503"} {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(float64(10 * (i + 1)))
		dp.Attributes().PutStr("http.response.status_code", code)
		ex := dp.Exemplars().AppendEmpty()
		ex.SetDoubleValue(1)
		ex.SetTimestamp(ts)
		ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	}

	h := ms.AppendEmpty()
	h.SetName("http.server.duration")
	h.SetUnit("s")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	hp.BucketCounts().FromRaw([]uint64{4, 5, 1})
	hp.SetCount(10)
	hp.SetSum(4.2)

	x := ms.AppendEmpty()
	x.SetName("payload.size")
	x.SetUnit("By")
	eh := x.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ts)
	ep.SetScale(2)
	ep.SetCount(6)
	ep.SetSum(3000)
	ep.SetZeroCount(1)
	ep.Positive().SetOffset(30)
	ep.Positive().BucketCounts().FromRaw([]uint64{2, 0, 3})

	d := ms.AppendEmpty()
	d.SetName("jobs.done")
	ds := d.SetEmptySum()
	ds.SetIsMonotonic(true)
	ds.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	ddp := ds.DataPoints().AppendEmpty()
	ddp.SetTimestamp(ts)
	ddp.SetIntValue(3)
	return md
}

// Exemplars go out where the formats carry them: on counters and buckets
// in OpenMetrics and protobuf.
func TestExemplars(t *testing.T) {
	e, url := startExporter(t, nil)
	b := promseries.NewBuilder("test")
	b.SetMetadata("orders_total", promseries.Metadata{Type: model.MetricTypeCounter})
	ls := labels.FromStrings("__name__", "orders_total", "job", "shop", "instance", "a")
	b.Add(ls, fixtureT, 5, 0)
	b.AddExemplar(ls, fixtureT, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", "abc"), Value: 1, Ts: fixtureT - 10, HasTs: true})
	if err := e.ConsumeMetrics(context.Background(), b.Metrics()); err != nil {
		t.Fatal(err)
	}
	for _, accept := range []string{acceptOM, acceptProtobuf} {
		body, ct := scrape(t, url, accept)
		got := parse(t, body, ct).exemplars[normalize(ls)]
		if len(got) != 1 || got[0] != `{trace_id="abc"} 1` {
			t.Errorf("%s: exemplars %v\n%s", ct, got, body)
		}
	}
}

var staleNaN = math.Float64frombits(value.StaleNaN)
