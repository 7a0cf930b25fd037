package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/bench/sink"
)

// deltaPoint is one export of an OTLP SDK with delta temporality: the
// increase of a monotonic sum per series over (start, ts].
func deltaPoint(service string, start, ts time.Time, increases map[string]int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", service)
	rm.Resource().Attributes().PutStr("service.instance.id", "i-1")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("app.requests")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for _, path := range keys(increases) {
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("path", path)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetIntValue(increases[path])
	}
	return md
}

// telemetryValue sums a counter of Sluice's own metrics over the series
// whose labels include every pair in match.
func telemetryValue(t *testing.T, port int, name string, match map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("sluice's own metrics: %v", err)
	}
	total := 0.0
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			ok = ok && labels[k] == v
		}
		if ok {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// An OTLP counter with delta temporality, pushed over OTLP/HTTP as an SDK
// exports it (one request per interval, each point the increase since the
// previous one), goes through the delta_to_cumulative processor and the
// remote_write exporter (add_metric_suffixes: the counter's _total) into
// Debian's Prometheus and is stored there as a Prometheus counter:
// app_requests_total, one series per attribute set, each
// sample the running total at the point's timestamp. The same points sent
// through a pipeline without the processor never reach Prometheus and are
// counted by the exporter as dropped for delta_temporality, as its README
// says.
func TestOTLPDeltaBecomesPrometheusCounter(t *testing.T) {
	prom := newBackend(t, "prometheus")
	dir := t.TempDir()
	withPort, withoutPort, health, telemetry := freePort(t), freePort(t), freePort(t), freePort(t)
	exporter := func(name string) string {
		return fmt.Sprintf(`
    endpoint: %s
    add_metric_suffixes: true
    queue:
      directory: %s`, prom.writeURL(), filepath.Join(dir, name))
	}
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`receivers:
  otlp/delta:
    protocols:
      http: {endpoint: 127.0.0.1:%d}
  otlp/raw:
    protocols:
      http: {endpoint: 127.0.0.1:%d}
processors:
  delta_to_cumulative: {}
exporters:
  remote_write/delta:%s
  remote_write/raw:%s
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus: {host: 127.0.0.1, port: %d}
  pipelines:
    metrics/delta:
      receivers: [otlp/delta]
      processors: [delta_to_cumulative]
      exporters: [remote_write/delta]
    metrics/raw:
      receivers: [otlp/raw]
      exporters: [remote_write/raw]
`, withPort, withoutPort, exporter("delta"), exporter("raw"), health, telemetry))
	sl := startSluice(t, cfg)
	sl.waitHealthy(t, health, 60*time.Second, "sluice")

	// Six exports 5 s apart, ending a little before now (inside
	// Prometheus' head block); each covers the time since the previous one.
	increases := []map[string]int64{
		{"/a": 3, "/b": 1}, {"/a": 5, "/b": 1}, {"/a": 0, "/b": 1},
		{"/a": 7, "/b": 1}, {"/a": 2, "/b": 1}, {"/a": 1, "/b": 1},
	}
	const step = 5 * time.Second
	t0 := time.Now().Add(-time.Duration(len(increases)+1) * step).Truncate(time.Millisecond)
	want := map[string][]sink.Point{}
	running := map[string]int64{}
	for i, inc := range increases {
		ts := t0.Add(time.Duration(i) * step)
		md := deltaPoint("delta-app", ts.Add(-step), ts, inc)
		sendOTLP(t, withPort, md)
		sendOTLP(t, withoutPort, deltaPoint("delta-app-raw", ts.Add(-step), ts, inc))
		for path, v := range inc {
			running[path] += v
			key := fmt.Sprintf(`{__name__="app_requests_total", instance="i-1", job="delta-app", path="%s"}`, path)
			want[key] = append(want[key], sink.Point{T: ts.UnixMilli(), V: float64(running[path])})
		}
	}

	from, to := t0.Add(-step).UnixMilli(), time.Now().Add(time.Second).UnixMilli()
	var got map[string][]sink.Point
	diff := "nothing queried yet"
	for deadline := time.Now().Add(30 * time.Second); diff != "" && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		got = prom.storedMatching(t, `{job="delta-app"}`, from, to)
		diff = compareStored(want, got, 0)
	}
	if diff != "" {
		t.Fatalf("Prometheus does not hold the running totals: %s\ngot %v", diff, got)
	}
	if len(got) != len(want) {
		t.Errorf("Prometheus holds %d series of job delta-app, want %d: %v", len(got), len(want), got)
	}

	// Without the processor: nothing stored, every point counted as dropped.
	points := float64(len(increases) * 2)
	waitFor(t, 20*time.Second, "the raw pipeline's delta points counted as dropped", func() bool {
		return telemetryValue(t, telemetry, "otelcol_remote_write_dropped",
			map[string]string{"exporter": "remote_write/raw", "reason": "delta_temporality"}) == points
	})
	if raw := prom.storedMatching(t, `{job="delta-app-raw"}`, from, to); len(raw) != 0 {
		t.Errorf("delta points without the processor reached Prometheus: %v", raw)
	}
	if !strings.Contains(sl.out.String(), "Dropping points with delta temporality") {
		t.Errorf("sluice did not log the refused delta points:\n%s", tail(sl.out.String(), 20))
	}
}
