package scenario

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/bench/systems"
	"github.com/sluicehq/sluice/internal/freeport"
)

// Soak is a long run of one workload through repeated backend outages and a
// crash: does anything grow that should not (memory, goroutines, the queue),
// and does everything still arrive, once, in order?
type Soak struct {
	Workload    Workload      // what is served (Warmup is spent before the first cycle)
	Cycles      int           // number of cycles after the warm-up
	CycleLength time.Duration // each cycle begins with an outage
	OutageFor   time.Duration // the backend answers 503 this long at the start of each cycle
	KillCycle   int           // kill -9 half-way through this cycle's outage (-1: never)
}

// SoakPoint is one reading, taken every second.
type SoakPoint struct {
	At         time.Duration // since the end of the warm-up
	RSS        int64         // bytes (VmRSS)
	Goroutines int           // -1: not readable (the process was restarting)
	QueueBytes int64         // otelcol_remote_write_queue_pending_size (not yet acknowledged), all shards; -1: not readable
	Outage     bool
}

// SoakCycle sums up one cycle's readings.
type SoakCycle struct {
	Index          int
	PeakRSS        int64
	PeakGoroutines int
	// BaseGoroutines: the fewest over the second half of the cycle, outage
	// long drained: what stays when no scrape or request is in flight (a
	// single reading catches those at random; a leak raises the floor).
	BaseGoroutines int
	PeakQueueBytes int64 // during or right after the outage
	EndQueueBytes  int64 // at the end of the cycle, before the next outage
	// DrainSeconds: from the end of the outage until the queue was back under
	// a tenth of its peak (-1: it never was within the cycle).
	DrainSeconds float64
	Killed       bool
}

// SoakResult is what a soak found.
type SoakResult struct {
	Err        error
	Points     []SoakPoint
	Cycles     []SoakCycle
	Served     int64 // loadgen samples served over the whole run
	Received   int64 // distinct loadgen samples at the sink after the drain
	Duplicates int
	OutOfOrder int
	Restarts   int
	CPUSeconds float64 // over the cycles (warm-up excluded)
	Delivered  int64   // samples the sink received over the cycles, duplicates included
}

// RunSoak runs sys through the soak plan with bench/sink as the backend.
func RunSoak(ctx context.Context, p Soak, sys systems.System, startLoadgen StartLoadgen, logf func(string, ...any)) (res SoakResult) {
	w := p.Workload
	sk := sink.New()
	sinkAddr, stopSink, err := sk.Start("127.0.0.1:0")
	if err != nil {
		return SoakResult{Err: err}
	}
	defer stopSink()
	var probes systems.Spec
	if probes.MetricsPort, err = freeport.Get(); err == nil {
		probes.PprofPort, err = freeport.Get()
	}
	if err != nil {
		return SoakResult{Err: err}
	}
	s, closeSession, err := startSession(ctx, w, sys, startLoadgen, "http://"+sinkAddr+"/api/v1/write", &probes)
	if err != nil {
		return SoakResult{Err: err}
	}
	defer closeSession()
	probe := &soakProbe{client: &http.Client{Timeout: 2 * time.Second}, metrics: probes.MetricsPort, pprof: probes.PprofPort}

	logf("soak %s: warm-up %s", sys.Name(), w.Warmup)
	if err := s.wait(time.Now().Add(w.Warmup), nil); err != nil {
		return SoakResult{Err: err}
	}
	cpu0, _ := s.m.totals()
	samples0 := sk.Stats().RemoteWrite.Samples
	start := time.Now()
	for c := 0; c < p.Cycles && res.Err == nil; c++ {
		cycleStart := start.Add(time.Duration(c) * p.CycleLength)
		if err := sk.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(p.OutageFor)}); err != nil {
			res.Err = err
			break
		}
		logf("soak %s: cycle %d: backend answers 503 for %s", sys.Name(), c+1, p.OutageFor)
		killed := false
		err := s.wait(cycleStart.Add(p.CycleLength), func(now time.Time) bool {
			if c == p.KillCycle && !killed && now.After(cycleStart.Add(p.OutageFor/2)) {
				killed = true
				logf("soak %s: cycle %d: kill -9 pid %d, restart", sys.Name(), c+1, s.proc.Pid())
				res.Restarts++
				if res.Err = s.crash(); res.Err != nil {
					return true
				}
			}
			u, _ := readUsage(s.proc.Pid())
			res.Points = append(res.Points, SoakPoint{At: now.Sub(start), RSS: u.rssBytes,
				Goroutines: probe.goroutines(), QueueBytes: probe.queueBytes(),
				Outage: now.Sub(cycleStart) < p.OutageFor})
			if s.proc.Exited() {
				res.Err = fmt.Errorf("%s exited on its own: %s", sys.Name(), oneLine(s.proc.LogTail(400)))
				return true
			}
			return false
		})
		if err != nil && res.Err == nil {
			res.Err = err
		}
		res.Cycles = append(res.Cycles, summarizeCycle(c, killed, p, res.Points, cycleStart.Sub(start)))
		last := res.Cycles[len(res.Cycles)-1]
		logf("soak %s: cycle %d: peak RSS %d MiB, goroutine floor %d, queue peak %.1f MiB, end %.1f MiB, drained in %.0f s",
			sys.Name(), c+1, last.PeakRSS>>20, last.BaseGoroutines, float64(last.PeakQueueBytes)/(1<<20), float64(last.EndQueueBytes)/(1<<20), last.DrainSeconds)
	}
	cpu1, _ := s.m.totals()
	res.CPUSeconds = cpu1 - cpu0
	res.Delivered = int64(sk.Stats().RemoteWrite.Samples - samples0)

	// Stop serving, then wait until nothing new has arrived for three intervals.
	s.lg.Stop()
	res.Served = s.lg.SamplesServed()
	last, stableSince := -1, time.Now()
	_ = s.wait(time.Now().Add(max(w.Drain, 3*w.Interval+5*time.Second)), func(now time.Time) bool {
		if d := sk.Distinct(Prefix); d != last {
			last, stableSince = d, now
		}
		return now.Sub(stableSince) >= 3*w.Interval
	})
	st := sk.Stats().RemoteWrite
	res.Received = int64(sk.Distinct(Prefix))
	res.Duplicates, res.OutOfOrder = st.Duplicates, st.OutOfOrder
	return res
}

