package prometheusreceiver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
)

const (
	omType = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// series names a series of the scripted target "app"/target-0 as history
// keys it: name and label pairs.
func series(name string, kv ...string) string {
	return labels.FromStrings(append([]string{"__name__", name, "instance", "target-0", "job", "app"}, kv...)...).String()
}

// Every family type, in text, with values changing: the same series, values
// and metadata from both loops.
func TestLoopsAgreeOnText(t *testing.T) {
	changed := strings.NewReplacer("} 10", "} 11", "temp 21.5", "temp 22", "rpc_seconds_count 4", "rpc_seconds_count 5").Replace(exposition)
	sinks, targets := runScript(t, "", oneJob(""), 1, []phase{{body: exposition}, {body: changed}})
	h := sameHistories(t, sinks, targets)
	if got := values(h, series("temp")); !slices.Equal(got, []string{"21.5", "22"}) {
		t.Errorf("temp = %v", got)
	}
	if !strings.Contains(h[series("http_requests_total", "code", "200")][0], `meta=counter/"Requests served."`) {
		t.Errorf("counter metadata lost: %v", h[series("http_requests_total", "code", "200")])
	}
	if !strings.Contains(h[series("up")][0], "meta=gauge") {
		t.Errorf("up metadata: %v", h[series("up")])
	}
}

// OpenMetrics with exemplars and created timestamps (start_timestamps on).
func TestLoopsAgreeOnOpenMetrics(t *testing.T) {
	body := `# TYPE jobs counter
# HELP jobs Jobs done.
jobs_total{q="a"} 5 # {trace_id="abc"} 1 1700000000.000
jobs_created{q="a"} 1700000000.5
# TYPE lat histogram
lat_bucket{le="0.1"} 1 # {trace_id="x"} 0.05
lat_bucket{le="+Inf"} 2
lat_sum 0.3
lat_count 2
lat_created 1700000001
# EOF
`
	sinks, targets := runScript(t, "start_timestamps: true", oneJob(""), 1, []phase{{body: body, contentType: omType}})
	h := sameHistories(t, sinks, targets)
	if e := h[series("jobs_total", "q", "a")]; len(e) == 0 || !strings.Contains(e[0], "exemplar=") || !strings.Contains(e[0], "start=1700000000500") {
		t.Errorf("jobs_total lost its exemplar or start: %v", e)
	}
}

// Native histograms over protobuf, with a bucket limit that forces a lower
// resolution.
func TestLoopsAgreeOnNativeHistograms(t *testing.T) {
	mf := &dto.MetricFamily{Name: proto.String("req_seconds"), Help: proto.String("Latency."), Type: dto.MetricType_HISTOGRAM.Enum(),
		Metric: []*dto.Metric{{Histogram: &dto.Histogram{
			SampleCount: proto.Uint64(11), SampleSum: proto.Float64(4.5), Schema: proto.Int32(3), ZeroThreshold: proto.Float64(1e-128), ZeroCount: proto.Uint64(1),
			PositiveSpan:  []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(6)}},
			PositiveDelta: []int64{1, 1, 0, 0, -1, 1},
		}}}}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	if err := enc.Encode(mf); err != nil {
		t.Fatal(err)
	}
	ct := string(expfmt.NewFormat(expfmt.TypeProtoDelim))
	sinks, targets := runScript(t, "", oneJob("      scrape_native_histograms: true\n      native_histogram_bucket_limit: 4\n"), 1,
		[]phase{{body: buf.String(), contentType: ct}})
	h := sameHistories(t, sinks, targets)
	if got := last(h, series("req_seconds")); !strings.HasPrefix(got, "histogram count=11") || !strings.Contains(got, "schema=2") {
		t.Errorf("req_seconds = %q, want a histogram of count 11 reduced to schema 2; got %v", got, h)
	}
}

