package remotewriteexporter

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/exporter/remotewriteexporter/internal/metadata"
	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/internal/promseries"
)

// exporterSettings has a fixed id: the queue directory is named after it.
func exporterSettings() exporter.Settings {
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	return set
}

// running is an exporter under test with its telemetry.
type running struct {
	exp *rwExporter
	tel *componenttest.Telemetry
	cfg *Config
}

// startExporter runs a remote_write exporter against endpoint with its
// queue in dir (a fresh temporary one when empty); mut adjusts the config.
func startExporter(t *testing.T, endpoint, dir string, mut func(*Config)) *running {
	t.Helper()
	return startExporterSet(t, endpoint, dir, mut, nil)
}

// startExporterSet is startExporter with settings of the test's own
// (a logger to read, a host to report status to).
func startExporterSet(t *testing.T, endpoint, dir string, mut func(*Config), adjust func(*exporter.Settings) component.Host) *running {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.ClientConfig.Endpoint = endpoint
	if dir == "" {
		dir = t.TempDir()
	}
	cfg.Queue.Directory = dir
	cfg.Queue.MaxSize = 64 << 20
	cfg.RetryOnFailure.InitialInterval = 10 * time.Millisecond
	cfg.RetryOnFailure.MaxInterval = 100 * time.Millisecond
	if mut != nil {
		mut(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tt := componenttest.NewTelemetry()
	set := exporterSettings()
	set.TelemetrySettings = tt.NewTelemetrySettings()
	set.BuildInfo = component.BuildInfo{Version: "test"}
	host := componenttest.NewNopHost()
	if adjust != nil {
		if h := adjust(&set); h != nil {
			host = h
		}
	}
	exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	r := &running{exp: exp.(*rwExporter), tel: tt, cfg: cfg}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.exp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.exp.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	r.exp = nil
}

// counter sums a counter of the exporter's telemetry over the data points
// whose attributes include want.
func (r *running) counter(t *testing.T, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	return comptest.Counter(r.tel, name, want...)
}

func kind(k string) attribute.KeyValue   { return attribute.String("kind", k) }
func reason(r string) attribute.KeyValue { return attribute.String("reason", r) }

// observed makes the exporter log to an observer the test reads.
func observed(logs **observer.ObservedLogs) func(*exporter.Settings) component.Host {
	return func(set *exporter.Settings) component.Host {
		core, l := observer.New(zap.DebugLevel)
		set.Logger = zap.New(core)
		*logs = l
		return nil
	}
}

// startSink runs bench/sink on loopback; its remote-write URL is returned.
func startSink(t *testing.T) (*sink.Sink, string) {
	t.Helper()
	s := sink.New()
	addr, stop, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s, "http://" + addr + "/api/v1/write"
}

// promMetric appends a metric marked as Prometheus data of family type typ.
func promMetric(ms pmetric.MetricSlice, name, typ string) pmetric.Metric {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.Metadata().PutStr(promseries.MetadataType, typ)
	return m
}

// newResource starts a resource of job/instance.
func newResource(md pmetric.Metrics, job, instance string) pmetric.MetricSlice {
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", job)
	rm.Resource().Attributes().PutStr("service.instance.id", instance)
	return rm.ScopeMetrics().AppendEmpty().Metrics()
}

func ms(t int64) pcommon.Timestamp { return pcommon.Timestamp(t * 1e6) }

// gauges makes one gauge point per series name at time t (ms).
func gauges(job string, t int64, v float64, names ...string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	metrics := newResource(md, job, "host:1")
	for _, n := range names {
		m := promMetric(metrics, n, "gauge")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ms(t))
		dp.SetDoubleValue(v)
	}
	return md
}

// everyType is a scrape of every metric type Prometheus knows, plus a
// stale marker, an exemplar and an OTLP exponential histogram.
func everyType() pmetric.Metrics {
	md := pmetric.NewMetrics()
	metrics := newResource(md, "api", "host:9100")

	g := promMetric(metrics, "temp", "gauge")
	g.SetDescription("Temperature.")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ms(1000))
	dp.SetDoubleValue(21.5)
	dp.Attributes().PutStr("room", "a")

	c := promMetric(metrics, "reqs_total", "counter")
	c.SetDescription("Requests.")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	cp := sum.DataPoints().AppendEmpty()
	cp.SetTimestamp(ms(1000))
	cp.SetStartTimestamp(ms(500))
	cp.SetDoubleValue(10)
	ex := cp.Exemplars().AppendEmpty()
	ex.SetTimestamp(ms(900))
	ex.SetDoubleValue(1)
	ex.FilteredAttributes().PutStr("trace_id", "abc")

	h := promMetric(metrics, "rpc_seconds", "histogram")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetTimestamp(ms(1000))
	hp.ExplicitBounds().FromRaw([]float64{0.5, 1})
	hp.BucketCounts().FromRaw([]uint64{1, 2, 1})
	hp.SetCount(4)
	hp.SetSum(5.5)

	s := promMetric(metrics, "gc_seconds", "summary")
	sp := s.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetTimestamp(ms(1000))
	sp.SetCount(7)
	sp.SetSum(2)
	q := sp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(0.1)

	st := promMetric(metrics, "gone", "gauge")
	sdp := st.SetEmptyGauge().DataPoints().AppendEmpty()
	sdp.SetTimestamp(ms(1000))
	sdp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))

	e := metrics.AppendEmpty() // OTLP-native: exponential -> native histogram
	e.SetName("latency")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ms(1000))
	ep.SetScale(0)
	ep.SetCount(3)
	ep.SetSum(6)
	ep.SetZeroCount(1)
	ep.Positive().SetOffset(0)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 1})
	return md
}

