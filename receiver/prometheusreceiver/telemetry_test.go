package prometheusreceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
)

// telemetryReceiver is a prometheus receiver started with its telemetry
// recorded; while refuse is set, the pipeline refuses every scrape.
type telemetryReceiver struct {
	rcv    receiver.Metrics
	tel    *componenttest.Telemetry
	sink   *consumertest.MetricsSink
	refuse atomic.Bool
}

func startWithTelemetry(t *testing.T, receiverYAML string) *telemetryReceiver {
	t.Helper()
	cfg := configFrom(t, receiverYAML)
	tr := &telemetryReceiver{tel: componenttest.NewTelemetry(), sink: new(consumertest.MetricsSink)}
	t.Cleanup(func() { _ = tr.tel.Shutdown(context.Background()) })
	next, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		if tr.refuse.Load() {
			return errors.New("queue full")
		}
		return tr.sink.ConsumeMetrics(ctx, md)
	})
	if err != nil {
		t.Fatal(err)
	}
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type) // receiver="prometheus"
	set.TelemetrySettings = tr.tel.NewTelemetrySettings()
	if tr.rcv, err = NewFactory().CreateMetrics(context.Background(), set, cfg, next); err != nil {
		t.Fatal(err)
	}
	if err := tr.rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.rcv.Shutdown(context.Background()) })
	return tr
}

var ownID = attribute.String("receiver", "prometheus")

// gauge is the value of the int gauge name at exactly the attributes attrs
// (and receiver="prometheus"); -1 when there is no such point.
func (tr *telemetryReceiver) gauge(name string, attrs ...attribute.KeyValue) int64 {
	m, err := tr.tel.GetMetric(name)
	if err != nil {
		return -1
	}
	want := attribute.NewSet(append(attrs, ownID)...)
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	return -1
}

// scrapes is the number of scrapes of job the duration histogram holds.
func (tr *telemetryReceiver) scrapes(job string) uint64 {
	m, err := tr.tel.GetMetric("otelcol_prometheus_receiver_scrape_duration_seconds")
	if err != nil {
		return 0
	}
	want := attribute.NewSet(ownID, attribute.String("job", job))
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Count
		}
	}
	return 0
}

func (tr *telemetryReceiver) errors(job, reason string) int64 {
	return comptest.Counter(tr.tel, "otelcol_prometheus_receiver_scrape_errors", ownID,
		attribute.String("job", job), attribute.String("reason", reason))
}

// errorReasons is the scrape errors of job by reason, read at once.
func (tr *telemetryReceiver) errorReasons(job string) map[string]int64 {
	out := map[string]int64{}
	m, err := tr.tel.GetMetric("otelcol_prometheus_receiver_scrape_errors")
	if err != nil {
		return out
	}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if j, _ := dp.Attributes.Value("job"); j.AsString() == job {
			r, _ := dp.Attributes.Value("reason")
			out[r.AsString()] += dp.Value
		}
	}
	return out
}

// The ways a scrape fails, each from a real target on loopback, one job
// each, and the reason each is counted under.
func TestScrapeErrorsByReason(t *testing.T) {
	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return hostOf(srv)
	}
	text := func(body string) string {
		return serve(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprint(w, body)
		})
	}
	// A port that was just listened on and is closed now: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	jobs := []struct {
		job, reason, target, extra string
	}{
		{"http_status", reasonHTTPStatus, serve(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "broken", http.StatusInternalServerError)
		}), ""},
		{"timeout", reasonTimeout, serve(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}), ""},
		{"connection", reasonConnection, closed, ""},
		{"parse", reasonParse, text("garbage{{{\n"), ""},
		{"body_size_limit", reasonBodySizeLimit, text(exposition), "body_size_limit: 100B"},
		{"sample_limit", reasonSampleLimit, text(exposition), "sample_limit: 3"},
		{"label_limit", reasonLabelLimit, text(`m{a="1",b="2",c="3"} 1` + "\n"), "label_limit: 4"},
		{"label_value_length_limit", reasonLabelLimit, text(`m{a="` + strings.Repeat("x", 100) + `"} 1` + "\n"), "label_value_length_limit: 10"},
	}
	var yml strings.Builder
	yml.WriteString("config:\n  scrape_configs:\n")
	for _, j := range jobs {
		fmt.Fprintf(&yml, "    - job_name: %s\n      scrape_interval: 200ms\n      scrape_timeout: 150ms\n      static_configs: [{targets: [%q]}]\n", j.job, j.target)
		if j.extra != "" {
			fmt.Fprintf(&yml, "      %s\n", j.extra)
		}
	}
	// target_limit fails every target of its job.
	fmt.Fprintf(&yml, "    - job_name: target_limit\n      scrape_interval: 200ms\n      scrape_timeout: 150ms\n      target_limit: 1\n      static_configs: [{targets: [%q, %q]}]\n",
		text("a 1\n"), text("b 1\n"))
	tr := startWithTelemetry(t, yml.String())

	jobs = append(jobs, struct{ job, reason, target, extra string }{job: "target_limit", reason: reasonTargetLimit})
	for _, j := range jobs {
		comptest.WaitFor(t, 20*time.Second, j.job+" counted as "+j.reason, func() bool { return tr.errors(j.job, j.reason) >= 2 })
	}
	for _, j := range jobs {
		// Each failure is counted under its own reason only.
		if reasons := tr.errorReasons(j.job); len(reasons) != 1 || reasons[j.reason] == 0 {
			t.Errorf("job %s: errors counted by reason %v, want only %s", j.job, reasons, j.reason)
		}
		comptest.WaitFor(t, 5*time.Second, j.job+" reported down", func() bool {
			return tr.gauge("otelcol_prometheus_receiver_targets", attribute.String("job", j.job), attribute.String("health", healthDown)) >= 1
		})
	}
}

