package remotewritereceiver

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/exporter/remotewriteexporter"
	"github.com/sluicehq/sluice/internal/promseries"
)

// series is one input series: labels, metadata, and its points.
type series struct {
	ls         labels.Labels
	typ        model.MetricType
	help, unit string
	samples    []writev2.Sample
	hists      []writev2.Histogram
	exemplars  []writev2.Exemplar // labels in exLabels
	exLabels   []labels.Labels
}

const t0 = int64(1_700_000_000_000)

func inputSeries() []series {
	api := func(kv ...string) labels.Labels {
		return labels.FromStrings(append([]string{"job", "api", "instance", "a:1"}, kv...)...)
	}
	db := func(kv ...string) labels.Labels {
		return labels.FromStrings(append([]string{"job", "shop/db", "instance", "b:2"}, kv...)...)
	}
	nh := &histogram.Histogram{
		Count: 9, ZeroCount: 2, ZeroThreshold: 0.001, Sum: 18.4, Schema: 1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets: []int64{1, 1, -1, 0},
		NegativeSpans:   []histogram.Span{{Offset: 0, Length: 1}},
		NegativeBuckets: []int64{2},
	}
	fh := &histogram.FloatHistogram{
		Count: 6, ZeroCount: 1, ZeroThreshold: 0.001, Sum: 42.25, Schema: 0,
		PositiveSpans: []histogram.Span{{Offset: 1, Length: 2}}, PositiveBuckets: []float64{2, 3},
	}
	smp := func(st int64, vs ...float64) []writev2.Sample {
		var out []writev2.Sample
		for i, v := range vs {
			out = append(out, writev2.Sample{Value: v, Timestamp: t0 + int64(i)*15000, StartTimestamp: st})
		}
		return out
	}
	trace := labels.FromStrings("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", "span_id", "00f067aa0ba902b7")
	return []series{
		{ls: api("__name__", "http_requests_total", "code", "200"), typ: model.MetricTypeCounter, help: "Requests served.",
			samples:   smp(t0-60000, 10, 17),
			exemplars: []writev2.Exemplar{{Value: 1, Timestamp: t0 + 15000 - 3}}, exLabels: []labels.Labels{trace}},
		{ls: api("__name__", "http_requests_total", "code", "500"), typ: model.MetricTypeCounter, help: "Requests served.", samples: smp(t0-60000, 1, 2)},
		{ls: db("__name__", "temperature", "room", "hall"), typ: model.MetricTypeGauge, unit: "celsius", samples: smp(0, 21.5, 21.75)},
		{ls: api("__name__", "rpc_seconds_bucket", "le", "0.1"), typ: model.MetricTypeHistogram, help: "RPC latency.", samples: smp(t0-60000, 1, 2)},
		{ls: api("__name__", "rpc_seconds_bucket", "le", "1.0"), typ: model.MetricTypeHistogram, help: "RPC latency.", samples: smp(t0-60000, 3, 5),
			exemplars: []writev2.Exemplar{{Value: 0.5, Timestamp: t0 + 15000 - 7}}, exLabels: []labels.Labels{trace}},
		{ls: api("__name__", "rpc_seconds_bucket", "le", "+Inf"), typ: model.MetricTypeHistogram, help: "RPC latency.", samples: smp(t0-60000, 4, 6)},
		{ls: api("__name__", "rpc_seconds_sum"), typ: model.MetricTypeHistogram, help: "RPC latency.", samples: smp(t0-60000, 1.5, 2.75)},
		{ls: api("__name__", "rpc_seconds_count"), typ: model.MetricTypeHistogram, help: "RPC latency.", samples: smp(t0-60000, 4, 6)},
		{ls: db("__name__", "query_seconds", "quantile", "0.5"), typ: model.MetricTypeSummary, samples: smp(0, 0.2, 0.25)},
		{ls: db("__name__", "query_seconds", "quantile", "0.99"), typ: model.MetricTypeSummary, samples: smp(0, 0.9, 1.1)},
		{ls: db("__name__", "query_seconds_sum"), typ: model.MetricTypeSummary, samples: smp(0, 30, 31)},
		{ls: db("__name__", "query_seconds_count"), typ: model.MetricTypeSummary, samples: smp(0, 100, 104)},
		{ls: api("__name__", "latency_seconds"), typ: model.MetricTypeHistogram, help: "Native.",
			hists: []writev2.Histogram{writev2.FromIntHistogram(t0-60000, t0, nh)}},
		{ls: db("__name__", "size_bytes"), typ: model.MetricTypeHistogram,
			hists: []writev2.Histogram{writev2.FromFloatHistogram(0, t0, fh)}},
		{ls: db("__name__", "legacy_metric", "kind", "x"), samples: smp(0, 7)},
	}
}

