package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/extension/statusextension"
	"github.com/sluicehq/sluice/internal/statusapi"
)

// TestStatusPage runs the binary with the status extension, a live target
// (Sluice's own metrics), a target nobody listens on, a discovered target a
// relabel rule drops, a backend answering 503 and a healthy one. The JSON
// API must show the down target with its error, the dropped target with
// its rule, the failing endpoint with its error and growing queue, and the
// pipeline; then a real headless Chromium loads the HTML pages and must
// show the same, and takes the screenshot the README uses.
func TestStatusPage(t *testing.T) {
	failing, failingAddr := startSink(t)
	if err := failing.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, healthyAddr := startSink(t)
	dir := t.TempDir()
	health, status, own, down := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`receivers:
  unix:
    collection_interval: 5s
  prometheus:
    config:
      scrape_configs:
        - job_name: sluice
          scrape_interval: 1s
          static_configs:
            - targets: ["127.0.0.1:%[1]d"]
        - job_name: app
          scrape_interval: 1s
          static_configs:
            - targets: ["127.0.0.1:%[2]d", "10.1.2.3:9100"]
              labels: {team: storage}
          relabel_configs:
            - source_labels: [__address__]
              regex: "10\\..*"
              action: drop
processors:
  batch:
    timeout: 200ms
exporters:
  remote_write:
    endpoint: http://%[3]s/api/v1/write
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 1s
    queue:
      directory: %[4]s
  remote_write/healthy:
    endpoint: http://%[5]s/api/v1/write
    queue:
      directory: %[4]s
extensions:
  health_check:
    endpoint: 127.0.0.1:%[6]d
  status:
    endpoint: 127.0.0.1:%[7]d
service:
  extensions: [health_check, status]
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[1]d
  pipelines:
    metrics:
      receivers: [unix, prometheus]
      processors: [batch]
      exporters: [remote_write, remote_write/healthy]
`, own, down, failingAddr, filepath.Join(dir, "queue"), healthyAddr, health, status))
	startSluice(t, cfg).waitHealthy(t, health, 60*time.Second, "sluice")
	base := fmt.Sprintf("http://127.0.0.1:%d/", status)
	downURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", down)

	var snap statusextension.Snapshot
	waitFor(t, 60*time.Second, "the status API to show the down target and the failing backend", func() bool {
		snap = statusextension.Snapshot{}
		if err := getJSON(base+"api/v1/status", &snap); err != nil {
			return false
		}
		var up, dn, failingEP, healthyEP bool
		for _, tg := range snap.Targets {
			up = up || (tg.Job == "sluice" && tg.Health == "up" && tg.Series > 0)
			dn = dn || (tg.ScrapeURL == downURL && tg.Health == "down" && strings.Contains(tg.LastError, "connection refused"))
		}
		for _, ep := range snap.Endpoints {
			failingEP = failingEP || (ep.Exporter == "remote_write" && ep.Failing && strings.Contains(ep.LastError, "HTTP 503") && ep.QueueRecords > 0)
			healthyEP = healthyEP || (ep.Exporter == "remote_write/healthy" && !ep.Failing && ep.Sent > 0)
		}
		return up && dn && failingEP && healthyEP
	})
	t.Run("json", func(t *testing.T) {
		for _, tg := range snap.Targets {
			if tg.ScrapeURL != downURL {
				continue
			}
			if tg.Receiver != "prometheus" || tg.Job != "app" || tg.LastScrape.IsZero() || !hasPair(tg.Labels, "team", "storage") || !hasPair(tg.DiscoveredLabels, "__address__", fmt.Sprintf("127.0.0.1:%d", down)) {
				t.Errorf("down target: %+v", tg)
			}
		}
		for _, ep := range snap.Endpoints {
			if ep.Shards != 4 || ep.QueueMax != 1<<30 || ep.URL == "" {
				t.Errorf("endpoint %s: %+v", ep.Exporter, ep)
			}
			if ep.Exporter == "remote_write" && (ep.QueueBytes <= 0 || ep.OldestAge <= 0 || ep.SendRate != 0) {
				t.Errorf("failing endpoint's queue: %+v", ep)
			}
		}
		if len(snap.Pipelines) != 1 {
			t.Fatalf("pipelines: %+v", snap.Pipelines)
		}
		p := snap.Pipelines[0]
		if p.ID != "metrics" || strings.Join(p.Receivers, ",") != "unix,prometheus" || strings.Join(p.Processors, ",") != "batch" || strings.Join(p.Exporters, ",") != "remote_write,remote_write/healthy" {
			t.Errorf("pipeline: %+v", p)
		}
		var dropped statusextension.Dropped
		if err := getJSON(base+"api/v1/dropped", &dropped); err != nil {
			t.Fatal(err)
		}
		if len(dropped.Targets) != 1 || dropped.Counts["prometheus"]["app"] != 1 {
			t.Fatalf("dropped: %+v", dropped)
		}
		if d := dropped.Targets[0]; d.Rule != 0 || !hasPair(d.DiscoveredLabels, "__address__", "10.1.2.3:9100") || !strings.Contains(d.RuleText, "action: drop") {
			t.Errorf("dropped target: %+v", d)
		}
	})
	t.Run("chromium", func(t *testing.T) {
		dom := chromium(t, base, "--dump-dom")
		for _, want := range []string{
			downURL, "connection refused", // the down target and its error
			"http://" + failingAddr + "/api/v1/write", "HTTP 503", "failing", // the failing endpoint
			"unix", "prometheus", "batch", "remote_write/healthy", // the pipeline
			"1 up · 1 down", // the prometheus receiver's node in the graph
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("the page does not show %q", want)
			}
		}
		dom = chromium(t, base+"dropped", "--dump-dom")
		for _, want := range []string{"10.1.2.3:9100", "relabel_configs[0] (action: drop) dropped it"} {
			if !strings.Contains(dom, want) {
				t.Errorf("the dropped page does not show %q", want)
			}
		}
		if t.Failed() {
			t.Logf("dom:\n%s", dom)
		}
		shot := filepath.Join(repoRoot(t), "bin", "status-page.png")
		if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(shot)
		chromium(t, base, "--screenshot="+shot, "--window-size=1400,1000")
		if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
			t.Fatalf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot of the status page: %s", shot)
	})
}

// chromium runs Debian's headless Chromium on url with a fresh profile and
// returns what it prints (the DOM with --dump-dom).
func chromium(t *testing.T, url string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (`make test` installs Debian's chromium): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String(), 20))
	}
	return string(out)
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

func hasPair(ls []statusapi.Label, name, value string) bool {
	for _, l := range ls {
		if l.Name == name && l.Value == value {
			return true
		}
	}
	return false
}