// A healthy target: its scrapes are timed and their samples counted as
// Prometheus' scrape_samples_scraped says, the target is up, discovery
// counts what relabel_configs kept and dropped, every scrape handed to the
// pipeline is counted in otelcol_receiver_accepted_metric_points, and what
// the pipeline refuses in _refused_ and as a consumer_refused scrape error
// while the target stays up.
func TestTelemetryOfAHealthyTarget(t *testing.T) {
	srv := target(t, exposition)
	tr := startWithTelemetry(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      static_configs: [{targets: [%q, "127.0.0.1:1"]}]
      relabel_configs:
        - source_labels: [__address__]
          regex: "127.0.0.1:1"
          action: drop
    - job_name: idle
      static_configs: [{targets: ["127.0.0.1:1"]}]
      relabel_configs:
        - {action: drop, regex: ".*", source_labels: [__address__]}
`, hostOf(srv)))
	job := attribute.String("job", "app")
	comptest.WaitFor(t, 20*time.Second, "5 scrapes", func() bool { return tr.scrapes("app") >= 5 })
	comptest.WaitFor(t, 5*time.Second, "the target reported up", func() bool {
		return tr.gauge("otelcol_prometheus_receiver_targets", job, attribute.String("health", healthUp)) == 1
	})
	for _, g := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"otelcol_prometheus_receiver_targets", []attribute.KeyValue{job, attribute.String("health", healthDown)}, 0},
		{"otelcol_prometheus_receiver_targets", []attribute.KeyValue{job, attribute.String("health", healthUnknown)}, 0},
		{"otelcol_prometheus_receiver_discovered_targets", []attribute.KeyValue{job, attribute.String("state", "active")}, 1},
		{"otelcol_prometheus_receiver_discovered_targets", []attribute.KeyValue{job, attribute.String("state", "dropped")}, 1},
		// A job with nothing to scrape is reported too, at zero.
		{"otelcol_prometheus_receiver_targets", []attribute.KeyValue{attribute.String("job", "idle"), attribute.String("health", healthUp)}, 0},
		{"otelcol_prometheus_receiver_discovered_targets", []attribute.KeyValue{attribute.String("job", "idle"), attribute.String("state", "dropped")}, 1},
	} {
		if got := tr.gauge(g.name, g.attrs...); got != g.want {
			t.Errorf("%s%v = %d, want %d", g.name, g.attrs, got, g.want)
		}
	}

	tr.refuse.Store(true)
	comptest.WaitFor(t, 10*time.Second, "3 refused scrapes", func() bool { return tr.errors("app", reasonConsumerRefused) >= 3 })
	if up := tr.gauge("otelcol_prometheus_receiver_targets", job, attribute.String("health", healthUp)); up != 1 {
		t.Errorf("a scrape the pipeline refused made the target down: targets{health=up} = %d", up)
	}
	// The pipeline takes again (so that the stale markers of the shutdown
	// are taken too), then the receiver stops, so that the counts no
	// longer move.
	tr.refuse.Store(false)
	if err := tr.rcv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	scrapes := int64(tr.scrapes("app"))
	// The exposition holds 12 samples: 2 counter series, a gauge, 5
	// histogram series, 3 summary series, an untyped one.
	if got := comptest.Counter(tr.tel, "otelcol_prometheus_receiver_samples_scraped", ownID, job); got != 12*scrapes {
		t.Errorf("samples_scraped = %d after %d scrapes, want 12 a scrape", got, scrapes)
	}
	std := []attribute.KeyValue{ownID, attribute.String("transport", "http")}
	if got, want := comptest.Counter(tr.tel, "otelcol_receiver_accepted_metric_points", std...), int64(tr.sink.DataPointCount()); got != want {
		t.Errorf("otelcol_receiver_accepted_metric_points = %d, want the %d points the pipeline took", got, want)
	}
	// Every refused scrape held as many points as the first scrape.
	perScrape := int64(tr.sink.AllMetrics()[0].DataPointCount())
	refusedScrapes := tr.errors("app", reasonConsumerRefused)
	if got := comptest.Counter(tr.tel, "otelcol_receiver_refused_metric_points", std...); got != perScrape*refusedScrapes {
		t.Errorf("otelcol_receiver_refused_metric_points = %d after %d refused scrapes, want %d a scrape", got, refusedScrapes, perScrape)
	}
	if n := tr.errors("app", reasonParse) + tr.errors("app", reasonHTTPStatus); n != 0 {
		t.Errorf("%d scrape errors of a healthy target", n)
	}
}
