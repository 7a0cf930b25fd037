package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/bench/loadgen"
	"github.com/sluicehq/sluice/bench/sink"
)

// The cluster tests' settings: 1 s scrapes, failure detection tuned for a
// loopback test (probe every 500 ms, dead after 2 s), handover 1 s ahead.
const (
	clusterTargets  = 60
	clusterInterval = time.Second
	clusterProbe    = 500 * time.Millisecond
	clusterFailure  = 2 * time.Second
)

// clusterRig is a loadgen with 60 targets, a bench/sink and Debian's
// Prometheus as the two backends every member writes to, and the members.
type clusterRig struct {
	t        *testing.T
	dir      string
	lg       *loadgen.Server
	sink     *sink.Sink
	sinkAddr string
	backend  *backend
	proxies  map[int]*pausableProxy // member -> its way to the backend
	gossip   map[int]int            // member -> gossip port, kept over restarts
	members  map[int]*clusterProc
	// extra is YAML added to every member's cluster block.
	extra string
	// errs is what the test found wrong, repeated after the members' logs
	// (which a failure prints) so that it ends the test's output.
	errs []string
}

type clusterProc struct {
	p         *process
	telemetry int
	status    int // the status extension's port
}

func newClusterRig(t *testing.T) *clusterRig {
	var r *clusterRig
	t.Cleanup(func() { // registered first, so it runs last
		if r != nil && len(r.errs) > 0 {
			t.Logf("%s failed:\n  %s", t.Name(), strings.Join(r.errs, "\n  "))
		}
	})
	lg, err := loadgen.Start(loadgen.Config{Targets: clusterTargets, SeriesPerTarget: 100, Seed: 18}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Stop)
	s, addr := startSink(t)
	r = &clusterRig{t: t, dir: t.TempDir(), lg: lg, sink: s, sinkAddr: addr, backend: newBackend(t, "prometheus"),
		proxies: map[int]*pausableProxy{}, gossip: map[int]int{}, members: map[int]*clusterProc{}}
	for i := 0; i < 5; i++ {
		r.gossip[i] = freePort(t)
	}
	return r
}

// errorf fails the test and keeps the message for the summary.
func (r *clusterRig) errorf(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.errs = append(r.errs, msg)
	r.t.Error(msg)
}

// config is member i's configuration: the loadgen targets, the cluster
// block (every possible member a peer), and a pipeline to both backends,
// Prometheus through the member's own proxy (so a test can cut one
// member's path to it).
func (r *clusterRig) config(i, health, telemetry, status int) string {
	var peers, targets []string
	for j := 0; j < len(r.gossip); j++ {
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", r.gossip[j]))
	}
	for _, a := range r.lg.Addrs() {
		targets = append(targets, fmt.Sprintf("%q", a))
	}
	px, ok := r.proxies[i]
	if !ok {
		px = startPausableProxy(r.t, fmt.Sprintf("127.0.0.1:%d", r.backend.port))
		r.proxies[i] = px
	}
	return writeFile(r.t, r.dir, fmt.Sprintf("member-%d.yaml", i), fmt.Sprintf(`receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: loadgen
          scrape_interval: %[1]s
          static_configs:
            - targets: [%[2]s]
    cluster:
      enabled: true
      node_name: m%[3]d
      listen_address: 127.0.0.1:%[4]d
      peers: [%[5]s]
      join_timeout: 3s
      probe_interval: %[6]s
      failure_timeout: %[7]s
      handover_delay: 1s
%[14]s
processors:
  batch:
    timeout: 200ms
    send_batch_size: 8192
exporters:
  remote_write/sink:
    endpoint: http://%[8]s/api/v1/write
    queue:
      directory: %[9]s/sink
  remote_write/prometheus:
    endpoint: http://%[10]s/api/v1/write
    queue:
      directory: %[9]s/prometheus
extensions:
  health_check:
    endpoint: 127.0.0.1:%[11]d
  status:
    endpoint: 127.0.0.1:%[13]d
service:
  extensions: [health_check, status]
  telemetry:
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[12]d
  pipelines:
    metrics:
      receivers: [prometheus]
      processors: [batch]
      exporters: [remote_write/sink, remote_write/prometheus]
`, clusterInterval, strings.Join(targets, ", "), i, r.gossip[i], strings.Join(peers, ", "),
		clusterProbe, clusterFailure, r.sinkAddr, filepath.Join(r.dir, fmt.Sprintf("queue-%d", i)), px.addr, health, telemetry, status, r.extra))
}

