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

// edge is what an edge test needs: a loadgen, a sink the edge writes to
// directly, and a gateway writing to a second sink.
type edge struct {
	lg         *loadgen.Server
	direct     *sink.Sink
	directAddr string
	viaGateway *sink.Sink
	gatewayURL string
	dir        string
	scrape     string // global and scrape_configs of the loadgen, 1 s interval
}

func startEdgeTest(t *testing.T, cfg loadgen.Config) *edge {
	t.Helper()
	lg, err := loadgen.Start(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Stop)
	e := &edge{lg: lg, dir: t.TempDir()}
	e.direct, e.directAddr = startSink(t)
	rwPort, viaGateway := startGateway(t, e.dir)
	e.viaGateway, e.gatewayURL = viaGateway, fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", rwPort)
	e.scrape = fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: loadgen
    static_configs:
      - targets: [%s]
`, quotedAddrs(lg))
	return e
}

// startTool starts a program the test uses (an edge, a backend) with its
// output in dir/name.log, shown when the test fails; it is killed when the
// test ends.
func startTool(t *testing.T, dir, name, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("%s log (tail):\n%s", name, tail(string(log), 3000))
		}
		logf.Close()
	})
	return cmd
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
	e := startEdgeTest(t, loadgen.Config{Targets: 2, SeriesPerTarget: 300, Seed: 7, NativeHistograms: true})
	promYAML := e.scrape + fmt.Sprintf(`remote_write:
  - url: http://%s/api/v1/write
    send_native_histograms: true
  - url: %s
    send_native_histograms: true
`, e.directAddr, e.gatewayURL)
	prom := startTool(t, e.dir, "prometheus", promBin, "--enable-feature=agent,native-histograms",
		"--config.file="+writeFile(t, e.dir, "prometheus.yml", promYAML),
		"--storage.agent.path="+filepath.Join(e.dir, "wal"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)))

	waitScrapes(t, e.lg, 6)
	// Stop the edge, so both paths have everything it will ever send, then
	// let the gateway's queue drain.
	_ = prom.Process.Signal(os.Interrupt)
	_ = prom.Wait()
	if _, histograms := comparePaths(t, e.direct, e.viaGateway); histograms == 0 {
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
	e := startEdgeTest(t, loadgen.Config{Targets: 2, SeriesPerTarget: 300, Seed: 8})
	config := writeFile(t, e.dir, "vmagent.yaml", e.scrape)
	vm := startTool(t, e.dir, "vmagent", vmBin, "-promscrape.config="+config,
		"-remoteWrite.url=http://"+e.directAddr+"/api/v1/write", "-remoteWrite.url="+e.gatewayURL,
		"-remoteWrite.tmpDataPath="+filepath.Join(e.dir, "vmagent-queue"),
		fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", freePort(t)))

	waitScrapes(t, e.lg, 6)
	writeFile(t, e.dir, "vmagent.yaml", "scrape_configs: []\n")
	if err := vm.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if series, _ := comparePaths(t, e.direct, e.viaGateway); series < 600 {
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
