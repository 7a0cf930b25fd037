package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/extension/statusextension"
)

// defaultConfigOn is configs/default.yaml with its ports moved to free ones
// (the telemetry port, which its own scrape job targets, too; the
// prometheus exporter's on exportPort), plus what
// the telemetry test needs beside it: a scrape job whose target is down and
// a remote_write receiver in the pipeline.
func defaultConfigOn(t *testing.T, telemetryPort, healthPort, rwPort, downPort, statusPort, exportPort int) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "configs", "default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for from, to := range map[string]string{
		"127.0.0.1:8888":  fmt.Sprintf("127.0.0.1:%d", telemetryPort),
		"port: 8888":      fmt.Sprintf("port: %d", telemetryPort),
		"127.0.0.1:13133": fmt.Sprintf("127.0.0.1:%d", healthPort),
		"127.0.0.1:8889":  fmt.Sprintf("127.0.0.1:%d", statusPort),
		"127.0.0.1:9464":  fmt.Sprintf("127.0.0.1:%d", exportPort),
		"127.0.0.1:4317":  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"127.0.0.1:4318":  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	} {
		if !strings.Contains(text, from) {
			t.Fatalf("configs/default.yaml no longer holds %q; update this test", from)
		}
		text = strings.ReplaceAll(text, from, to)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	receivers := cfg["receivers"].(map[string]any)
	prom := receivers["prometheus"].(map[string]any)["config"].(map[string]any)
	prom["scrape_configs"] = append(prom["scrape_configs"].([]any), map[string]any{
		"job_name": "down", "scrape_interval": "1s", "scrape_timeout": "500ms",
		"static_configs": []any{map[string]any{"targets": []any{fmt.Sprintf("127.0.0.1:%d", downPort)}}},
	})
	receivers["remote_write"] = map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", rwPort)}
	pipeline := cfg["service"].(map[string]any)["pipelines"].(map[string]any)["metrics"].(map[string]any)
	pipeline["receivers"] = append(pipeline["receivers"].([]any), "remote_write")
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), "config.yaml", string(out))
}

// ownMetrics reads Sluice's own /metrics as a Prometheus server or curl
// would (the text format).
func ownMetrics(t *testing.T, port int) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// valueOf is the value of the series of family name whose labels include
// want (summed when several match); -1 when there is none.
func valueOf(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf, ok := families[name]
	if !ok {
		return -1
	}
	found, sum := false, 0.0
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	if !found {
		return -1
	}
	return sum
}

// configs/default.yaml (ports moved, a down target and a remote_write
// receiver added) running for 20 s reports the collector's standard
// receiver telemetry for Sluice's receivers on its telemetry port, the down
// target as down with its reason, and a push by answer code and protocol —
// under exactly the names the READMEs document.
func TestOwnTelemetryOfTheDefaultConfig(t *testing.T) {
	_, sinkAddr := startSink(t)
	telemetryPort, healthPort, rwPort, downPort, statusPort := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	config := defaultConfigOn(t, telemetryPort, healthPort, rwPort, downPort, statusPort, freePort(t))
	p := startSluiceEnv(t, []string{
		"SLUICE_QUEUE_DIR=" + filepath.Join(t.TempDir(), "queue"),
		"SLUICE_REMOTE_WRITE_URL=http://" + sinkAddr + "/api/v1/write",
	}, "--config", config)
	p.waitHealthy(t, healthPort, 60*time.Second, "sluice")
	start := time.Now()
	// Healthy: every component started, the remote_write receiver listens.
	pushProbe(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", rwPort), time.Now().UnixMilli())

	time.Sleep(20*time.Second - time.Since(start))
	m := ownMetrics(t, telemetryPort)
	names := make([]string, 0, len(m))
	for n := range m {
		if strings.Contains(n, "receiver") {
			names = append(names, n)
		}
	}
	t.Logf("receiver families on :%d/metrics: %v", telemetryPort, names)

	for _, c := range []struct {
		name   string
		labels map[string]string
		check  func(float64) bool
		want   string
	}{
		{"otelcol_receiver_accepted_metric_points", map[string]string{"receiver": "unix", "transport": ""}, positive, "> 0"},
		{"otelcol_receiver_accepted_metric_points", map[string]string{"receiver": "prometheus", "transport": "http"}, positive, "> 0"},
		{"otelcol_receiver_accepted_metric_points", map[string]string{"receiver": "remote_write", "transport": "http"}, equals(1), "1 (the one push of one sample)"},
		{"otelcol_receiver_refused_metric_points", map[string]string{"receiver": "prometheus"}, equals(0), "0"},
		{"otelcol_prometheus_receiver_targets", map[string]string{"job": "sluice", "health": "up"}, equals(1), "1"},
		{"otelcol_prometheus_receiver_targets", map[string]string{"job": "down", "health": "down"}, equals(1), "1"},
		{"otelcol_prometheus_receiver_targets", map[string]string{"job": "down", "health": "up"}, equals(0), "0"},
		{"otelcol_prometheus_receiver_discovered_targets", map[string]string{"job": "down", "state": "active"}, equals(1), "1"},
		{"otelcol_prometheus_receiver_scrape_errors", map[string]string{"job": "down", "reason": "connection"}, positive, "> 0"},
		{"otelcol_prometheus_receiver_scrape_duration_seconds", map[string]string{"job": "sluice"}, positive, "> 0 scrapes"},
		{"otelcol_prometheus_receiver_samples_scraped", map[string]string{"job": "sluice"}, positive, "> 0"},
		{"otelcol_remote_write_receiver_requests", map[string]string{"receiver": "remote_write", "code": "204", "protocol": "1.0"}, equals(1), "1"},
	} {
		got := valueOf(m, c.name, c.labels)
		t.Logf("%s%v = %v", c.name, c.labels, got)
		if !c.check(got) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, got, c.want)
		}
	}

	// The status page lists both things collected (the host, by the unix
	// receiver, and Sluice's own metrics, by the prometheus receiver), the
	// pipeline and the queue.
	var snap statusextension.Snapshot
	if err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/api/v1/status", statusPort), &snap); err != nil {
		t.Fatal(err)
	}
	var host, self bool
	for _, tg := range snap.Targets {
		host = host || (tg.Receiver == "unix" && tg.Job == "node" && tg.Health == "up" && tg.Series > 0)
		self = self || (tg.Receiver == "prometheus" && tg.Job == "sluice" && tg.Health == "up" && tg.Series > 0)
	}
	if !host || !self {
		t.Errorf("status page targets %+v: want the host (unix, job node) and sluice (prometheus) up with series", snap.Targets)
	}
	if len(snap.Pipelines) != 1 || strings.Join(snap.Pipelines[0].Receivers, ",") != "unix,prometheus,otlp,remote_write" ||
		strings.Join(snap.Pipelines[0].Exporters, ",") != "remote_write,prometheus,debug" {
		t.Errorf("status page pipelines: %+v", snap.Pipelines)
	}
	if len(snap.Endpoints) != 1 || snap.Endpoints[0].Exporter != "remote_write" || snap.Endpoints[0].Sent == 0 {
		t.Errorf("status page queues: %+v, want remote_write's endpoint, delivering", snap.Endpoints)
	}
}

func positive(v float64) bool { return v > 0 }

func equals(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