// start starts member i (on its own queue, kept over restarts) and waits
// until its health check is ready, which is after it joined.
func (r *clusterRig) start(i int) {
	health, tel, st := freePort(r.t), freePort(r.t), freePort(r.t)
	p := startSluice(r.t, r.config(i, health, tel, st))
	p.waitHealthy(r.t, health, 60*time.Second, fmt.Sprintf("member m%d", i))
	r.members[i] = &clusterProc{p: p, telemetry: tel, status: st}
}

// stop ends member i with SIGTERM (graceful: it hands over first).
func (r *clusterRig) stop(i int) {
	m := r.members[i]
	delete(r.members, i)
	_ = m.p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.p.done:
		m.p.done <- err
	case <-time.After(20 * time.Second):
		r.t.Fatalf("m%d did not stop within 20 s of SIGTERM", i)
	}
}

// kill ends member i with SIGKILL.
func (r *clusterRig) kill(i int) {
	m := r.members[i]
	delete(r.members, i)
	_ = m.p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-m.p.done
	m.p.done <- err
}

// owned is, per member, the targets it scrapes now by its own telemetry.
func (r *clusterRig) owned() map[string]int {
	out := map[string]int{}
	for i, m := range r.members {
		fam := ownMetrics(r.t, m.telemetry)
		out[fmt.Sprintf("m%d", i)] = int(valueOf(fam, "otelcol_prometheus_receiver_targets", map[string]string{"job": "loadgen"}))
	}
	return out
}

// waitBalanced waits until the members' targets add up to all of them,
// each member owning some.
func (r *clusterRig) waitBalanced(what string) map[string]int {
	var owned map[string]int
	waitFor(r.t, 30*time.Second, what, func() bool {
		owned = r.owned()
		total := 0
		for _, n := range owned {
			if n <= 0 {
				return false
			}
			total += n
		}
		return total == clusterTargets
	})
	return owned
}

// seriesReport is what the sink shows of the loadgen series between two
// times: how many there are, and gaps (successive samples more than 1.5
// intervals apart: a missed scrape), doubles (closer than half an interval:
// two members scraped one slot) and the longest gap.
type seriesReport struct {
	series, gaps, doubles, uncovered int
	maxGap                           time.Duration
	worst                            string
}

func (r *clusterRig) check(from, to time.Time) seriesReport {
	var rep seriesReport
	f, tt := from.UnixMilli(), to.UnixMilli()
	limit := int64(clusterInterval/time.Millisecond) * 3 / 2
	half := int64(clusterInterval/time.Millisecond) / 2
	for _, key := range r.sink.Series() {
		if !strings.Contains(key, `job="loadgen"`) {
			continue
		}
		rep.series++
		var pts []sink.Point
		for _, p := range r.sink.Samples(key) {
			if p.T >= f && p.T <= tt {
				pts = append(pts, p)
			}
		}
		if len(pts) == 0 || pts[0].T > f+limit || pts[len(pts)-1].T < tt-limit {
			rep.uncovered++
			continue
		}
		for i := 1; i < len(pts); i++ {
			d := pts[i].T - pts[i-1].T
			if d > limit {
				rep.gaps++
			}
			if d < half {
				rep.doubles++
			}
			if g := time.Duration(d) * time.Millisecond; g > rep.maxGap {
				rep.maxGap, rep.worst = g, key
			}
		}
	}
	return rep
}

