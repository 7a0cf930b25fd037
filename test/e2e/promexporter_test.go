package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sluicehq/sluice/bench/sink"
)

// exportJob is the job under which Prometheus scrapes Sluice's /metrics;
// its own series (up, scrape_*) describe that scrape, not the fixture.
const exportJob = "sluice_export"

// Debian's Prometheus scrapes the fixture (a loadgen, the node exporter)
// directly; a second one scrapes Sluice's `prometheus` exporter while
// Sluice scrapes an identical fixture. Both store (remote write to a sink
// each) the same series — names and labels, job and instance of the
// original targets (honor_labels: true) — and the loadgen values equal
// scrape by scrape, classic histograms and summaries included, and native
// histograms over the protobuf exposition in the native variant.
func TestPrometheusExporterFidelityAgainstPrometheus(t *testing.T) {
	t.Run("classic", func(t *testing.T) { exporterFidelity(t, false) })
	t.Run("native histograms", func(t *testing.T) { exporterFidelity(t, true) })
}

func exporterFidelity(t *testing.T, native bool) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed; `make test` installs Debian's package")
	}
	fx := startFidelityTargets(t, native)
	lgSluice, lgProm, node, instances := fx.sluice, fx.prom, fx.node, fx.instances
	sluiceGlobal, features := "", "agent"
	if native {
		sluiceGlobal, features = "  scrape_native_histograms: true\n", "agent,native-histograms"
	}
	dir := t.TempDir()
	startProm := func(name, config string) {
		startPrometheusAgent(t, promBin, filepath.Join(dir, name), features, config)
	}

	// The direct scrape.
	direct, directAddr := startSink(t)
	direct.KeepRequests()
	startProm("prometheus-direct", fidelityScrapeConfig(lgProm.Addrs(), node, "")+
		fmt.Sprintf("remote_write:\n  - url: http://%s/api/v1/write\n%s", directAddr, remoteWriteKeys(native)))

	// The scrape of Sluice, running before Sluice starts: /metrics holds the
	// newest sample of each series, so a scraper that starts later misses
	// the first. Scraping twice per Sluice scrape, it sees every one. Each
	// sample keeps its scrape time (send_timestamps), so it is stored once
	// however often it is scraped.
	exportPort := freePort(t)
	via, viaAddr := startSink(t)
	via.KeepRequests()
	startProm("prometheus-via-sluice", fmt.Sprintf(`global:
  scrape_interval: 500ms
  scrape_timeout: 500ms
scrape_configs:
  - job_name: %s
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:%d"]
remote_write:
  - url: http://%s/api/v1/write
%s`, exportJob, exportPort, viaAddr, remoteWriteKeys(native)))

	// Its own up series (0: Sluice is not there yet) reaching the sink says
	// it scrapes and sends.
	waitFor(t, 60*time.Second, "the second Prometheus scraping and sending", func() bool {
		for _, k := range via.Series() {
			if strings.Contains(k, `__name__="up"`) && strings.Contains(k, `job="`+exportJob+`"`) {
				return true
			}
		}
		return false
	})

	health := freePort(t)
	sluiceCfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`receivers:
  prometheus:
    config:
%sexporters:
  prometheus:
    endpoint: 127.0.0.1:%d
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [prometheus]
`, indent(indent(indent(fidelityScrapeConfig(lgSluice.Addrs(), node, sluiceGlobal)))), exportPort, health))
	startSluice(t, sluiceCfg).waitHealthy(t, health, 60*time.Second, "sluice")

	const scrapes = 5
	waitFixtureScrapes(t, scrapes, lgSluice, lgProm)

	ours := sinkSeries(t, via, instances)
	exposed := 0
	for k := range ours {
		if strings.Contains(k, `job="`+exportJob+`"`) {
			delete(ours, k) // the second Prometheus' own series about scraping Sluice
			continue
		}
		exposed++
	}
	if exposed == 0 {
		t.Fatal("the Prometheus scraping Sluice stored nothing from it")
	}
	compareScrapes(t, ours, sinkSeries(t, direct, instances), scrapes, native)
	// The metadata: type and help of every family, as each Prometheus sent
	// it. Two differences are the formats', not Sluice's: a target that
	// serves OpenMetrics (the loadgen, asked for it) names a counter's
	// family without _total, and the exposition Sluice serves in the text
	// format names it after its series, with _total; and the series Sluice's
	// scrape loop adds (up, scrape_*) come with their help, which
	// Prometheus keeps for nobody's own.
	want, got := sinkMetadata(direct), sinkMetadata(via)
	renamed := 0
	for k, w := range want {
		if _, ok := got[k]; !ok && strings.HasPrefix(w, "COUNTER|") && got[k+"_total"] == w {
			got[k] = w
			delete(got, k+"_total")
			renamed++
		}
	}
	for _, n := range []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"} {
		if _, ok := want[n]; !ok {
			delete(got, n)
		}
	}
	for _, d := range diffMetadata(want, got) {
		t.Errorf("metadata: %s", d)
	}
	if len(want) == 0 {
		t.Error("no metadata from the direct scrape")
	}
	t.Logf("metadata (type, help, unit) of %d families equal (%d OpenMetrics counter families named with _total)", len(want), renamed)
}

