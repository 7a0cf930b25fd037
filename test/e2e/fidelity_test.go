package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/sluicehq/sluice/bench/loadgen"
	"github.com/sluicehq/sluice/bench/sink"
)

// normalize makes one system's series comparable with the other's: the
// loadgen instance (each system scrapes its own copy, on other ports) becomes
// its index, and le/quantile values take Prometheus 3's float form, which the
// Prometheus 2.42 in Debian does not apply yet (it stores le="1", Prometheus
// 3 and Sluice le="1.0"; the loadgen's own bounds are not whole numbers, so
// only the node exporter's go_gc_duration_seconds quantiles differ).
func normalize(ls labels.Labels, instances map[string]string) string {
	b := labels.NewBuilder(ls)
	if idx, ok := instances[ls.Get("instance")]; ok {
		b.Set("instance", idx)
	}
	for _, n := range []string{"le", "quantile"} {
		if v := ls.Get(n); v != "" {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				b.Set(n, labels.FormatOpenMetricsFloat(f))
			}
		}
	}
	return b.Labels().String()
}

// sluiceScrape runs bin/sluice with the prometheus receiver on promYAML and
// the remote_write exporter sending to a sink of its own, which it returns:
// the whole path, end to end.
func sluiceScrape(t *testing.T, promYAML string) *sink.Sink {
	t.Helper()
	return sluiceScrapeLoop(t, "", promYAML)
}

// sluiceScrapeLoop is sluiceScrape with scrape_loop set (loop "" leaves the
// default).
func sluiceScrapeLoop(t *testing.T, loop, promYAML string) *sink.Sink {
	t.Helper()
	s, addr := startSink(t)
	sluiceScrapeInto(t, addr, loop, promYAML)
	return s
}

// sluiceScrapeInto runs the scrape with the exporter sending to the sink
// at addr.
func sluiceScrapeInto(t *testing.T, addr, loop, promYAML string) {
	t.Helper()
	loopKey := ""
	if loop != "" {
		loopKey = "    scrape_loop: " + loop + "\n"
	}
	dir := t.TempDir()
	health := freePort(t)
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`receivers:
  prometheus:
%s    config:
%sexporters:
  remote_write:
    endpoint: http://%s/api/v1/write
    queue:
      directory: %s
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
      exporters: [remote_write]
`, loopKey, indent(indent(indent(promYAML))), addr, filepath.Join(dir, "queue"), health))
	startSluice(t, cfg).waitHealthy(t, health, 60*time.Second, "sluice")
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

// sinkSeries is what a sink received: series -> values in time order (stale
// markers out; a native histogram by its count), with normalized labels.
func sinkSeries(t *testing.T, s *sink.Sink, instances map[string]string) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, key := range s.Series() {
		ls, err := parseLabels(key)
		if err != nil {
			t.Fatal(err)
		}
		k := normalize(ls, instances)
		for _, p := range s.Samples(key) {
			if !isStale(p.V) {
				out[k] = append(out[k], p.V)
			}
		}
		for _, p := range s.Histograms(key) {
			out[k+histogramMark] = append(out[k+histogramMark], p.V)
		}
	}
	return out
}

// histogramMark tells a native histogram series (compared by its count)
// from a float series of the same labels.
const histogramMark = " (native histogram)"

// startNodeExporter runs Debian's prometheus-node-exporter on loopback.
func startNodeExporter(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		t.Fatal("prometheus-node-exporter is not installed; `make test` installs Debian's package")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--web.listen-address="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 20*time.Second, "node exporter", func() bool { return healthyURL("http://" + addr + "/metrics") })
	return addr
}

// Prometheus itself (Debian's 2.42, agent mode) and Sluice scrape the same
// kind of targets: a loadgen each (same seed, so scrape k of target i is the
// same exposition for both) and the one node exporter. The series must be
// the same — names and labels — and the loadgen values equal scrape by
// scrape: counters, gauges, classic histograms and summaries, and in the
// native variant native histograms (compared by count) over protobuf.
// Both scrape loops (scrape_loop) are held to it.
func TestScrapeFidelityAgainstPrometheus(t *testing.T) {
	for _, loop := range []string{"prometheus", "sluice"} {
		t.Run(loop+" loop", func(t *testing.T) {
			t.Run("classic", func(t *testing.T) { scrapeFidelity(t, loop, false) })
			t.Run("native histograms", func(t *testing.T) { scrapeFidelity(t, loop, true) })
		})
	}
}