// wantClean fails unless every loadgen series (and its scrape's own
// series) was scraped exactly once per interval between from and to.
func (r *clusterRig) wantClean(phase string, from, to time.Time) seriesReport {
	r.t.Helper()
	rep := r.check(from, to)
	want := clusterTargets * (100 + 5) // loadgen's series + up, scrape_duration_seconds, ...
	if rep.series < clusterTargets*100 || rep.gaps > 0 || rep.doubles > 0 || rep.uncovered > 0 {
		r.errorf("%s: %d series (want about %d), %d gaps, %d doubly scraped slots, %d series not covering the window; longest gap %s in %s",
			phase, rep.series, want, rep.gaps, rep.doubles, rep.uncovered, rep.maxGap, rep.worst)
	}
	return rep
}

// backendRefusals is Prometheus' count of samples it refused for order.
func (r *clusterRig) backendRefusals() float64 {
	n := 0.0
	for _, v := range backendCounters(r.t, r.backend.port, "prometheus_tsdb_out_of_order_samples_total",
		"prometheus_tsdb_out_of_bound_samples_total", "prometheus_tsdb_too_old_samples_total") {
		n += v
	}
	return n
}

// Three members share 60 targets evenly, each scraped once per interval;
// a fourth joins, then two leave gracefully (3 → 4 → 2): through every
// handover no sample is missed, doubled or out of order, at the sink or
// at Prometheus, and no stale marker is written for a moved series.
func TestClusterRescale(t *testing.T) {
	r := newClusterRig(t)
	for i := 0; i < 3; i++ {
		r.start(i)
	}
	owned := r.waitBalanced("60 targets owned by the 3 members")
	time.Sleep(3 * time.Second) // past the first handovers of the start
	from := time.Now()
	time.Sleep(15 * time.Second)
	steady := time.Now()
	owned = r.owned()
	t.Logf("3 members: targets per member %v", owned)
	for m, n := range owned {
		if n < clusterTargets/3*7/10 || n > clusterTargets/3*13/10 {
			r.errorf("member %s owns %d targets, want %d ± 30%%", m, n, clusterTargets/3)
		}
	}
	r.wantStatusPage(owned)
	rep := r.wantClean("3 members, steady", from, steady)
	t.Logf("3 members, steady %s: %d series, %d gaps, %d doubles, longest interval between samples %s",
		steady.Sub(from).Round(time.Second), rep.series, rep.gaps, rep.doubles, rep.maxGap)

	r.start(3)
	time.Sleep(5 * time.Second)
	t.Logf("4 members: targets per member %v", r.waitBalanced("60 targets owned by the 4 members"))
	r.stop(0)
	time.Sleep(3 * time.Second)
	r.stop(1)
	time.Sleep(5 * time.Second)
	t.Logf("2 members: targets per member %v", r.waitBalanced("60 targets owned by the 2 members"))
	time.Sleep(3 * time.Second)
	to := time.Now().Add(-2 * time.Second) // what has surely arrived
	rep = r.wantClean("3 → 4 → 2", from, to)
	t.Logf("3 → 4 → 2 over %s: %d series, %d gaps, %d doubles, longest interval between samples %s",
		to.Sub(from).Round(time.Second), rep.series, rep.gaps, rep.doubles, rep.maxGap)

	st := r.sink.Stats().RemoteWrite
	if st.Duplicates != 0 || st.OutOfOrder != 0 || st.StaleMarkers != 0 {
		r.errorf("sink: %d duplicates, %d out of order, %d stale markers; want none", st.Duplicates, st.OutOfOrder, st.StaleMarkers)
	}
	if n := r.backendRefusals(); n != 0 {
		r.errorf("Prometheus refused %v samples as out of order, out of bounds or too old", n)
	}
	// The backend holds the same: every series, no gap, no double.
	stored := r.backend.stored(t, from.UnixMilli(), to.UnixMilli())
	bgaps, bdoubles := 0, 0
	for _, pts := range stored {
		for i := 1; i < len(pts); i++ {
			if d := pts[i].T - pts[i-1].T; d > 1500 {
				bgaps++
			} else if d < 500 {
				bdoubles++
			}
		}
	}
	if len(stored) < clusterTargets*100 || bgaps > 0 || bdoubles > 0 {
		r.errorf("Prometheus holds %d loadgen series with %d gaps and %d doubles", len(stored), bgaps, bdoubles)
	}
	t.Logf("sink: %d duplicates, %d out of order, %d stale markers; Prometheus: %d series, %d gaps, %d doubles, 0 refused",
		st.Duplicates, st.OutOfOrder, st.StaleMarkers, len(stored), bgaps, bdoubles)
}

