package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/bench/loadgen"
)

// TestPrometheusAgentPushesThroughGateway runs Debian's Prometheus in agent
// mode as the edge, scraping bench/loadgen (with native histograms) and
// remote-writing twice: straight to one sink, and through bin/sluice as a
// gateway (remote_write receiver → batch → remote_write exporter) to
// another. Both sinks must hold the same series with the same values, and
// the gateway path no duplicates and nothing out of order.
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
	viaGateway, gatewaySinkAddr := startSink(t)
	dir := t.TempDir()
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
`, rwPort, gatewaySinkAddr, filepath.Join(dir, "queue"), health)))
	gw.waitHealthy(t, health, 60*time.Second, "the gateway")

	targets := make([]string, len(lg.Addrs()))
	for i, a := range lg.Addrs() {
		targets[i] = strconv.Quote(a)
	}
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
`, strings.Join(targets, ", "), directAddr, rwPort)
	prom := exec.Command(promBin, "--enable-feature=agent,native-histograms", "--config.file="+writeFile(t, dir, "prometheus.yml", promYAML),
		"--storage.agent.path="+filepath.Join(dir, "wal"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)))
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	prom.Stdout, prom.Stderr = logf, logf
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prom.Process.Kill(); _ = prom.Wait() }()

	waitFor(t, 60*time.Second, "five scrapes of every target", func() bool {
		for _, ts := range lg.Stats().Targets {
			if ts.Scrapes < 6 {
				return false
			}
		}
		return true
	})
	// Stop the edge, so both paths have everything it will ever send, then
	// let the gateway's queue drain.
	_ = prom.Process.Signal(os.Interrupt)
	_ = prom.Wait()
	var want, got map[string][]float64
	waitFor(t, 30*time.Second, "the gateway path to catch up", func() bool {
		want, got = sinkSeries(t, direct, nil), sinkSeries(t, viaGateway, nil)
		return samplesIn(got) >= samplesIn(want) && samplesIn(want) > 0
	})

	var differ []string
	histograms := 0
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
	if histograms == 0 {
		t.Error("no native histogram reached the sinks")
	}
	t.Logf("%d series (%d native histograms), %d samples: equal on both paths", len(want), histograms, samplesIn(want))
}

func samplesIn(m map[string][]float64) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
