package prometheusreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
)

// A target that fails scrape after scrape is logged once when it goes down,
// with its URL and Prometheus' error, and once when it is back.
func TestTargetHealthLoggedOncePerChange(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "fine 1\n")
	}))
	defer srv.Close()

	var raw map[string]any
	_ = yaml.Unmarshal([]byte(fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      scrape_timeout: 100ms
      static_configs: [{targets: [%q]}]
`, hostOf(srv))), &raw)
	cfg := createDefaultConfig().(*Config)
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	rcv, err := NewFactory().CreateMetrics(context.Background(), set, cfg, new(consumertest.MetricsSink))
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer rcv.Shutdown(context.Background())

	down := func() int { return logs.FilterMessage("scrape target down").Len() }
	comptest.WaitFor(t, 10*time.Second, "the down warning", func() bool { return down() == 1 })
	time.Sleep(1500 * time.Millisecond) // many more failed scrapes
	if n := down(); n != 1 {
		t.Fatalf("%d down warnings over many failed scrapes, want 1", n)
	}
	entry := logs.FilterMessage("scrape target down").All()[0]
	fields := entry.ContextMap()
	if fields["target"] != srv.URL+"/metrics" || fields["job"] != "app" || fields["error"] == "" {
		t.Fatalf("down warning fields %v, want the target URL, job and error", fields)
	}
	failing.Store(false)
	comptest.WaitFor(t, 10*time.Second, "the up-again message", func() bool { return logs.FilterMessage("scrape target up again").Len() == 1 })
}

// A target whose URL carries a credential in its query (params) is logged
// with the value redacted: by the health log and by Prometheus' own scrape
// loop (debug), whose records pass through the redacting handler.
func TestTargetSecretsAreRedactedInLogs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("api_key") != "k3yValue" {
			t.Errorf("the target did not get its api_key: %s", r.URL)
		}
		fmt.Fprint(w, "garbage{{{\n") // unparsable: Prometheus logs it at debug
	}))
	defer srv.Close()

	var raw map[string]any
	_ = yaml.Unmarshal([]byte(fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      scrape_timeout: 100ms
      params: {api_key: [k3yValue]}
      static_configs: [{targets: [%q]}]
`, hostOf(srv))), &raw)
	cfg := createDefaultConfig().(*Config)
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	rcv, err := NewFactory().CreateMetrics(context.Background(), set, cfg, new(consumertest.MetricsSink))
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer rcv.Shutdown(context.Background())
	comptest.WaitFor(t, 10*time.Second, "the down warning", func() bool { return logs.FilterMessage("scrape target down").Len() == 1 })
	if got := logs.FilterMessage("scrape target down").All()[0].ContextMap()["target"]; got != srv.URL+"/metrics?api_key=REDACTED" {
		t.Errorf("target logged as %v, want the URL with its api_key redacted", got)
	}
	for _, e := range logs.All() {
		if line := e.Message + " " + fmt.Sprint(e.ContextMap()); strings.Contains(line, "k3yValue") {
			t.Errorf("the api_key in a log line: %s", line)
		}
	}
	t.Logf("%d log lines checked", logs.Len())
}
