package scenario

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sluicehq/sluice/bench/loadgen"
	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/bench/systems"
	"github.com/sluicehq/sluice/internal/freeport"
)

// Loadgen is what the runner needs of the load generator (bench/loadgen).
type Loadgen interface {
	Addrs() []string      // host:port of each target
	SamplesServed() int64 // sample lines served so far, over all targets
	Stop()                // stop serving
}

// StartLoadgen starts a fresh load generator for a workload; each system gets
// its own, so what was served is counted from zero for it.
type StartLoadgen func(w Workload) (Loadgen, error)

// BenchLoadgen is the StartLoadgen of the commands: bench/loadgen on
// loopback, seed 1.
func BenchLoadgen(w Workload) (Loadgen, error) {
	return loadgen.Start(loadgen.Config{Targets: w.Targets, SeriesPerTarget: w.SeriesPerTarget, Seed: 1}, "127.0.0.1:0")
}

// Prefix is the metric-name prefix of every series the load generator serves;
// loss is counted on those series only (not on up, scrape_* and the like,
// which the systems make themselves).
const Prefix = "lg_"

// Result is one system's figures for one workload.
type Result struct {
	System        string
	Err           error   // the system could not be run; the figures are empty
	SamplesPerSec float64 // samples received by the backend per second of the window
	CPUPerMillion float64 // CPU seconds of the system per million samples delivered
	PeakRSS       int64   // bytes
	// PeakAnon is the highest anonymous RSS sampled (heap, stacks: RssAnon),
	// PeakRSS less the mapped binary and files. It tells a process's own
	// memory apart from its binary's pages, which for a collector built with
	// every Prometheus service discovery is most of the difference.
	PeakAnon       int64
	DiskPerMillion float64 // bytes written to storage per million samples delivered
	Served         int64   // loadgen sample lines served over the whole run
	Received       int64   // distinct of those at the backend after the drain
	Duplicates     int
	OutOfOrder     int
	// DrainSeconds: after the outage, seconds until the backend had caught up
	// (deficit within two scrape rounds). Drained is false when it had not
	// caught up by the end of the window; Outage says whether there was one.
	DrainSeconds float64
	Drained      bool
	Outage       bool
	Restarts     int
}

// Lost is what was served but never reached the backend.
func (r Result) Lost() int64 { return r.Served - r.Received }

// meter follows a system's process (and its successors after a kill) in /proc.
type meter struct {
	carriedCPU float64
	carriedIO  int64
	last       usage
	peakRSS    int64
	peakAnon   int64
}

func (m *meter) sample(pid int) {
	u, err := readUsage(pid)
	if err != nil {
		return // the process just exited; keep the last reading
	}
	m.last = u
	m.peakRSS = max(m.peakRSS, u.rssBytes, u.hwmBytes)
	m.peakAnon = max(m.peakAnon, u.anonBytes)
}

// retire adds a killed process's totals to the carried ones.
func (m *meter) retire() {
	m.carriedCPU += m.last.cpuSeconds
	m.carriedIO += m.last.writeBytes
	m.last = usage{}
}

func (m *meter) totals() (float64, int64) {
	return m.carriedCPU + m.last.cpuSeconds, m.carriedIO + m.last.writeBytes
}

// session is one system running on one workload's load generator, sampled
// from /proc every second.
type session struct {
	ctx  context.Context
	sys  systems.System
	lg   Loadgen
	spec systems.Spec
	proc *systems.Process
	m    *meter
	tick *time.Ticker
}