// A series that disappears gets one stale marker; so does every series of a
// target that fails, and the series come back with it.
func TestLoopsAgreeOnStaleness(t *testing.T) {
	both := "x{a=\"1\"} 1\nx{a=\"2\"} 2\n"
	sinks, targets := runScript(t, "", oneJob(""), 1, []phase{
		{body: both}, {body: "x{a=\"1\"} 1\n"}, {status: http.StatusInternalServerError, body: "down"}, {body: both},
	})
	h := sameHistories(t, sinks, targets)
	if got := values(h, series("x", "a", "2")); !slices.Equal(got, []string{"2", "stale", "2"}) {
		t.Errorf(`x{a="2"} = %v, want 2, stale, 2`, got)
	}
	if got := values(h, series("x", "a", "1")); !slices.Equal(got, []string{"1", "stale", "1"}) {
		t.Errorf(`x{a="1"} = %v, want 1, stale (target down), 1`, got)
	}
	if got := values(h, series("up")); !slices.Equal(got, []string{"1", "0", "1"}) {
		t.Errorf("up = %v", got)
	}
}

// Each limit exceeded: the scrape fails (up 0, stale markers for what it
// delivered before) and the report counts what was scraped.
func TestLoopsAgreeOnLimits(t *testing.T) {
	cases := map[string]struct{ extra, bad string }{
		// Prometheus tracks the first sample_limit series of a scrape over
		// the limit for staleness: the ones here are new.
		"sample_limit":             {"      sample_limit: 3\n", "c 1\nd 1\ne 1\nf 1\n"},
		"label_limit":              {"      label_limit: 4\n", "a{x=\"1\",y=\"2\"} 1\n"},
		"label_name_length_limit":  {"      label_name_length_limit: 8\n", "a{long_label_name=\"1\"} 1\n"},
		"label_value_length_limit": {"      label_value_length_limit: 20\n", "a{x=\"a value longer than twenty\"} 1\n"},
		"body_size_limit":          {"      body_size_limit: 100B\n", strings.Repeat("padding_series 1\n", 10)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			good := "a 1\nb 1\n"
			sinks, targets := runScript(t, "", oneJob(c.extra), 1, []phase{{body: good}, {body: c.bad}, {body: good}})
			h := sameHistories(t, sinks, targets)
			if got := values(h, series("up")); !slices.Equal(got, []string{"1", "0", "1"}) {
				t.Errorf("up = %v, want 1, 0, 1", got)
			}
			if got := values(h, series("a")); !slices.Equal(got, []string{"1", "stale", "1"}) {
				t.Errorf("a = %v, want 1, stale, 1", got)
			}
		})
	}
}

// honor_labels decides who wins a label the target also exposes.
func TestLoopsAgreeOnHonorLabels(t *testing.T) {
	body := "m{job=\"theirs\",instance=\"x\",exported_job=\"e\"} 1\nn 2\n"
	for _, honor := range []bool{false, true} {
		t.Run(fmt.Sprint("honor_labels=", honor), func(t *testing.T) {
			t.Parallel()
			sinks, targets := runScript(t, "", oneJob(fmt.Sprintf("      honor_labels: %v\n", honor)), 1, []phase{{body: body}})
			h := sameHistories(t, sinks, targets)
			want := `{__name__="m", exported_exported_job="theirs", exported_instance="x", exported_job="e", instance="target-0", job="app"}`
			if honor {
				want = `{__name__="m", exported_job="e", instance="x", job="theirs"}`
			}
			if len(h[want]) == 0 {
				t.Errorf("no series %s", want)
			}
		})
	}
}