func requestV2(in []series) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for _, s := range in {
		ts := writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(s.ls, nil), Samples: s.samples, Histograms: s.hists,
			Metadata: writev2.Metadata{Type: writev2.FromMetadataType(s.typ), HelpRef: st.Symbolize(s.help), UnitRef: st.Symbolize(s.unit)},
		}
		for i, e := range s.exemplars {
			e.LabelsRefs = st.SymbolizeLabels(s.exLabels[i], nil)
			ts.Exemplars = append(ts.Exemplars, e)
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	return req
}

func requestV1(in []series) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	seen := map[string]bool{}
	for _, s := range in {
		ts := prompb.TimeSeries{Labels: prompb.FromLabels(s.ls, nil)}
		for _, x := range s.samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: x.Value, Timestamp: x.Timestamp})
		}
		for _, h := range s.hists {
			if h.IsFloatHistogram() {
				ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(h.Timestamp, h.ToFloatHistogram()))
			} else {
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(h.Timestamp, h.ToIntHistogram()))
			}
		}
		for i, e := range s.exemplars {
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(s.exLabels[i], nil), Value: e.Value, Timestamp: e.Timestamp})
		}
		req.Timeseries = append(req.Timeseries, ts)
		fam := promseries.FamilyName(s.ls.Get("__name__"), s.typ)
		if s.typ != "" && !seen[fam] {
			seen[fam] = true
			req.Metadata = append(req.Metadata, prompb.MetricMetadata{Type: prompb.FromMetadataType(s.typ), MetricFamilyName: fam, Help: s.help, Unit: s.unit})
		}
	}
	return req
}

