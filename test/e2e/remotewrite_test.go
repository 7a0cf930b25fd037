package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sluicehq/sluice/bench/loadgen"
	"github.com/sluicehq/sluice/bench/sink"
)

// backend is a real remote-write server run as a process: Prometheus 2.42
// (server mode, --web.enable-remote-write-receiver) or VictoriaMetrics 1.79,
// both from Debian.
type backend struct {
	name string
	args []string // command line; the data directory is in it, so a restart keeps the data
	port int
	log  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	dir := t.TempDir()
	b := &backend{name: name, port: freePort(t), log: filepath.Join(dir, name+".log")}
	listen := fmt.Sprintf("127.0.0.1:%d", b.port)
	switch name {
	case "prometheus":
		cfg := writeFile(t, dir, "prometheus.yml", "global:\n  scrape_interval: 1h\n")
		b.args = []string{"/usr/bin/prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "tsdb"),
			"--web.listen-address=" + listen, "--web.enable-remote-write-receiver"}
	case "victoria-metrics":
		b.args = []string{"/usr/bin/victoria-metrics", "-storageDataPath=" + filepath.Join(dir, "data"),
			"-httpListenAddr=" + listen, "-retentionPeriod=10y"}
	}
	if _, err := os.Stat(b.args[0]); err != nil {
		t.Fatalf("%s is not installed (`make test` installs Debian's package): %v", b.args[0], err)
	}
	b.start(t)
	t.Cleanup(func() { b.stop(t) })
	return b
}

func (b *backend) writeURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", b.port)
}