// Timestamps in the exposition: honoured or not, tracked for staleness or
// not; duplicates dropped; metric_relabel_configs applied and counted.
func TestLoopsAgreeOnTimestampsRelabelAndDuplicates(t *testing.T) {
	ts := fmt.Sprint(time.Now().Add(-time.Minute).UnixMilli())
	body := "with_ts 1 " + ts + "\nplain 2\nplain 3\ndrop_me 4\nkeep{v=\"a\"} 5\n"
	relabel := `      metric_relabel_configs:
        - {source_labels: [__name__], regex: drop_me, action: drop}
        - {source_labels: [v], target_label: w}
`
	for _, extra := range []string{"", "      honor_timestamps: false\n", "      track_timestamps_staleness: true\n"} {
		t.Run(strings.TrimSpace(extra), func(t *testing.T) {
			t.Parallel()
			sinks, targets := runScript(t, "", oneJob(extra+relabel), 1, []phase{{body: body}, {body: "plain 2\n"}})
			h := sameHistories(t, sinks, targets)
			if len(h[series("drop_me")]) != 0 || len(h[series("keep", "v", "a", "w", "a")]) == 0 {
				t.Errorf("metric_relabel_configs not applied: %v", h)
			}
			if got := values(h, series("scrape_samples_post_metric_relabeling")); got[0] != "4" {
				t.Errorf("scrape_samples_post_metric_relabeling = %v, want 4 first", got)
			}
		})
	}
}

// A target that leaves discovery gets stale markers about two intervals
// later; on shutdown no loop writes any.
func TestLoopsAgreeWhenATargetDisappears(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	cfg := func(addrs []string) string {
		f := filepath.Join(dir, fmt.Sprintf("targets-%d.json", len(files)))
		if err := os.WriteFile(f, []byte(fmt.Sprintf(`[{"targets": [%q]}]`, addrs[0])), 0o600); err != nil {
			t.Fatal(err)
		}
		files[addrs[0]] = f
		return fmt.Sprintf(`  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      file_sd_configs: [{files: [%q], refresh_interval: 100ms}]
`, f)
	}
	sinks, targets := runScript(t, "", cfg, 1, []phase{{body: "y 1\n"}})
	for _, loop := range loops {
		if err := os.WriteFile(files[targets[loop][0].addr()], []byte(`[]`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, loop := range loops {
		comptest.WaitFor(t, 20*time.Second, loop+" loop's stale markers", func() bool {
			return last(history(t, sinks[loop], targets[loop]), series("y")) == "stale"
		})
	}
	h := sameHistories(t, sinks, targets)
	if got := values(h, series("up")); !slices.Equal(got, []string{"1", "stale"}) {
		t.Errorf("up = %v, want 1, stale", got)
	}
}

// On shutdown neither loop writes stale markers: Prometheus presumes a
// restart that goes on where it stopped.
func TestShutdownWritesNoStaleMarkers(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop, func(t *testing.T) {
			st := newScriptedTarget(t)
			st.cur.Store(&phase{body: "z 1\n"})
			var raw map[string]any
			if err := yaml.Unmarshal([]byte(fmt.Sprintf("scrape_loop: %s\nconfig:\n%s", loop, oneJob("")([]string{st.addr()}))), &raw); err != nil {
				t.Fatal(err)
			}
			cfg := createDefaultConfig().(*Config)
			if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
				t.Fatal(err)
			}
			sink := new(consumertest.MetricsSink)
			rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
			if err != nil {
				t.Fatal(err)
			}
			if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			comptest.WaitFor(t, 10*time.Second, "two scrapes", func() bool { return st.served.Load() >= 2 })
			if err := rcv.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(700 * time.Millisecond) // past two intervals and a tenth: when end-of-run markers would come
			h := history(t, sink, []*scriptedTarget{st})
			if got := values(h, series("z")); !slices.Equal(got, []string{"1"}) {
				t.Errorf("z = %v, want only 1", got)
			}
		})
	}
}