// summarizeCycle reads the points of cycle c (which began at offset from the
// start of the soak).
func summarizeCycle(c int, killed bool, p Soak, points []SoakPoint, offset time.Duration) SoakCycle {
	cy := SoakCycle{Index: c + 1, DrainSeconds: -1, Killed: killed, BaseGoroutines: -1, EndQueueBytes: -1}
	var in []SoakPoint
	for _, pt := range points {
		if pt.At >= offset && pt.At < offset+p.CycleLength {
			in = append(in, pt)
		}
	}
	for _, pt := range in {
		cy.PeakRSS = max(cy.PeakRSS, pt.RSS)
		cy.PeakGoroutines = max(cy.PeakGoroutines, pt.Goroutines)
		cy.PeakQueueBytes = max(cy.PeakQueueBytes, pt.QueueBytes)
	}
	for _, pt := range in {
		if pt.At-offset >= p.CycleLength/2 && pt.Goroutines >= 0 && (cy.BaseGoroutines < 0 || pt.Goroutines < cy.BaseGoroutines) {
			cy.BaseGoroutines = pt.Goroutines
		}
	}
	for i := len(in) - 1; i >= 0; i-- { // the last readable value
		if cy.EndQueueBytes < 0 && in[i].QueueBytes >= 0 {
			cy.EndQueueBytes = in[i].QueueBytes
		}
	}
	for _, pt := range in {
		// By time, not by pt.Outage: the last reading of the previous
		// cycle can fall just past its end, taken with that cycle's view.
		if pt.At-offset >= p.OutageFor && pt.QueueBytes >= 0 && pt.QueueBytes <= cy.PeakQueueBytes/10 {
			cy.DrainSeconds = (pt.At - offset - p.OutageFor).Seconds()
			break
		}
	}
	return cy
}

// soakProbe reads a collector's goroutines (pprof extension) and queue bytes
// (its own telemetry) over loopback.
type soakProbe struct {
	client         *http.Client
	metrics, pprof int
}

func (p *soakProbe) get(port int, path string) (io.ReadCloser, error) {
	resp, err := p.client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	return resp.Body, nil
}