// capture is a backend that keeps every request and answers with answer
// (nil: 204, plus the 2.0 written headers for 2.0 requests).
type capture struct {
	mu     sync.Mutex
	reqs   []captured
	answer func(n int, r *http.Request, body []byte, w http.ResponseWriter) bool // true: answered
}

type captured struct {
	header http.Header
	body   []byte // decompressed protobuf
	at     time.Time
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	compressed, _ := io.ReadAll(r.Body)
	raw, err := s2.Decode(nil, compressed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	n := len(c.reqs)
	c.reqs = append(c.reqs, captured{header: r.Header.Clone(), body: raw, at: time.Now()})
	answer := c.answer
	c.mu.Unlock()
	if answer != nil && answer(n, r, raw, w) {
		return
	}
	if strings.Contains(r.Header.Get("Content-Type"), MessageV2) {
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var s, h, e int
		for _, ts := range req.Timeseries {
			s, h, e = s+len(ts.Samples), h+len(ts.Histograms), e+len(ts.Exemplars)
		}
		w.Header().Set(headerSamplesWritten, fmt.Sprint(s))
		w.Header().Set(headerHistogramsWritten, fmt.Sprint(h))
		w.Header().Set(headerExemplarsWritten, fmt.Sprint(e))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *capture) requests() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]captured(nil), c.reqs...)
}

func startCapture(t *testing.T, answer func(n int, r *http.Request, body []byte, w http.ResponseWriter) bool) (*capture, string) {
	t.Helper()
	c := &capture{answer: answer}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv.URL + "/api/v1/write"
}

// renderV1 writes a 1.0 request as sorted lines, one per series and one
// per metadata entry.
func renderV1(t *testing.T, raw []byte) []string {
	t.Helper()
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	var out []string
	var sb labels.ScratchBuilder
	for _, ts := range req.Timeseries {
		line := ts.ToLabels(&sb, nil).String()
		for _, s := range ts.Samples {
			line += " " + sampleString(s.Value, s.Timestamp)
		}
		for _, h := range ts.Histograms {
			line += " " + h.ToIntHistogram().String() + fmt.Sprintf("@%d", h.Timestamp)
		}
		for _, e := range ts.Exemplars {
			ex := e.ToExemplar(&sb, nil)
			line += fmt.Sprintf(" # %s %g@%d", ex.Labels, ex.Value, ex.Ts)
		}
		out = append(out, line)
	}
	for _, m := range req.Metadata {
		out = append(out, fmt.Sprintf("meta %s %s %q %q", m.MetricFamilyName, m.Type, m.Help, m.Unit))
	}
	sort.Strings(out)
	return out
}

// renderV2 writes a 2.0 request the same way, metadata on the series line.
func renderV2(t *testing.T, raw []byte) []string {
	t.Helper()
	var req writev2.Request
	if err := req.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	if len(req.Symbols) == 0 || req.Symbols[0] != "" {
		t.Fatalf("symbols must start with the empty string, got %q", req.Symbols)
	}
	var out []string
	var sb labels.ScratchBuilder
	for _, ts := range req.Timeseries {
		ls, err := ts.ToLabels(&sb, req.Symbols)
		if err != nil {
			t.Fatal(err)
		}
		line := ls.String()
		for _, s := range ts.Samples {
			line += " " + sampleString(s.Value, s.Timestamp) + fmt.Sprintf("(st %d)", s.StartTimestamp)
		}
		for _, h := range ts.Histograms {
			line += " " + h.ToIntHistogram().String() + fmt.Sprintf("@%d(st %d)", h.Timestamp, h.StartTimestamp)
		}
		for _, e := range ts.Exemplars {
			ex, err := e.ToExemplar(&sb, req.Symbols)
			if err != nil {
				t.Fatal(err)
			}
			line += fmt.Sprintf(" # %s %g@%d", ex.Labels, ex.Value, ex.Ts)
		}
		md, err := ts.ToMetadata(req.Symbols)
		if err != nil {
			t.Fatal(err)
		}
		line += fmt.Sprintf(" meta %s %q %q", md.Type, md.Help, md.Unit)
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

func sampleString(v float64, t int64) string {
	if math.IsNaN(v) {
		return fmt.Sprintf("NaN(%#x)@%d", math.Float64bits(v), t)
	}
	return fmt.Sprintf("%g@%d", v, t)
}

type nopHost struct{}

func (nopHost) GetExtensions() map[component.ID]component.Component { return nil }

// The crash test re-runs this test binary as the exporter it kills.
func init() {
	if os.Getenv("SLUICE_EXPORT_CHILD") != "" {
		childExport()
		os.Exit(0)
	}
}

// sampleFor is one float sample of series name{job="j"}.
func sampleFor(name string, t int64, v float64) *promseries.Sample {
	return &promseries.Sample{Labels: labelsFor(name), T: t, V: v}
}

func labelsFor(name string) []labels.Label {
	var out []labels.Label
	labels.FromStrings("__name__", name, "job", "j").Range(func(l labels.Label) { out = append(out, l) })
	return out
}

// gauge reads an observable gauge of the exporter's telemetry; ok is false
// when it has no point labelled with this exporter's id.
func (r *running) gauge(t *testing.T, name string) (float64, bool) {
	t.Helper()
	m, err := r.tel.GetMetric(name)
	if err != nil {
		return 0, false
	}
	id := attribute.String("exporter", r.exp.set.ID.String())
	switch d := m.Data.(type) {
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			if v, ok := dp.Attributes.Value(id.Key); ok && v == id.Value {
				return float64(dp.Value), true
			}
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			if v, ok := dp.Attributes.Value(id.Key); ok && v == id.Value {
				return dp.Value, true
			}
		}
	}
	return 0, false
}