func scrapeFidelity(t *testing.T, loop string, native bool) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed; `make test` installs Debian's package")
	}
	fx := startFidelityTargets(t, native)
	lgSluice, lgProm, node, instances := fx.sluice, fx.prom, fx.node, fx.instances

	// global is what each side needs to scrape native histograms: a scrape
	// option in Prometheus 3 (Sluice's library), a feature flag in 2.42.
	promConfig := func(lg []string, global string) string { return fidelityScrapeConfig(lg, node, global) }
	sluiceGlobal, features, sendNative := "", "agent", ""
	if native {
		sluiceGlobal, features, sendNative = "  scrape_native_histograms: true\n", "agent,native-histograms", "    send_native_histograms: true\n"
	}

	s, sinkAddr := startSink(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "prometheus.yml", promConfig(lgProm.Addrs(), "")+fmt.Sprintf("remote_write:\n  - url: http://%s/api/v1/write\n%s", sinkAddr, sendNative))
	startTool(t, dir, "prometheus", promBin, "--enable-feature="+features, "--config.file="+path,
		"--storage.agent.path="+filepath.Join(dir, "wal"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)))
	sluiceSink := sluiceScrapeLoop(t, loop, promConfig(lgSluice.Addrs(), sluiceGlobal))

	// Enough scrapes on both sides: five of every loadgen target.
	const scrapes = 5
	waitFixtureScrapes(t, scrapes, lgSluice, lgProm)

	compareScrapes(t, sinkSeries(t, sluiceSink, instances), sinkSeries(t, s, instances), scrapes, native)
}

// compareScrapes holds what Sluice stored (ours) to what Prometheus stored
// from a direct scrape (theirs): the same series, and each loadgen series'
// first values equal scrape by scrape (node exporter and scrape_* values
// depend on when each system scraped, so only their names are compared).
func compareScrapes(t *testing.T, ours, theirs map[string][]float64, scrapes int, native bool) {
	t.Helper()
	var missing, extra []string
	for k := range theirs {
		if _, ok := ours[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range ours {
		if _, ok := theirs[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("series differ: %d stored by Prometheus only, %d by Sluice only\nPrometheus only: %v\nSluice only: %v",
			len(missing), len(extra), head(missing, 10), head(extra, 10))
	}
	compared, histograms, loadgenSeries := 0, 0, 0
	for k, want := range theirs {
		if !strings.Contains(k, `job="loadgen"`) || strings.Contains(k, `__name__="scrape_`) || strings.Contains(k, `__name__="up"`) {
			continue // node exporter and scrape_* values depend on when each system scraped
		}
		loadgenSeries++
		got := ours[k]
		n := min(len(got), len(want), scrapes)
		if n < 3 {
			t.Errorf("%s: only %d (Sluice) and %d (Prometheus) samples", k, len(got), len(want))
			continue
		}
		for i := 0; i < n; i++ {
			if got[i] != want[i] {
				t.Errorf("%s scrape %d: Sluice %v, Prometheus %v", k, i, got[i], want[i])
				break
			}
		}
		compared++
		if strings.HasSuffix(k, histogramMark) {
			histograms++
		}
	}
	if compared == 0 || compared != loadgenSeries {
		t.Errorf("compared %d of %d loadgen series", compared, loadgenSeries)
	}
	if native && histograms == 0 {
		t.Error("no native histogram series reached either side")
	}
	t.Logf("%d series stored by both; %d loadgen series (%d native histograms) equal over %d scrapes", len(theirs), compared, histograms, scrapes)
}

// fidelityTargets are what the fidelity tests scrape: a loadgen for each
// side (same seed, so scrape k of target i is the same exposition for both)
// and the one node exporter; instances maps each loadgen's address to its
// index, which normalize puts in its place.
type fidelityTargets struct {
	sluice, prom *loadgen.Server
	node         string
	instances    map[string]string
}

func startFidelityTargets(t *testing.T, native bool) fidelityTargets {
	t.Helper()
	cfg := loadgen.Config{Targets: 2, SeriesPerTarget: 300, Seed: 42, NativeHistograms: native}
	start := func() *loadgen.Server {
		lg, err := loadgen.Start(cfg, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lg.Stop)
		return lg
	}
	fx := fidelityTargets{sluice: start(), prom: start(), node: startNodeExporter(t), instances: map[string]string{}}
	for i := range fx.sluice.Addrs() {
		fx.instances[fx.sluice.Addrs()[i]] = fmt.Sprintf("loadgen-%d", i)
		fx.instances[fx.prom.Addrs()[i]] = fmt.Sprintf("loadgen-%d", i)
	}
	return fx
}

// fidelityScrapeConfig scrapes the loadgen targets (job loadgen) and the
// node exporter (job node) every second; global is added to the global
// block.
func fidelityScrapeConfig(lg []string, node, global string) string {
	q := make([]string, len(lg))
	for i, a := range lg {
		q[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
%sscrape_configs:
  - job_name: loadgen
    static_configs:
      - targets: [%s]
  - job_name: node
    static_configs:
      - targets: [%q]
`, global, strings.Join(q, ", "), node)
}

func head(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func isStale(v float64) bool { return value.IsStaleNaN(v) }

func parseLabels(key string) (labels.Labels, error) { return sink.ParseSeries(key) }

func healthyURL(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitFixtureScrapes waits until every target of each loadgen has been
// scraped n+1 times (the first may precede the comparison's window), then
// long enough for Prometheus to have sent them: it sends every 5 s at most
// (its batch deadline).
func waitFixtureScrapes(t *testing.T, n int, lgs ...*loadgen.Server) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d scrapes of every fixture target", n), func() bool {
		for _, lg := range lgs {
			for _, ts := range lg.Stats().Targets {
				if ts.Scrapes < int64(n)+1 {
					return false
				}
			}
		}
		return true
	})
	time.Sleep(7 * time.Second)
}