// startSession starts a fresh load generator and the system, pointed at
// remoteWriteURL; probes, when set, picks the ports of the system's own
// telemetry and pprof (the soak reads them). close stops both and removes
// the state directory.
func startSession(ctx context.Context, w Workload, sys systems.System, startLoadgen StartLoadgen, remoteWriteURL string, probes *systems.Spec) (*session, func(), error) {
	if err := sys.Available(); err != nil {
		return nil, nil, err
	}
	lg, err := startLoadgen(w)
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: %w", err)
	}
	dir, err := os.MkdirTemp("", "sluice-bench-"+sys.Name()+"-")
	if err != nil {
		lg.Stop()
		return nil, nil, err
	}
	port, err := freeport.Get()
	if err != nil {
		lg.Stop()
		return nil, nil, err
	}
	s := &session{ctx: ctx, sys: sys, lg: lg, m: &meter{}, tick: time.NewTicker(time.Second),
		spec: systems.Spec{Targets: lg.Addrs(), Interval: w.Interval, RemoteWriteURL: remoteWriteURL, Dir: dir, Port: port}}
	if probes != nil {
		s.spec.MetricsPort, s.spec.PprofPort = probes.MetricsPort, probes.PprofPort
	}
	if s.proc, err = sys.Start(s.spec); err != nil {
		lg.Stop()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() {
		s.tick.Stop()
		lg.Stop()
		_ = s.proc.Stop(30 * time.Second)
		os.RemoveAll(dir)
	}, nil
}

// crash kills the system with SIGKILL, its last readings kept, and starts
// it again on the same spec (its state directory).
func (s *session) crash() error {
	s.m.sample(s.proc.Pid())
	_ = s.proc.Kill()
	s.m.retire()
	next, err := s.sys.Start(s.spec)
	if err != nil {
		return fmt.Errorf("restart after kill -9: %w", err)
	}
	s.proc = next
	return nil
}

// wait samples the process every second until the deadline, or until each
// (called every second) says it is done.
func (s *session) wait(until time.Time, each func(now time.Time) (done bool)) error {
	for {
		s.m.sample(s.proc.Pid())
		if each != nil && each(time.Now()) {
			return nil
		}
		if !time.Now().Before(until) {
			return nil
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-s.tick.C:
		}
	}
}

// Run puts one system through one workload and measures it. logf reports progress.
func Run(ctx context.Context, w Workload, sys systems.System, startLoadgen StartLoadgen, logf func(string, ...any)) (res Result) {
	res = Result{System: sys.Name(), DrainSeconds: -1, Outage: w.Outage > 0}
	sk := sink.New()
	sinkAddr, stopSink, err := sk.Start("127.0.0.1:0")
	if err != nil {
		res.Err = err
		return res
	}
	defer stopSink()
	s, closeSession, err := startSession(ctx, w, sys, startLoadgen, "http://"+sinkAddr+"/api/v1/write", nil)
	if err != nil {
		res.Err = err
		return res
	}
	defer closeSession()

	logf("%s %s: warm-up %s", w.Name, sys.Name(), w.Warmup)
	if err := s.wait(time.Now().Add(w.Warmup), nil); err != nil {
		res.Err = err
		return res
	}
	cpu0, io0 := s.m.totals()
	samples0 := sk.Stats().RemoteWrite.Samples
	start := time.Now()
	if w.Outage > 0 {
		if err := sk.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(w.Outage)}); err != nil {
			res.Err = err
			return res
		}
		logf("%s %s: backend answers 503 for %s", w.Name, sys.Name(), w.Outage)
	}
	round := int64(w.Series())
	outageEnd := start.Add(w.Outage)
	err = s.wait(start.Add(w.Measure), func(now time.Time) bool {
		if w.KillInOutage && res.Restarts == 0 && now.After(start.Add(w.Outage/2)) {
			logf("%s %s: kill -9 pid %d, restart", w.Name, sys.Name(), s.proc.Pid())
			res.Restarts++
			if res.Err = s.crash(); res.Err != nil {
				return true
			}
		}
		if w.Outage > 0 && !res.Drained && now.After(outageEnd) {
			if deficit := s.lg.SamplesServed() - int64(sk.Distinct(Prefix)); deficit <= 2*round {
				res.Drained, res.DrainSeconds = true, now.Sub(outageEnd).Seconds()
			}
		}
		return false
	})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		res.Err = err
		return res
	}
	window := time.Since(start)
	cpu1, io1 := s.m.totals()
	delivered := float64(sk.Stats().RemoteWrite.Samples - samples0)

	// Stop serving, then let delivery settle: until nothing new arrived for
	// three intervals, or the drain time is up.
	s.lg.Stop()
	res.Served = s.lg.SamplesServed()
	logf("%s %s: window done, waiting up to %s for delivery to settle", w.Name, sys.Name(), w.Drain)
	quiet := 3 * w.Interval
	if f, ok := sys.(interface{ FlushDelay() time.Duration }); ok {
		quiet = max(quiet, f.FlushDelay()+5*time.Second) // it sends in batches this far apart
	}
	last, stableSince := -1, time.Now()
	_ = s.wait(time.Now().Add(max(w.Drain, quiet+5*time.Second)), func(now time.Time) bool {
		if d := sk.Distinct(Prefix); d != last {
			last, stableSince = d, now
		}
		return now.Sub(stableSince) >= quiet
	})
	st := sk.Stats().RemoteWrite
	res.Received = int64(sk.Distinct(Prefix))
	res.Duplicates, res.OutOfOrder = st.Duplicates, st.OutOfOrder
	res.PeakRSS, res.PeakAnon = s.m.peakRSS, s.m.peakAnon
	if delivered > 0 {
		res.SamplesPerSec = delivered / window.Seconds()
		res.CPUPerMillion = (cpu1 - cpu0) / (delivered / 1e6)
		res.DiskPerMillion = float64(io1-io0) / (delivered / 1e6)
	}
	return res
}

