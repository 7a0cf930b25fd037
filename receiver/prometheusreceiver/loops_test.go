package prometheusreceiver

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/internal/promseries"
)

// The tests in this file run both scrape loops (scrape_loop: prometheus and
// sluice) against targets that serve the same scripted expositions, and
// require the same series, values, stale markers, metadata, exemplars and
// start times from both: Prometheus' own loop is the oracle.

// phase is what a scripted target serves for a while.
type phase struct {
	body        string
	contentType string // default: Prometheus text 0.0.4
	status      int    // default 200
}

// scriptedTarget serves the current phase of a script on 127.0.0.1 (gzip
// when asked) and records the request headers of its last scrape.
type scriptedTarget struct {
	srv    *httptest.Server
	cur    atomic.Pointer[phase]
	served atomic.Int64
	mu     sync.Mutex
	header http.Header
}

func newScriptedTarget(t *testing.T) *scriptedTarget {
	st := &scriptedTarget{}
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		st.header = r.Header.Clone()
		st.mu.Unlock()
		p := st.cur.Load()
		ct := p.contentType
		if ct == "" {
			ct = "text/plain; version=0.0.4"
		}
		w.Header().Set("Content-Type", ct)
		body := []byte(p.body)
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = b.Bytes()
			w.Header().Set("Content-Encoding", "gzip")
		}
		if p.status != 0 {
			w.WriteHeader(p.status)
		}
		_, _ = w.Write(body)
		st.served.Add(1)
	}))
	t.Cleanup(st.srv.Close)
	return st
}

func (st *scriptedTarget) addr() string { return hostOf(st.srv) }

// loops are the two values of scrape_loop, the oracle first.
var loops = []string{LoopPrometheus, LoopSluice}

// runScript starts one receiver per loop, each scraping its own scripted
// target(s) (count of them) with the scrape config made by cfg from the
// targets' addresses; plays the phases (each until every target served
// three more scrapes); and returns each loop's sink and targets.
func runScript(t *testing.T, receiverExtra string, cfg func(addrs []string) string, count int, phases []phase) (map[string]*consumertest.MetricsSink, map[string][]*scriptedTarget) {
	t.Helper()
	sinks, targets := startScript(t, receiverExtra, cfg, count, &phases[0])
	for i := range phases {
		playPhase(t, targets, &phases[i])
	}
	return sinks, targets
}

// startScript starts the receivers and targets of runScript, the targets
// serving first.
func startScript(t *testing.T, receiverExtra string, cfg func(addrs []string) string, count int, first *phase) (map[string]*consumertest.MetricsSink, map[string][]*scriptedTarget) {
	t.Helper()
	sinks := map[string]*consumertest.MetricsSink{}
	targets := map[string][]*scriptedTarget{}
	for _, loop := range loops {
		var addrs []string
		for i := 0; i < count; i++ {
			st := newScriptedTarget(t)
			st.cur.Store(first)
			targets[loop] = append(targets[loop], st)
			addrs = append(addrs, st.addr())
		}
		sinks[loop] = startReceiver(t, fmt.Sprintf("scrape_loop: %s\n%s\nconfig:\n%s", loop, receiverExtra, cfg(addrs)))
	}
	return sinks, targets
}

// playPhase switches every target to p and waits until each served it three
// times (the first may have been read before the switch).
func playPhase(t *testing.T, targets map[string][]*scriptedTarget, p *phase) {
	t.Helper()
	start := map[*scriptedTarget]int64{}
	for _, ts := range targets {
		for _, st := range ts {
			st.cur.Store(p)
			start[st] = st.served.Load()
		}
	}
	comptest.WaitFor(t, 20*time.Second, "three scrapes of a phase by each loop", func() bool {
		for st, n := range start {
			if st.served.Load() < n+3 {
				return false
			}
		}
		return true
	})
}

