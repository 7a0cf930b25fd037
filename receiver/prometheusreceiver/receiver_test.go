package prometheusreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/internal/promseries"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
)

// startReceiver runs a prometheus receiver with the given receiver YAML and
// returns the sink it delivers to; it is shut down at the end of the test.
func startReceiver(t *testing.T, receiverYAML string) *consumertest.MetricsSink {
	t.Helper()
	return startReceiverOn(t, receiverYAML, componenttest.NewNopHost())
}

// startReceiverOn is startReceiver on the given host.
func startReceiverOn(t *testing.T, receiverYAML string, host component.Host) *consumertest.MetricsSink {
	t.Helper()
	cfg := configFrom(t, receiverYAML)
	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rcv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return sink
}

// configFrom reads receiver YAML as the collector does: over the defaults,
// then validated.
func configFrom(t *testing.T, receiverYAML string) *Config {
	t.Helper()
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(receiverYAML), &raw); err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// point is one sample as the exporter would send it.
type point struct {
	t int64
	v float64
}

// seriesOf walks everything the sink received through promseries, the same
// path the exporter takes, and groups samples by series.
func seriesOf(t *testing.T, sink *consumertest.MetricsSink) map[string][]point {
	t.Helper()
	out := map[string][]point{}
	for _, md := range sink.AllMetrics() {
		if _, err := promseries.Walk(md, promseries.Options{}, func(s *promseries.Sample) error {
			k := labels.New(s.Labels...).String()
			out[k] = append(out[k], point{s.T, s.V})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// target serves a fixed exposition body on 127.0.0.1.
func target(t *testing.T, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

const exposition = `# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{code="200"} 10
http_requests_total{code="500"} 2
# TYPE temp gauge
temp 21.5
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.5"} 1
rpc_seconds_bucket{le="1"} 3
rpc_seconds_bucket{le="+Inf"} 4
rpc_seconds_sum 5.5
rpc_seconds_count 4
# TYPE gc_seconds summary
gc_seconds{quantile="0.5"} 0.1
gc_seconds_sum 2
gc_seconds_count 7
untyped_thing{a="b"} 3
`

func TestScrapeGivesExactlyThePrometheusSeries(t *testing.T) {
	srv := target(t, exposition)
	sink := startReceiver(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 200ms
      static_configs:
        - targets: [%q]
`, hostOf(srv)))
	inst := hostOf(srv)
	comptest.WaitFor(t, 10*time.Second, "a scrape", func() bool { return sink.DataPointCount() > 0 })

	got := seriesOf(t, sink)
	var names []string
	for k := range got {
		names = append(names, k)
	}
	sort.Strings(names)
	l := func(s string) string { return strings.ReplaceAll(s, "INST", inst) }
	want := map[string]float64{
		l(`{__name__="http_requests_total", code="200", instance="INST", job="app"}`): 10,
		l(`{__name__="http_requests_total", code="500", instance="INST", job="app"}`): 2,
		l(`{__name__="temp", instance="INST", job="app"}`):                            21.5,
		l(`{__name__="rpc_seconds_bucket", instance="INST", job="app", le="0.5"}`):    1,
		// Prometheus 3 stores le in float form: "1" is stored as "1.0".
		l(`{__name__="rpc_seconds_bucket", instance="INST", job="app", le="1.0"}`):          3,
		l(`{__name__="rpc_seconds_bucket", instance="INST", job="app", le="+Inf"}`):         4,
		l(`{__name__="rpc_seconds_sum", instance="INST", job="app"}`):                       5.5,
		l(`{__name__="rpc_seconds_count", instance="INST", job="app"}`):                     4,
		l(`{__name__="gc_seconds", instance="INST", job="app", quantile="0.5"}`):            0.1,
		l(`{__name__="gc_seconds_sum", instance="INST", job="app"}`):                        2,
		l(`{__name__="gc_seconds_count", instance="INST", job="app"}`):                      7,
		l(`{__name__="untyped_thing", a="b", instance="INST", job="app"}`):                  3,
		l(`{__name__="up", instance="INST", job="app"}`):                                    1,
		l(`{__name__="scrape_samples_scraped", instance="INST", job="app"}`):                12,
		l(`{__name__="scrape_samples_post_metric_relabeling", instance="INST", job="app"}`): 12,
	}
	for k, v := range want {
		pts := got[k]
		if len(pts) == 0 {
			t.Errorf("missing series %s", k)
			continue
		}
		if pts[0].v != v {
			t.Errorf("%s = %v, want %v", k, pts[0].v, v)
		}
	}
	for _, k := range []string{"scrape_duration_seconds", "scrape_series_added"} {
		if len(got[l(`{__name__="`+k+`", instance="INST", job="app"}`)]) == 0 {
			t.Errorf("missing series %s", k)
		}
	}
	if len(got) != len(want)+2 {
		t.Errorf("%d series, want %d:\n%s", len(got), len(want)+2, strings.Join(names, "\n"))
	}
}

func upOf(series map[string][]point, job, inst string) (float64, bool) {
	pts := series[fmt.Sprintf(`{__name__="up", instance=%q, job=%q}`, inst, job)]
	if len(pts) == 0 {
		return 0, false
	}
	return pts[len(pts)-1].v, true
}

// A bad target is down (up 0) and nothing else suffers.
func TestBadTargetsAreDownOthersUnaffected(t *testing.T) {
	good := target(t, "ok_metric 1\n")
	malformed := target(t, "this is { not exposition\n")
	big := target(t, strings.Repeat("padding_metric_with_a_long_name 1\n", 100))
	explosion := target(t, `wide{a="1",b="2",c="3",d="4",e="5"} 1`+"\n")
	var slowOnce sync.Once
	slowDone := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-slowDone:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "late 1\n")
	}))
	t.Cleanup(func() { slowOnce.Do(func() { close(slowDone) }); slow.Close() })

	sink := startReceiver(t, fmt.Sprintf(`
config:
  global:
    scrape_interval: 300ms
    scrape_timeout: 250ms
  scrape_configs:
    - job_name: good
      static_configs: [{targets: [%q]}]
    - job_name: malformed
      static_configs: [{targets: [%q]}]
    - job_name: big
      body_size_limit: 1KB
      static_configs: [{targets: [%q]}]
    - job_name: explosion
      label_limit: 3
      static_configs: [{targets: [%q]}]
    - job_name: slow
      static_configs: [{targets: [%q]}]
`, hostOf(good), hostOf(malformed), hostOf(big), hostOf(explosion), hostOf(slow)))

	jobs := map[string]string{"good": hostOf(good), "malformed": hostOf(malformed), "big": hostOf(big), "explosion": hostOf(explosion), "slow": hostOf(slow)}
	comptest.WaitFor(t, 15*time.Second, "every target to report up", func() bool {
		s := seriesOf(t, sink)
		for job, inst := range jobs {
			if _, ok := upOf(s, job, inst); !ok {
				return false
			}
		}
		return true
	})
	s := seriesOf(t, sink)
	for job, inst := range jobs {
		up, _ := upOf(s, job, inst)
		want := 0.0
		if job == "good" {
			want = 1
		}
		if up != want {
			t.Errorf("job %s: up = %v, want %v", job, up, want)
		}
	}
	if len(s[fmt.Sprintf(`{__name__="ok_metric", instance=%q, job="good"}`, hostOf(good))]) == 0 {
		t.Error("the good target's series are missing")
	}
	for k := range s {
		if strings.Contains(k, "padding_metric") || strings.Contains(k, `"wide"`) || strings.Contains(k, `"late"`) {
			t.Errorf("series of a failed scrape was stored: %s", k)
		}
	}
}

// When a target goes away, its series get stale markers, as in Prometheus.
func TestStaleMarkersWhenATargetFails(t *testing.T) {
	srv := target(t, "going_away 1\n")
	sink := startReceiver(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 200ms
      static_configs: [{targets: [%q]}]
`, hostOf(srv)))
	key := fmt.Sprintf(`{__name__="going_away", instance=%q, job="app"}`, hostOf(srv))
	comptest.WaitFor(t, 10*time.Second, "a scrape", func() bool { return len(seriesOf(t, sink)[key]) > 0 })
	srv.Close()
	comptest.WaitFor(t, 10*time.Second, "a stale marker", func() bool {
		pts := seriesOf(t, sink)[key]
		return len(pts) > 0 && value.IsStaleNaN(pts[len(pts)-1].v)
	})
}

// With shard count 3, every target is scraped by exactly one of three
// receivers. The targets' ports are random, so with 12 targets a shard got
// none about once in 40 runs; with 36 it is about once in 700,000.
func TestShardingSplitsTargets(t *testing.T) {
	var targets []string
	for i := 0; i < 36; i++ {
		targets = append(targets, fmt.Sprintf("%q", hostOf(target(t, "x 1\n"))))
	}
	sinks := make([]*consumertest.MetricsSink, 3)
	for i := range sinks {
		sinks[i] = startReceiver(t, fmt.Sprintf(`
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 200ms
      static_configs: [{targets: [%s]}]
shard: {count: 3, index: %d}
`, strings.Join(targets, ", "), i))
	}
	owner := map[string][]int{}
	comptest.WaitFor(t, 15*time.Second, "every target scraped", func() bool {
		owner = map[string][]int{}
		for i, s := range sinks {
			for k := range seriesOf(t, s) {
				if strings.HasPrefix(k, `{__name__="up"`) {
					owner[k] = append(owner[k], i)
				}
			}
		}
		return len(owner) == len(targets)
	})
	perShard := make([]int, 3)
	for k, shards := range owner {
		if len(shards) != 1 {
			t.Errorf("%s scraped by shards %v, want exactly one", k, shards)
		}
		perShard[shards[0]]++
	}
	for i, n := range perShard {
		if n == 0 {
			t.Errorf("shard %d scrapes nothing (%v): the split is not spreading targets", i, perShard)
		}
	}
}

// omTarget serves an OpenMetrics body.
func omTarget(t *testing.T, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestStartTimestampsFromCreatedLines(t *testing.T) {
	srv := omTarget(t, `# TYPE jobs counter
jobs_total{q="a"} 5
jobs_created{q="a"} 1700000000.5
# EOF
`)
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("start_timestamps=%v", on), func(t *testing.T) {
			sink := startReceiver(t, fmt.Sprintf(`
start_timestamps: %v
config:
  scrape_configs:
    - job_name: om
      scrape_interval: 100ms
      static_configs: [{targets: [%q]}]
`, on, hostOf(srv)))
			var start int64 = -1
			comptest.WaitFor(t, 10*time.Second, "jobs_total scraped", func() bool {
				for _, md := range sink.AllMetrics() {
					_, _ = promseries.Walk(md, promseries.Options{}, func(s *promseries.Sample) error {
						if labels.New(s.Labels...).Get("__name__") == "jobs_total" {
							start = s.StartT
						}
						return nil
					})
				}
				return start >= 0
			})
			want := int64(0)
			if on {
				want = 1700000000500
			}
			if start != want {
				t.Fatalf("start time of jobs_total = %d ms, want %d", start, want)
			}
		})
	}
}