// linesV2 renders what a 2.0 request carries, one line per sample,
// histogram, exemplar and family's metadata, so requests can be compared
// however the series are spread over them.
func linesV2(t *testing.T, reqs ...*writev2.Request) []string {
	set := map[string]bool{}
	var out []string
	var sb labels.ScratchBuilder
	for _, req := range reqs {
		for _, ts := range req.Timeseries {
			ls, err := ts.ToLabels(&sb, req.Symbols)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ts.Samples {
				out = append(out, fmt.Sprintf("S %s t=%d v=%g st=%d", ls, s.Timestamp, s.Value, s.StartTimestamp))
			}
			for _, h := range ts.Histograms {
				out = append(out, fmt.Sprintf("H %s t=%d h=%s st=%d", ls, h.Timestamp, h.ToFloatHistogram(), h.StartTimestamp))
			}
			for _, e := range ts.Exemplars {
				ex, err := e.ToExemplar(&sb, req.Symbols)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("E %s ex=%s v=%g t=%d", ls, ex.Labels, ex.Value, ex.Ts))
			}
			md, err := ts.ToMetadata(req.Symbols)
			if err != nil {
				t.Fatal(err)
			}
			if md.Type != "" && md.Type != model.MetricTypeUnknown {
				set[fmt.Sprintf("M %s %s help=%q unit=%q", promseries.FamilyName(ls.Get("__name__"), md.Type), md.Type, md.Help, md.Unit)] = true
			}
		}
	}
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func linesV1(reqs ...*prompb.WriteRequest) []string {
	set := map[string]bool{}
	var out []string
	var sb labels.ScratchBuilder
	for _, req := range reqs {
		for _, ts := range req.Timeseries {
			ls := ts.ToLabels(&sb, nil)
			for _, s := range ts.Samples {
				out = append(out, fmt.Sprintf("S %s t=%d v=%g", ls, s.Timestamp, s.Value))
			}
			for _, h := range ts.Histograms {
				fh := h.ToFloatHistogram()
				if !h.IsFloatHistogram() {
					fh = h.ToIntHistogram().ToFloat(nil)
				}
				out = append(out, fmt.Sprintf("H %s t=%d h=%s", ls, h.Timestamp, fh))
			}
			for _, e := range ts.Exemplars {
				ex := e.ToExemplar(&sb, nil)
				out = append(out, fmt.Sprintf("E %s ex=%s v=%g t=%d", ls, ex.Labels, ex.Value, ex.Ts))
			}
		}
		for _, md := range req.Metadata {
			if md.Type == prompb.MetricMetadata_UNKNOWN && md.Help == "" && md.Unit == "" {
				continue // says no more than no metadata, as in linesV2
			}
			set[fmt.Sprintf("M %s %s help=%q unit=%q", md.MetricFamilyName, md.Type, md.Help, md.Unit)] = true
		}
	}
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// startExporter runs the remote_write exporter sending msg to the sink.
func startExporter(t *testing.T, url, msg string) exporter.Metrics {
	t.Helper()
	return startExporterWith(t, url, func(c *remotewriteexporter.Config) { c.ProtobufMessage = msg })
}

// startExporterWith runs the remote_write exporter sending to url, its
// default config changed by set.
func startExporterWith(t *testing.T, url string, set func(*remotewriteexporter.Config)) exporter.Metrics {
	t.Helper()
	f := remotewriteexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*remotewriteexporter.Config)
	cfg.ClientConfig.Endpoint = url
	cfg.Queue.Directory = t.TempDir()
	set(cfg)
	exp, err := f.CreateMetrics(context.Background(), exportertest.NewNopSettings(component.MustNewType("remote_write")), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// TestRoundTrip pushes requests through receiver → remote_write exporter →
// bench/sink: what arrives is exactly what was pushed — names, labels,
// samples, start timestamps (2.0), classic and native histograms,
// exemplars, metadata.
func TestRoundTrip(t *testing.T) {
	for _, msg := range []string{remotewriteexporter.MessageV2, remotewriteexporter.MessageV1} {
		t.Run(msg, func(t *testing.T) {
			sk := sink.New()
			sk.KeepRequests()
			addr, stop, err := sk.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)
			exp := startExporter(t, "http://"+addr+"/api/v1/write", msg)
			url := startReceiver(t, createDefaultConfig(), exp)

			in := inputSeries()
			var want []string
			var status int
			var hdr http.Header
			var body string
			if msg == remotewriteexporter.MessageV2 {
				req := requestV2(in)
				want = linesV2(t, req)
				status, hdr, body = push(t, url, http.MethodPost, ctV2, "snappy", snappyOf(t, req))
			} else {
				req := requestV1(in)
				want = linesV1(req)
				status, hdr, body = push(t, url, http.MethodPost, ctV1, "snappy", snappyOf(t, req))
			}
			if status != http.StatusNoContent {
				t.Fatalf("push: %d %s", status, body)
			}
			if msg == remotewriteexporter.MessageV2 {
				if hdr.Get("X-Prometheus-Remote-Write-Samples-Written") != "25" || hdr.Get("X-Prometheus-Remote-Write-Histograms-Written") != "2" || hdr.Get("X-Prometheus-Remote-Write-Exemplars-Written") != "2" {
					t.Fatalf("written headers: %v", hdr)
				}
			}
			var got []string
			deadline := time.Now().Add(10 * time.Second)
			for len(got) < len(want) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				v1, v2 := sk.Requests()
				if msg == remotewriteexporter.MessageV2 {
					got = linesV2(t, v2...)
				} else {
					got = linesV1(v1...)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("round trip differs:\n--- pushed\n%s\n--- arrived\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
			}
			t.Logf("%d lines equal", len(want))
		})
	}
}