// oneJob is a scrape config of one job "app" over addrs, every 500ms, with
// extra keys for the job. The timeout is the interval, and the interval is
// not shorter: a scrape that times out under a loaded machine (the race
// stage) in one loop and not the other would make the histories differ for
// no fault of either; at 200ms that happened once in a loaded -race run.
func oneJob(extra string) func(addrs []string) string {
	return func(addrs []string) string {
		q := make([]string, len(addrs))
		for i, a := range addrs {
			q[i] = strconv.Quote(a)
		}
		return fmt.Sprintf(`  scrape_configs:
    - job_name: app
      scrape_interval: 500ms
      scrape_timeout: 500ms
%s      static_configs: [{targets: [%s]}]
`, extra, strings.Join(q, ", "))
	}
}

// history is, per series (instance normalized), what its samples were in
// order, consecutive repeats collapsed: values, "stale", or a histogram's
// count/sum; with its metadata, exemplars and start time in the key's
// entries. scrape_duration_seconds values are timing, so only "v".
func history(t *testing.T, sink *consumertest.MetricsSink, instances []*scriptedTarget) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, md := range sink.AllMetrics() {
		if _, err := promseries.Walk(md, promseries.Options{}, func(s *promseries.Sample) error {
			ls := labels.New(s.Labels...)
			b := labels.NewBuilder(ls)
			for i, st := range instances {
				if ls.Get("instance") == st.addr() {
					b.Set("instance", fmt.Sprintf("target-%d", i))
				}
			}
			k := b.Labels().String()
			var v string
			switch {
			case s.H == nil && value.IsStaleNaN(s.V):
				v = "stale"
			case s.H != nil && value.IsStaleNaN(s.H.Sum):
				v = "stale"
			case s.H != nil:
				v = fmt.Sprintf("histogram count=%d sum=%g schema=%d buckets=%v", s.H.Count, s.H.Sum, s.H.Schema, s.H.PositiveBuckets)
			case ls.Get("__name__") == "scrape_duration_seconds":
				v = "v"
			default:
				v = strconv.FormatFloat(s.V, 'g', -1, 64)
			}
			v += fmt.Sprintf(" meta=%s/%q/%q", s.Meta.Type, s.Meta.Help, s.Meta.Unit)
			if s.StartT != 0 {
				v += fmt.Sprintf(" start=%d", s.StartT)
			}
			for _, e := range s.Exemplars {
				v += fmt.Sprintf(" exemplar=%s:%g@%d", e.Labels, e.Value, e.Ts)
			}
			if h := out[k]; len(h) == 0 || h[len(h)-1] != v {
				out[k] = append(h, v)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// sameHistories fails the test where the loops' histories differ, and
// returns the sluice loop's.
func sameHistories(t *testing.T, sinks map[string]*consumertest.MetricsSink, targets map[string][]*scriptedTarget) map[string][]string {
	t.Helper()
	want := history(t, sinks[LoopPrometheus], targets[LoopPrometheus])
	got := history(t, sinks[LoopSluice], targets[LoopSluice])
	// Every series of either side, in order.
	keys := slices.Concat(slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)))
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if w, g := strings.Join(want[k], "\n\t"), strings.Join(got[k], "\n\t"); w != g {
			t.Errorf("%s\nprometheus loop:\n\t%s\nsluice loop:\n\t%s", k, w, g)
		}
	}
	if len(want) == 0 {
		t.Error("the prometheus loop delivered nothing")
	}
	return got
}

// last returns the last entry of a series' history without its metadata.
func last(h map[string][]string, series string) string {
	s := h[series]
	if len(s) == 0 {
		return ""
	}
	v, _, _ := strings.Cut(s[len(s)-1], " meta=")
	return v
}

func values(h map[string][]string, series string) []string {
	var out []string
	for _, s := range h[series] {
		v, _, _ := strings.Cut(s, " meta=")
		out = append(out, v)
	}
	return out
}