// kill -9 of one of three members: its targets resume on the other two
// within the bound, the gap is measured, and the survivors count the
// takeover. The bound, at worst: a survivor probes the other two in turn,
// in an order reshuffled every round, so it next probes the victim up to 3
// probe intervals after the kill and finds it unanswered one interval
// later; failure_timeout after that the victim is dead (2 × 2 probe
// intervals + failure_timeout for 3 members). The target's next slot is up
// to a scrape interval later, and the victim's last scrape before the kill
// may have been in its batch (up to the batch timeout, 200 ms), so the
// last sample delivered can be one interval before the kill: a gap of at
// most detection + 2 intervals + 200 ms, which the slots make 4 or 5 s
// here (6 s only if detection took its very longest).
// Then the killed member restarts on its own queue, which holds what it
// could not deliver to Prometheus before it died (its path there was cut
// 5 s before the kill): the test reports what Prometheus made of those
// samples, now older than what the new owners wrote.
func TestClusterKill(t *testing.T) {
	r := newClusterRig(t)
	for i := 0; i < 3; i++ {
		r.start(i)
	}
	r.waitBalanced("60 targets owned by the 3 members")
	time.Sleep(5 * time.Second)
	from := time.Now()
	time.Sleep(5 * time.Second)
	victimTel := r.members[2].telemetry
	victimOwned := int(valueOf(ownMetrics(t, victimTel), "otelcol_prometheus_receiver_targets", map[string]string{"job": "loadgen"}))
	r.proxies[2].pause()
	time.Sleep(5 * time.Second)
	killed := time.Now()
	r.kill(2)
	t.Logf("m2 (owning %d targets) killed with SIGKILL; its path to Prometheus was cut 5 s before", victimOwned)
	owned := r.waitBalanced("60 targets owned by the 2 survivors")
	t.Logf("survivors own %v, %s after the kill", owned, time.Since(killed).Round(100*time.Millisecond))
	time.Sleep(5 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	bound := 2*(3-1)*clusterProbe + clusterFailure + 2*clusterInterval + 200*time.Millisecond
	rep := r.check(from, to)
	if rep.uncovered > 0 || rep.doubles > 0 {
		r.errorf("across the kill: %d series not covering the window, %d doubly scraped slots", rep.uncovered, rep.doubles)
	}
	if rep.maxGap > bound {
		r.errorf("longest gap %s (in %s) is over the bound %s", rep.maxGap, rep.worst, bound)
	}
	if rep.gaps == 0 {
		r.errorf("no gap at all across a kill -9: the victim's targets cannot have been its")
	}
	t.Logf("kill -9: %d gaps (one per series of the victim's targets), longest %s, bound %s", rep.gaps, rep.maxGap, bound)
	takeovers, failedChanges := 0.0, 0.0
	for _, m := range r.members {
		fam := ownMetrics(t, m.telemetry)
		takeovers += valueOf(fam, "otelcol_prometheus_receiver_cluster_takeovers", nil)
		failedChanges += valueOf(fam, "otelcol_prometheus_receiver_cluster_membership_changes", map[string]string{"change": "failed"})
	}
	if int(takeovers) != victimOwned || failedChanges != 2 {
		r.errorf("survivors counted %v takeovers (victim owned %d) and %v failed-member changes (want 2, one each)", takeovers, victimOwned, failedChanges)
	}

	// The restart on its own queue, with its path to Prometheus back.
	before := r.backendRefusals()
	r.proxies[2].resume()
	r.start(2)
	tel := r.members[2].telemetry
	waitFor(t, 60*time.Second, "m2's queue to Prometheus drained", func() bool {
		return valueOf(ownMetrics(t, tel), "otelcol_remote_write_queue_pending_size", map[string]string{"exporter": "remote_write/prometheus"}) == 0
	})
	fam := ownMetrics(t, tel)
	dropped := max(0, valueOf(fam, "otelcol_remote_write_dropped", map[string]string{"exporter": "remote_write/prometheus", "kind": "samples"}))
	dropped400 := max(0, valueOf(fam, "otelcol_remote_write_dropped", map[string]string{"exporter": "remote_write/prometheus", "kind": "samples", "reason": "http_400"}))
	refused := r.backendRefusals() - before
	// What m2 scraped in the 5 s its path was cut: its targets' series, 5
	// scrapes each.
	queued := victimOwned * (100 + 5) * 5
	t.Logf("m2 restarted on its queue (about %d samples queued): Prometheus answered 400 (out of order; its refusal counters rose by %v) and m2 dropped %v samples, %v of them as reason=http_400",
		queued, refused, dropped, dropped400)
	if refused <= 0 || dropped400 <= 0 {
		r.errorf("the queued samples are older than what the new owners wrote: Prometheus should refuse them (refusals +%v) and m2 count them dropped (%v)", refused, dropped400)
	}
	if dropped400 < float64(queued)*8/10 {
		r.errorf("m2 dropped %v samples as http_400, but had about %d queued", dropped400, queued)
	}
	r.waitBalanced("60 targets owned by the 3 members again")
	time.Sleep(5 * time.Second)
	back := time.Now().Add(-3 * time.Second)
	rep = r.wantClean("m2 back", back.Add(-5*time.Second), back)
	t.Logf("after m2 rejoined: %d series, %d gaps, %d doubles over 5 s", rep.series, rep.gaps, rep.doubles)
}

// wantStatusPage checks that each member's status page lists the three
// members, all active, with the targets each owns as its telemetry says,
// and itself marked.
func (r *clusterRig) wantStatusPage(owned map[string]int) {
	r.t.Helper()
	for i, m := range r.members {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/cluster", m.status))
		if err != nil {
			r.t.Fatal(err)
		}
		var body struct {
			Clusters []struct {
				Receiver string `json:"receiver"`
				Member   string `json:"member"`
				Members  []struct {
					Name    string `json:"name"`
					State   string `json:"state"`
					Targets int    `json:"targets"`
					Self    bool   `json:"self"`
				} `json:"members"`
			} `json:"clusters"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || len(body.Clusters) != 1 {
			r.t.Fatalf("m%d's /api/v1/cluster: %v, %+v", i, err, body)
		}
		c := body.Clusters[0]
		got := map[string]int{}
		for _, mm := range c.Members {
			got[mm.Name] = mm.Targets
			if mm.State != "active" || mm.Self != (mm.Name == c.Member) {
				r.errorf("m%d's status page: member %+v", i, mm)
			}
		}
		if c.Member != fmt.Sprintf("m%d", i) || !maps.Equal(got, owned) {
			r.errorf("m%d's status page: this member %q, targets per member %v, want m%d and %v", i, c.Member, got, i, owned)
		}
		page, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", m.status))
		if err != nil {
			r.t.Fatal(err)
		}
		html, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if !strings.Contains(string(html), `<section id="cluster">`) {
			r.errorf("m%d's status page has no cluster section", i)
		}
	}
}
