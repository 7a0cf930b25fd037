package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/bench/loadgen"
	"github.com/sluicehq/sluice/bench/sink"
)

// startGateway runs bin/sluice as a gateway (remote_write receiver → batch
// → remote_write exporter, 2.0 out) into a sink of its own, and returns the
// receiver's port and the sink.
func startGateway(t *testing.T, dir string) (int, *sink.Sink) {
	t.Helper()
	s, sinkAddr := startSink(t)
	rwPort, health := freePort(t), freePort(t)
	gw := startSluice(t, writeFile(t, dir, "gateway.yaml", fmt.Sprintf(`receivers:
  remote_write:
    endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
    wait_for_result: true
exporters:
  remote_write:
    endpoint: http://%s/api/v1/write
    protobuf_message: io.prometheus.write.v2.Request
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
      receivers: [remote_write]
      processors: [batch]
      exporters: [remote_write]
`, rwPort, sinkAddr, filepath.Join(dir, "queue"), health)))
	gw.waitHealthy(t, health, 60*time.Second, "the gateway")
	return rwPort, s
}

func quotedAddrs(lg *loadgen.Server) string {
	targets := make([]string, len(lg.Addrs()))
	for i, a := range lg.Addrs() {
		targets[i] = strconv.Quote(a)
	}
	return strings.Join(targets, ", ")
}

func waitScrapes(t *testing.T, lg *loadgen.Server, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d scrapes of every target", n), func() bool {
		for _, ts := range lg.Stats().Targets {
			if ts.Scrapes < int64(n) {
				return false
			}
		}
		return true
	})
}

// comparePaths waits until the gateway path holds as many samples as the
// direct one and nothing arrives any more, then requires the same series
// with the same values on both, and no duplicates or out-of-order samples
// through the gateway. It returns the series and native histograms seen.
func comparePaths(t *testing.T, direct, viaGateway *sink.Sink) (series, histograms int) {
	t.Helper()
	var want, got map[string][]float64
	last, since := -1, time.Now()
	waitFor(t, 30*time.Second, "the gateway path to catch up and both paths to settle", func() bool {
		want, got = sinkSeries(t, direct, nil), sinkSeries(t, viaGateway, nil)
		n := samplesIn(want)
		if n != last {
			last, since = n, time.Now()
		}
		return n > 0 && samplesIn(got) >= n && time.Since(since) > 2*time.Second
	})
	var differ []string
	for k, w := range want {
		if strings.HasSuffix(k, histogramMark) {
			histograms++
		}
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			differ = append(differ, fmt.Sprintf("%s: direct %v, via gateway %v", k, w, got[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			differ = append(differ, k+": only via the gateway")
		}
	}
	sort.Strings(differ)
	if len(differ) > 0 {
		t.Errorf("%d series differ between the direct and the gateway path:\n%s", len(differ), strings.Join(head(differ, 10), "\n"))
	}
	st := viaGateway.Stats().RemoteWrite
	if st.Duplicates != 0 || st.OutOfOrder != 0 {
		t.Errorf("via the gateway: %d duplicates, %d out of order", st.Duplicates, st.OutOfOrder)
	}
	t.Logf("%d series (%d native histograms), %d samples: equal on both paths", len(want), histograms, samplesIn(want))
	return len(want), histograms
}

// TestPrometheusAgentPushesThroughGateway runs Debian's Prometheus in agent
// mode as the edge, scraping bench/loadgen (with native histograms) and
// remote-writing twice: straight to one sink, and through bin/sluice as a
// gateway to another. Both sinks must hold the same series with the same
// values, and the gateway path no duplicates and nothing out of order.
func TestPrometheusAgentPushesThroughGateway(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed; `make test` installs Debian's package")
	}
	lg, err := loadgen.Start(loadgen.Config{Targets: 2, SeriesPerTarget: 300, Seed: 7, NativeHistograms: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Stop()

	direct, directAddr := startSink(t)
	dir := t.TempDir()
	rwPort, viaGateway := startGateway(t, dir)
	promYAML := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: loadgen
    static_configs:
      - targets: [%s]
remote_write:
  - url: http://%s/api/v1/write
    send_native_histograms: true
  - url: http://127.0.0.1:%d/api/v1/write
    send_native_histograms: true
`, quotedAddrs(lg), directAddr, rwPort)
	prom := exec.Command(promBin, "--enable-feature=agent,native-histograms", "--config.file="+writeFile(t, dir, "prometheus.yml", promYAML),
		"--storage.agent.path="+filepath.Join(dir, "wal"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)))
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	prom.Stdout, prom.Stderr = logf, logf
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prom.Process.Kill(); _ = prom.Wait() }()

	waitScrapes(t, lg, 6)
	// Stop the edge, so both paths have everything it will ever send, then
	// let the gateway's queue drain.
	_ = prom.Process.Signal(os.Interrupt)
	_ = prom.Wait()
	if _, histograms := comparePaths(t, direct, viaGateway); histograms == 0 {
		t.Error("no native histogram reached the sinks")
	}
}

// TestVmagentPushesThroughGateway does the same with Debian's vmagent as
// the edge (remote write 1.0; vmagent 1.79 sends no native histograms).
// vmagent keeps unsent data on disk when stopped, so instead of stopping it
// the test empties its scrape config and reloads it with SIGHUP: scraping
// ends and what was scraped is delivered on both paths.
func TestVmagentPushesThroughGateway(t *testing.T) {
	vmBin, err := exec.LookPath("vmagent")
	if err != nil {
		t.Fatal("vmagent is not installed; `make test` installs Debian's victoria-metrics")
	}
	lg, err := loadgen.Start(loadgen.Config{Targets: 2, SeriesPerTarget: 300, Seed: 8}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Stop()

	direct, directAddr := startSink(t)
	dir := t.TempDir()
	rwPort, viaGateway := startGateway(t, dir)
	scrapeYAML := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: loadgen
    static_configs:
      - targets: [%s]
`, quotedAddrs(lg))
	config := writeFile(t, dir, "vmagent.yaml", scrapeYAML)
	vm := exec.Command(vmBin, "-promscrape.config="+config,
		"-remoteWrite.url=http://"+directAddr+"/api/v1/write",
		fmt.Sprintf("-remoteWrite.url=http://127.0.0.1:%d/api/v1/write", rwPort),
		"-remoteWrite.tmpDataPath="+filepath.Join(dir, "vmagent-queue"),
		fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", freePort(t)))
	logf, _ := os.Create(filepath.Join(dir, "vmagent.log"))
	vm.Stdout, vm.Stderr = logf, logf
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = vm.Process.Kill(); _ = vm.Wait() }()
	defer func() {
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("vmagent log (tail):\n%s", tail(string(log), 3000))
		}
	}()

	waitScrapes(t, lg, 6)
	writeFile(t, dir, "vmagent.yaml", "scrape_configs: []\n")
	if err := vm.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if series, _ := comparePaths(t, direct, viaGateway); series < 600 {
		t.Errorf("%d series reached the sinks, want loadgen's 600 and more", series)
	}
}

func samplesIn(m map[string][]float64) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
