package prometheusreceiver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/sluicehq/sluice/internal/freeport"
	"github.com/sluicehq/sluice/internal/statusapi"
	"github.com/sluicehq/sluice/internal/statusapi/statusapitest"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
)

// TestTargetSourceShowsTargetsAndTheRuleThatDropped runs the receiver on
// a live target, a target whose port is closed, and a discovered target
// that the second relabel rule drops, and reads them back through the
// source the receiver registered.
func TestTargetSourceShowsTargetsAndTheRuleThatDropped(t *testing.T) {
	// Each loop counts series its own way: Sluice's keeps the count, with
	// Prometheus' it is read from the report samples on their way.
	for _, loop := range []string{LoopSluice, LoopPrometheus} {
		t.Run(loop, func(t *testing.T) { targetSourceShowsTargets(t, loop) })
	}
}

func targetSourceShowsTargets(t *testing.T, loop string) {
	live := target(t, exposition)
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Sprintf("127.0.0.1:%d", port) // nothing listens there
	receiverYAML := `config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      static_configs:
        - targets: ["` + hostOf(live) + `", "` + down + `", "10.0.0.9:9100"]
          labels: {env: prod}
      relabel_configs:
        - target_label: team
          replacement: storage
        - source_labels: [__address__]
          regex: "10\\..*"
          action: drop
`
	host := startWithStatusHost(t, "scrape_loop: "+loop+"\n"+receiverYAML)
	src := host.TargetSource()
	if src == nil {
		t.Fatal("the receiver registered no target source")
	}

	byURL := map[string]statusapi.Target{}
	deadline := time.Now().Add(20 * time.Second)
	for {
		byURL = map[string]statusapi.Target{}
		for _, tg := range src.ActiveTargets() {
			byURL[tg.ScrapeURL] = tg
		}
		l, d := byURL["http://"+hostOf(live)+"/metrics"], byURL["http://"+down+"/metrics"]
		if l.Health == statusapi.HealthUp && l.Series >= 0 && d.Health == statusapi.HealthDown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not up and down with a series count in time: %+v", byURL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(byURL) != 2 {
		t.Fatalf("active targets: %+v, want the live and the down one", byURL)
	}
	l := byURL["http://"+hostOf(live)+"/metrics"]
	// 12 series in the exposition: 2 counters, a gauge, 5 of the histogram,
	// 3 of the summary, 1 untyped.
	if l.Series != 12 || l.Job != "app" || l.LastError != "" || l.LastScrape.IsZero() || l.LastScrapeDuration <= 0 {
		t.Fatalf("live target: %+v", l)
	}
	if want := []statusapi.Label{{Name: "env", Value: "prod"}, {Name: "instance", Value: hostOf(live)}, {Name: "job", Value: "app"}, {Name: "team", Value: "storage"}}; !equalLabels(l.Labels, want) {
		t.Fatalf("labels after relabelling: %+v, want %+v", l.Labels, want)
	}
	if !hasLabel(l.DiscoveredLabels, "__address__", hostOf(live)) || hasLabel(l.DiscoveredLabels, "team", "storage") {
		t.Fatalf("discovered labels: %+v", l.DiscoveredLabels)
	}
	d := byURL["http://"+down+"/metrics"]
	if !strings.Contains(d.LastError, "connection refused") {
		t.Fatalf("down target's error: %q", d.LastError)
	}

	dropped := src.DroppedTargets()
	if dropped.Counts["app"] != 1 || len(dropped.Targets) != 1 {
		t.Fatalf("dropped: %+v", dropped)
	}
	dt := dropped.Targets[0]
	if dt.Rule != 1 || !hasLabel(dt.DiscoveredLabels, "__address__", "10.0.0.9:9100") ||
		dt.Reason != "relabel_configs[1] (action: drop) dropped it" || !strings.Contains(dt.RuleText, "action: drop") || !strings.Contains(dt.RuleText, `10\..*`) {
		t.Fatalf("dropped target: %+v", dt)
	}

}

// TestShardRulesAreNamedAsSuch: a target that the shard rules Sluice
// appends drop is shown as another shard's, not as a user's rule.
func TestShardRulesAreNamedAsSuch(t *testing.T) {
	host := startWithStatusHost(t, `shard: {count: 2, index: 0}
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 1h
      static_configs:
        - targets: ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1", "10.0.0.5:1", "10.0.0.6:1"]
`)
	src := host.TargetSource()
	var dropped statusapi.Dropped
	deadline := time.Now().Add(20 * time.Second)
	for {
		dropped = src.DroppedTargets()
		if n := len(src.ActiveTargets()); n+len(dropped.Targets) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not synced in time: dropped %+v", dropped)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(dropped.Targets) == 0 {
		t.Fatal("no target went to the other shard (6 addresses, 2 shards)")
	}
	for _, dt := range dropped.Targets {
		// The user has no rules; the shard rules are relabel_configs[0..1].
		if dt.Rule != 1 || dt.Reason != "another shard's target (this is shard index 0 of count 2)" || !strings.Contains(dt.RuleText, "action: keep") {
			t.Fatalf("dropped target: %+v", dt)
		}
	}
}

// startWithStatusHost runs the receiver on a statusapitest.Host, and checks at
// the end of the test that its Shutdown unregistered its source.
func startWithStatusHost(t *testing.T, receiverYAML string) *statusapitest.Host {
	t.Helper()
	host := statusapitest.NewHost()
	t.Cleanup(func() { // runs after the receiver's Shutdown
		if host.TargetSource() != nil {
			t.Error("the target source is still registered after Shutdown")
		}
	})
	startReceiverOn(t, receiverYAML, host)
	return host
}

func equalLabels(a, b []statusapi.Label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func hasLabel(ls []statusapi.Label, name, value string) bool {
	for _, l := range ls {
		if l.Name == name && l.Value == value {
			return true
		}
	}
	return false
}

// BenchmarkAppend is one scrape of 1,000 series plus the report series
// through the appender, with and without the series counting the status
// page adds (go test -bench Append -run '^$' ./receiver/prometheusreceiver/).
func BenchmarkAppend(b *testing.B) {
	series := make([]labels.Labels, 0, 1005)
	for i := 0; i < 1000; i++ {
		series = append(series, labels.FromStrings("__name__", "http_requests_total", "code", strconv.Itoa(i), "instance", "app:8080", "job", "app"))
	}
	for _, name := range []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", reportSeries, "scrape_series_added"} {
		series = append(series, labels.FromStrings("__name__", name, "instance", "app:8080", "job", "app"))
	}
	plain := &appendable{next: consumertest.NewNop(), scope: metadata.ScopeName}
	for _, c := range []struct {
		name string
		app  storage.AppendableV2
	}{{"plain", plain}, {"counting", countingAppendable{inner: plain, counts: newSeriesCounts()}}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for n := 0; n < b.N; n++ {
				app := c.app.AppenderV2(context.Background())
				for i, ls := range series {
					if _, err := app.Append(0, ls, 0, int64(n), float64(i), nil, nil, storage.AppendV2Options{}); err != nil {
						b.Fatal(err)
					}
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