// ScrapeResult is a scrape receiver's figures on one workload.
type ScrapeResult struct {
	System        string
	Err           error
	SamplesPerSec float64 // samples served to it per second of the window
	CPUPerMillion float64 // CPU seconds per million samples scraped
	PeakRSS       int64
	RSSPerSeries  float64 // peak RSS / active series
	// PeakAnon and AnonPerSeries are the same without the mapped binary
	// (RssAnon: heap and stacks), what grows with the series.
	PeakAnon      int64
	AnonPerSeries float64
}

// RunScrapeOnly measures a system that only scrapes (bench/systems.ScrapeOnly):
// CPU per sample scraped and memory per active series over the window.
func RunScrapeOnly(ctx context.Context, w Workload, sys systems.System, startLoadgen StartLoadgen, logf func(string, ...any)) ScrapeResult {
	res := ScrapeResult{System: sys.Name()}
	s, closeSession, err := startSession(ctx, w, sys, startLoadgen, "", nil)
	if err != nil {
		res.Err = err
		return res
	}
	defer closeSession()
	logf("%s %s (scrape only): warm-up %s, window %s", w.Name, sys.Name(), w.Warmup, w.Measure)
	if err := s.wait(time.Now().Add(w.Warmup), nil); err != nil {
		res.Err = err
		return res
	}
	cpu0, _ := s.m.totals()
	served0, start := s.lg.SamplesServed(), time.Now()
	if err := s.wait(start.Add(w.Measure), nil); err != nil {
		res.Err = err
		return res
	}
	cpu1, _ := s.m.totals()
	scraped := float64(s.lg.SamplesServed() - served0)
	if s.proc.Exited() {
		res.Err = fmt.Errorf("exited during the window: %s", oneLine(s.proc.LogTail(300)))
		return res
	}
	res.PeakRSS, res.PeakAnon = s.m.peakRSS, s.m.peakAnon
	res.RSSPerSeries = float64(res.PeakRSS) / float64(w.Series())
	res.AnonPerSeries = float64(res.PeakAnon) / float64(w.Series())
	if scraped > 0 {
		res.SamplesPerSec = scraped / time.Since(start).Seconds()
		res.CPUPerMillion = (cpu1 - cpu0) / (scraped / 1e6)
	}
	return res
}