// goroutines reads "goroutine profile: total N"; -1 when it cannot.
func (p *soakProbe) goroutines() int {
	body, err := p.get(p.pprof, "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer body.Close()
	line, _ := bufio.NewReader(body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total")))
	if err != nil {
		return -1
	}
	return n
}

// queueBytes reads the backlog, otelcol_remote_write_queue_pending_size
// (bytes not yet acknowledged); -1 when it cannot be read.
func (p *soakProbe) queueBytes() int64 {
	body, err := p.get(p.metrics, "/metrics")
	if err != nil {
		return -1
	}
	defer body.Close()
	return sumMetric(body, "otelcol_remote_write_queue_pending_size")
}

// sumMetric adds up the samples of one metric in a text exposition, whatever
// unit suffix the exporter appended (_bytes); -1 when there is none.
func sumMetric(r io.Reader, name string) int64 {
	var total int64 = -1
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		rest = strings.TrimPrefix(rest, "_bytes")
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // another metric sharing the prefix (_records)
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		total = max(total, 0) + int64(v)
	}
	return total
}

// SoakVerdict holds the checks a soak must pass, each with its figure.
type SoakVerdict struct {
	RSSGrowth        float64 // highest peak RSS of cycles 3.. over cycle 2's peak, minus 1
	GoroutineSpread  int     // max - min of the goroutine floor (BaseGoroutines) of cycles 2..
	QueueNotDrained  []int   // cycles whose queue was not back to ~0 at their end
	Lost             int64
	Duplicates       int
	OutOfOrder       int
	RSSFlat          bool // growth within 10%
	GoroutinesFlat   bool // spread within max(5, 5% of the count)
	QueuesDrained    bool
	NothingLostTwice bool // nothing lost, duplicated or out of order
}

// Judge applies the soak's criteria to a result with at least two cycles:
// cycle 1 is the one where caches and buffers find their size, so flatness
// is judged from cycle 2 on. A queue is back to ~0 when what it holds at the
// end of its cycle is under 5% of its outage peak, or under 2 MiB (the few
// requests in flight at 20k samples/s).
func Judge(r SoakResult) SoakVerdict {
	v := SoakVerdict{Lost: r.Served - r.Received, Duplicates: r.Duplicates, OutOfOrder: r.OutOfOrder}
	if len(r.Cycles) >= 2 {
		base, peak := r.Cycles[1].PeakRSS, int64(0)
		lo, hi := r.Cycles[1].BaseGoroutines, r.Cycles[1].BaseGoroutines
		for _, c := range r.Cycles[1:] {
			if c.Index > 2 {
				peak = max(peak, c.PeakRSS)
			}
			lo, hi = min(lo, c.BaseGoroutines), max(hi, c.BaseGoroutines)
		}
		if base > 0 && peak > 0 {
			v.RSSGrowth = float64(peak)/float64(base) - 1
		}
		v.GoroutineSpread = hi - lo
		v.RSSFlat = v.RSSGrowth <= 0.10
		v.GoroutinesFlat = lo >= 0 && v.GoroutineSpread <= max(5, hi/20)
	}
	for _, c := range r.Cycles {
		if c.EndQueueBytes < 0 || c.EndQueueBytes > max(c.PeakQueueBytes/20, 2<<20) {
			v.QueueNotDrained = append(v.QueueNotDrained, c.Index)
		}
	}
	v.QueuesDrained = len(r.Cycles) > 0 && len(v.QueueNotDrained) == 0
	v.NothingLostTwice = v.Lost == 0 && v.Duplicates == 0 && v.OutOfOrder == 0
	return v
}

// SoakTable renders a soak as the Markdown of bench/RESULTS.md.
func SoakTable(p Soak, r SoakResult) string {
	var b strings.Builder
	w := p.Workload
	fmt.Fprintf(&b, "Soak: %d targets × %d series = %d active series, scrape every %s, warm-up %s, then %d cycles of %s, each beginning with %s of backend 503",
		w.Targets, w.SeriesPerTarget, w.Series(), w.Interval, w.Warmup, p.Cycles, p.CycleLength, p.OutageFor)
	if p.KillCycle >= 0 {
		fmt.Fprintf(&b, "; kill -9 and restart half-way through cycle %d's outage", p.KillCycle+1)
	}
	b.WriteString("\n\n")
	if r.Err != nil {
		fmt.Fprintf(&b, "**The soak failed:** %s\n", oneLine(r.Err.Error()))
	}
	b.WriteString("| cycle | peak RSS MiB | peak goroutines | goroutine floor (2nd half) | queue peak MiB | queue at end MiB | drained in s |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Cycles {
		kill := ""
		if c.Killed {
			kill = " (kill -9)"
		}
		drainS := "not drained"
		if c.DrainSeconds >= 0 {
			drainS = fmt.Sprintf("%.0f", c.DrainSeconds)
		}
		fmt.Fprintf(&b, "| %d%s | %d | %d | %d | %.1f | %.2f | %s |\n", c.Index, kill, c.PeakRSS>>20, c.PeakGoroutines,
			c.BaseGoroutines, float64(c.PeakQueueBytes)/(1<<20), float64(c.EndQueueBytes)/(1<<20), drainS)
	}
	v := Judge(r)
	mark := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	cpuPerM := 0.0
	if r.Delivered > 0 {
		cpuPerM = r.CPUSeconds / (float64(r.Delivered) / 1e6)
	}
	fmt.Fprintf(&b, "\n- served %d samples, %d distinct at the sink: lost %d, duplicates %d, out of order %d — nothing lost, duplicated or reordered: %s\n",
		r.Served, r.Received, v.Lost, v.Duplicates, v.OutOfOrder, mark(v.NothingLostTwice))
	fmt.Fprintf(&b, "- peak RSS from cycle 2 to the highest later cycle: %+.1f%% — flat (≤ 10%%): %s\n", 100*v.RSSGrowth, mark(v.RSSFlat))
	fmt.Fprintf(&b, "- goroutine floor of cycles 2..%d spread by %d — flat: %s\n", len(r.Cycles), v.GoroutineSpread, mark(v.GoroutinesFlat))
	fmt.Fprintf(&b, "- queue back to ~0 (< 5%% of its peak or < 2 MiB) at the end of every cycle: %s", mark(v.QueuesDrained))
	if len(v.QueueNotDrained) > 0 {
		fmt.Fprintf(&b, " (not in cycles %v)", v.QueueNotDrained)
	}
	fmt.Fprintf(&b, "\n- CPU %.0f s over the cycles, %.2f s per million samples delivered; restarts %d\n", r.CPUSeconds, cpuPerM, r.Restarts)
	return b.String()
}