// sinkMetadata is the metadata Prometheus sent: family -> type, help, unit.
func sinkMetadata(s *sink.Sink) map[string]string {
	out := map[string]string{}
	v1, _ := s.Requests()
	for _, req := range v1 {
		for _, m := range req.Metadata {
			out[m.MetricFamilyName] = fmt.Sprintf("%s|%q|%s", m.Type, m.Help, m.Unit)
		}
	}
	return out
}

func diffMetadata(want, got map[string]string) []string {
	var d []string
	for k, w := range want {
		if g := got[k]; g != w {
			d = append(d, fmt.Sprintf("%s: via Sluice %q, direct %q", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: via Sluice only %q", k, g))
		}
	}
	sort.Strings(d)
	return d
}

// startPrometheusAgent runs Debian's Prometheus in agent mode with the
// features and config given, its WAL and log in dir (created).
func startPrometheusAgent(t *testing.T, promBin, dir, features, config string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, "prometheus.yml", config)
	startTool(t, dir, filepath.Base(dir), promBin, "--enable-feature="+features, "--config.file="+path,
		"--storage.agent.path="+filepath.Join(dir, "wal"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)))
}

// remoteWriteKeys make Prometheus 2.42 send its metadata every second
// (to compare) and, for the native variant, the native histograms it
// stored.
func remoteWriteKeys(native bool) string {
	keys := "    metadata_config:\n      send_interval: 1s\n"
	if native {
		keys += "    send_native_histograms: true\n"
	}
	return keys
}

// `make run` with no backend anywhere: configs/default.yaml serves this
// host's node metrics (the unix receiver's, job node) and Sluice's own
// (job sluice) on 127.0.0.1 for curl or a Prometheus, while remote_write
// queues for a backend that is not there.
func TestDefaultConfigServesNodeMetricsWithoutBackend(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "configs", "default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "  prometheus:\n    endpoint: 127.0.0.1:9464\n") {
		t.Fatal("configs/default.yaml no longer serves the prometheus exporter on 127.0.0.1:9464 (loopback only); update this test and the README")
	}
	telemetryPort, healthPort, exportPort := freePort(t), freePort(t), freePort(t)
	config := defaultConfigOn(t, telemetryPort, healthPort, freePort(t), freePort(t), freePort(t), exportPort)
	noBackend := freePort(t) // nothing listens there
	p := startSluiceEnv(t, []string{
		"SLUICE_QUEUE_DIR=" + filepath.Join(t.TempDir(), "queue"),
		fmt.Sprintf("SLUICE_REMOTE_WRITE_URL=http://127.0.0.1:%d/api/v1/write", noBackend),
	}, "--config", config)
	p.waitHealthy(t, healthPort, 60*time.Second, "sluice")

	// The unix receiver collects every 15 s, the first time at start.
	var m map[string]*dto.MetricFamily
	waitFor(t, 45*time.Second, "node and sluice metrics at the prometheus exporter", func() bool {
		m = ownMetrics(t, exportPort)
		return valueOf(m, "node_cpu_seconds_total", map[string]string{"job": "node", "mode": "idle"}) > 0 &&
			valueOf(m, "otelcol_process_memory_rss", map[string]string{"job": "sluice"}) > 0
	})
	for _, c := range []struct {
		name string
		typ  dto.MetricType
	}{
		{"node_cpu_seconds_total", dto.MetricType_COUNTER},
		{"node_memory_MemTotal_bytes", dto.MetricType_GAUGE},
		{"node_load1", dto.MetricType_GAUGE},
		{"node_network_receive_bytes_total", dto.MetricType_COUNTER},
		{"node_filesystem_size_bytes", dto.MetricType_GAUGE},
	} {
		f, ok := m[c.name]
		if !ok {
			t.Errorf("%s: not served", c.name)
			continue
		}
		if f.GetType() != c.typ || f.GetHelp() == "" {
			t.Errorf("%s: type %s help %q, want %s with help", c.name, f.GetType(), f.GetHelp(), c.typ)
		}
		for _, mt := range f.GetMetric() {
			if mt.TimestampMs == nil {
				t.Errorf("%s: a sample without its collection time", c.name)
				break
			}
		}
	}
	if v := valueOf(m, "node_memory_MemTotal_bytes", map[string]string{"job": "node"}); v <= 0 {
		t.Errorf("node_memory_MemTotal_bytes = %v", v)
	}
	t.Logf("%d families served with no backend", len(m))
}