func (b *backend) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(b.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(b.args[0], b.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.cmd = cmd
	b.mu.Unlock()
	ready := fmt.Sprintf("http://127.0.0.1:%d/-/ready", b.port)
	if b.name == "victoria-metrics" {
		ready = fmt.Sprintf("http://127.0.0.1:%d/health", b.port)
	}
	waitFor(t, 60*time.Second, b.name+" ready", func() bool { return healthyURL(ready) })
}

// stop ends the backend as an operator would (SIGTERM) and waits for it.
func (b *backend) stop(t *testing.T) {
	b.mu.Lock()
	cmd := b.cmd
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	if t.Failed() {
		name := b.name
		if out, err := os.ReadFile(b.log); err == nil {
			t.Logf("%s log (tail):\n%s", name, tail(string(out), 20))
		}
	}
}

// stored returns the raw float samples the backend holds for job="loadgen"
// between from and to (ms), by series (labels.String()).
func (b *backend) stored(t *testing.T, from, to int64) map[string][]sink.Point {
	t.Helper()
	return b.storedMatching(t, `{job="loadgen"}`, from, to)
}

// storedMatching is stored for the series of a selector.
func (b *backend) storedMatching(t *testing.T, selector string, from, to int64) map[string][]sink.Point {
	t.Helper()
	out := map[string][]sink.Point{}
	if b.name == "victoria-metrics" {
		// /api/v1/export: raw samples as JSON lines.
		q := url.Values{"match[]": {selector}, "start": {ms2s(from)}, "end": {ms2s(to)}}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/export?%s", b.port, q.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var line struct {
				Metric     map[string]string `json:"metric"`
				Values     []float64         `json:"values"`
				Timestamps []int64           `json:"timestamps"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("victoria-metrics export: %v in %q", err, sc.Text())
			}
			k := labels.FromMap(line.Metric).String()
			for i, ts := range line.Timestamps {
				out[k] = append(out[k], sink.Point{T: ts, V: line.Values[i]})
			}
		}
		return out
	}
	// Prometheus: an instant query of a range selector gives raw samples.
	window := (to - from + 999) / 1000
	q := url.Values{"query": {fmt.Sprintf(`%s[%ds]`, selector, window)}, "time": {ms2s(to)}}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?%s", b.port, q.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("prometheus query: %v %s", err, body.Error)
	}
	for _, r := range body.Data.Result {
		k := labels.FromMap(r.Metric).String()
		for _, v := range r.Values {
			ts := int64(math.Round(v[0].(float64) * 1000))
			f, err := strconv.ParseFloat(v[1].(string), 64)
			if err != nil {
				t.Fatal(err)
			}
			if ts >= from {
				out[k] = append(out[k], sink.Point{T: ts, V: f})
			}
		}
	}
	return out
}

func ms2s(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) }

// What Sluice scrapes and pushes reaches Prometheus and VictoriaMetrics
// exactly (every sample, equal values at equal timestamps, read back through
// their query APIs), and a 60 s outage of both leaves no gap: the queue keeps
// everything and delivers it in order once they are back.
func TestRemoteWriteToRealBackendsAcrossAnOutage(t *testing.T) {
	lg, err := loadgen.Start(loadgen.Config{Targets: 2, SeriesPerTarget: 100, Seed: 7}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Stop()
	prom := newBackend(t, "prometheus")
	vm := newBackend(t, "victoria-metrics")
	ref, sinkAddr := startSink(t) // what Sluice sent, for comparison; never faulted

	dir := t.TempDir()
	targets := make([]string, len(lg.Addrs()))
	for i, a := range lg.Addrs() {
		targets[i] = strconv.Quote(a)
	}
	health := freePort(t)
	exporter := func(url string) string {
		return fmt.Sprintf(`
    endpoint: %s
    retry_on_failure:
      max_interval: 2s
    queue:
      directory: %s`, url, filepath.Join(dir, "queue"))
	}
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: loadgen
          scrape_interval: 1s
          scrape_timeout: 1s
          static_configs:
            - targets: [%s]
exporters:
  remote_write/prometheus:%s
  remote_write/victoria:%s
  remote_write/reference:%s
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
      exporters: [remote_write/prometheus, remote_write/victoria, remote_write/reference]
`, strings.Join(targets, ", "), exporter(prom.writeURL()), exporter(vm.writeURL()), exporter("http://"+sinkAddr+"/api/v1/write"), health))
	sl := startSluice(t, cfg)
	sl.waitHealthy(t, health, 60*time.Second, "sluice")

	start := time.Now().UnixMilli()
	time.Sleep(10 * time.Second)
	prom.stop(t)
	vm.stop(t)
	outage := time.Now()
	t.Logf("both backends stopped; Sluice keeps scraping for 60 s")
	time.Sleep(60 * time.Second)
	prom.start(t)
	vm.start(t)
	t.Logf("both backends back after %s", time.Since(outage).Round(time.Second))
	end := time.Now().UnixMilli()
	waitFor(t, 60*time.Second, "'Remote write recovered' for both backends", func() bool {
		return strings.Count(sl.out.String(), "Remote write recovered") >= 2
	})

	// What the reference sink got up to `end` is what each backend must hold.
	want := map[string][]sink.Point{}
	samples := 0
	for _, key := range ref.Series() {
		ls, err := sink.ParseSeries(key)
		if err != nil {
			t.Fatal(err)
		}
		if ls.Get("job") != "loadgen" {
			continue
		}
		for _, p := range ref.Samples(key) {
			if p.T >= start && p.T <= end && !isStale(p.V) {
				want[ls.String()] = append(want[ls.String()], p)
				samples++
			}
		}
	}
	if len(want) < 200 || samples < 200*60 {
		t.Fatalf("the reference got %d series, %d samples over the run; want at least 200 series and 60 scrapes of each", len(want), samples)
	}

	for _, b := range []*backend{prom, vm} {
		t.Run(b.name, func(t *testing.T) {
			var got map[string][]sink.Point
			var diff string
			deadline := time.Now().Add(60 * time.Second)
			for {
				got = b.stored(t, start, end)
				tol := 0.0
				if b.name == "victoria-metrics" {
					tol = 1e-14
				}
				if diff = compareStored(want, got, tol); diff == "" || time.Now().After(deadline) {
					break
				}
				time.Sleep(2 * time.Second)
			}
			if diff != "" {
				t.Fatalf("%s does not hold what Sluice sent: %s", b.name, diff)
			}
			maxGap := int64(0)
			for _, pts := range got {
				for i := 1; i < len(pts); i++ {
					maxGap = max(maxGap, pts[i].T-pts[i-1].T)
				}
			}
			if maxGap > 2500 {
				t.Errorf("largest gap between stored samples of a series: %d ms (scrape interval 1 s)", maxGap)
			}
			t.Logf("%s holds all %d samples of %d series, values equal (VictoriaMetrics: to 15 digits); largest gap %d ms across a %s outage",
				b.name, samples, len(want), maxGap, (60 * time.Second))
		})
	}
}

// compareStored reports the first differences between what was sent and
// what a backend stores ("" when equal).
// tol is the relative difference allowed between values: 0 for
// Prometheus; VictoriaMetrics stores values as decimals of at most 15
// significant digits (0.6000000000000001 comes back as 0.6), a documented
// property of its storage.
func compareStored(want, got map[string][]sink.Point, tol float64) string {
	var problems []string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, g := want[k], got[k]
		if len(g) == 0 {
			problems = append(problems, fmt.Sprintf("%s: missing", k))
			continue
		}
		if len(w) != len(g) {
			problems = append(problems, fmt.Sprintf("%s: %d samples stored, %d sent", k, len(g), len(w)))
			continue
		}
		for i := range w {
			if w[i].T != g[i].T || (w[i].V != g[i].V && math.Abs(w[i].V-g[i].V) > tol*math.Abs(w[i].V)) {
				problems = append(problems, fmt.Sprintf("%s: sample %d stored %v@%d, sent %v@%d", k, i, g[i].V, g[i].T, w[i].V, w[i].T))
				break
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("%s: stored but never sent", k))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("%d series differ, e.g.\n%s", len(problems), strings.Join(head(problems, 8), "\n"))
}