// Both loops ask for the same thing: scrape_protocols in order in Accept,
// gzip unless enable_compression is off, Prometheus' User-Agent and the
// timeout header. The body is gzipped when asked (scriptedTarget).
func TestLoopsSendTheSameRequest(t *testing.T) {
	for _, extra := range []string{
		"",
		"      scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]\n      enable_compression: false\n",
	} {
		t.Run(strings.TrimSpace(extra), func(t *testing.T) {
			t.Parallel()
			sinks, targets := runScript(t, "", oneJob(extra), 1, []phase{{body: "r 1\n"}})
			sameHistories(t, sinks, targets)
			var headers []http.Header
			for _, loop := range loops {
				st := targets[loop][0]
				st.mu.Lock()
				headers = append(headers, st.header)
				st.mu.Unlock()
			}
			for _, k := range []string{"Accept", "Accept-Encoding", "User-Agent", "X-Prometheus-Scrape-Timeout-Seconds"} {
				if p, s := headers[0].Get(k), headers[1].Get(k); p != s || p == "" {
					t.Errorf("%s: prometheus loop %q, sluice loop %q", k, p, s)
				}
			}
		})
	}
}

// A target slower than scrape_timeout is down for both loops.
func TestLoopsAgreeOnTimeouts(t *testing.T) {
	slow := make(chan struct{})
	srvs := map[string]string{}
	for _, loop := range loops {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-slow:
			case <-r.Context().Done():
			}
			fmt.Fprint(w, "late 1\n")
		}))
		srvs[loop] = hostOf(srv)
		t.Cleanup(srv.Close)
	}
	t.Cleanup(func() { close(slow) })
	for _, loop := range loops {
		sink := startReceiver(t, fmt.Sprintf("scrape_loop: %s\nconfig:\n%s", loop, oneJob("")([]string{srvs[loop]})))
		comptest.WaitFor(t, 10*time.Second, loop+" loop's up", func() bool {
			up, ok := upOf(seriesOf(t, sink), "app", srvs[loop])
			return ok && up == 0
		})
	}
}

// Over target_limit, every target of the job is down, for both loops.
func TestLoopsAgreeOnTargetLimit(t *testing.T) {
	sinks, targets := startScript(t, "", oneJob("      target_limit: 1\n"), 2, &phase{body: "q 1\n"})
	for _, loop := range loops {
		comptest.WaitFor(t, 10*time.Second, loop+" loop's up 0 for both targets", func() bool {
			s := seriesOf(t, sinks[loop])
			for _, st := range targets[loop] {
				if up, ok := upOf(s, "app", st.addr()); !ok || up != 0 {
					return false
				}
			}
			return true
		})
	}
	sameHistories(t, sinks, targets)
}

// The sluice loop tells the receiver's telemetry and status page the same
// facts of each target as Prometheus' (through scrape.Target), and its
// series count.
func TestSluiceLoopStatus(t *testing.T) {
	st := newScriptedTarget(t)
	st.cur.Store(&phase{body: "s1 1\ns2 2\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"})
	var raw map[string]any
	if err := yaml.Unmarshal([]byte("config:\n"+oneJob("")([]string{st.addr()})), &raw); err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, new(consumertest.MetricsSink))
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rcv.Shutdown(context.Background()) }()
	r := rcv.(*scrapeReceiver)
	comptest.WaitFor(t, 10*time.Second, "a scrape", func() bool {
		s := r.loop.Status()
		return len(s) == 1 && !s[0].LastScrape.IsZero()
	})
	s := r.loop.Status()[0]
	if s.Job != "app" || s.URL != "http://"+st.addr()+"/metrics" || s.Health != "up" || s.LastError != nil || s.LastScrapeDuration <= 0 {
		t.Errorf("status = %+v", s)
	}
	if s.Series != 5 {
		t.Errorf("series = %d, want 5", s.Series)
	}
	if s.Labels.Get("instance") != st.addr() || s.Discovered.Get("__address__") != st.addr() {
		t.Errorf("labels %s, discovered %s", s.Labels, s.Discovered)
	}
	active := r.scrape.TargetsActive()["app"]
	if len(active) != 1 || active[0].Health() != "up" {
		t.Errorf("TargetsActive = %v", active)
	}
}
