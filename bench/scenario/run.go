package scenario

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/bench/systems"
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

// Prefix is the metric-name prefix of every series the load generator serves;
// loss is counted on those series only (not on up, scrape_* and the like,
// which the systems make themselves).
const Prefix = "lg_"

// Result is one system's figures for one workload.
type Result struct {
	System         string
	Err            error   // the system could not be run; the figures are empty
	SamplesPerSec  float64 // samples received by the backend per second of the window
	CPUPerMillion  float64 // CPU seconds of the system per million samples delivered
	PeakRSS        int64   // bytes
	DiskPerMillion float64 // bytes written to storage per million samples delivered
	Served         int64   // loadgen sample lines served over the whole run
	Received       int64   // distinct of those at the backend after the drain
	Duplicates     int
	OutOfOrder     int
	// DrainSeconds: after the outage, seconds until the backend had caught up
	// (deficit within two scrape rounds); -1 without an outage; NaN-free:
	// Drained is false when it had not caught up by the end of the window.
	DrainSeconds float64
	Drained      bool
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
}

func (m *meter) sample(pid int) {
	u, err := readUsage(pid)
	if err != nil {
		return // the process just exited; keep the last reading
	}
	m.last = u
	m.peakRSS = max(m.peakRSS, u.rssBytes, u.hwmBytes)
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

// Run puts one system through one workload and measures it. logf reports progress.
func Run(ctx context.Context, w Workload, sys systems.System, startLoadgen StartLoadgen, logf func(string, ...any)) (res Result) {
	res = Result{System: sys.Name(), DrainSeconds: -1}
	if err := sys.Available(); err != nil {
		res.Err = err
		return res
	}
	sk := sink.New()
	sinkAddr, stopSink, err := sk.Start("127.0.0.1:0")
	if err != nil {
		res.Err = err
		return res
	}
	defer stopSink()
	lg, err := startLoadgen(w)
	if err != nil {
		res.Err = fmt.Errorf("loadgen: %w", err)
		return res
	}
	lgStopped := false
	defer func() {
		if !lgStopped {
			lg.Stop()
		}
	}()
	dir, err := os.MkdirTemp("", "sluice-bench-"+sys.Name()+"-")
	if err != nil {
		res.Err = err
		return res
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		res.Err = err
		return res
	}
	spec := systems.Spec{Targets: lg.Addrs(), Interval: w.Interval, RemoteWriteURL: "http://" + sinkAddr + "/api/v1/write", Dir: dir, Port: port}
	proc, err := sys.Start(spec)
	if err != nil {
		res.Err = err
		return res
	}
	defer func() { _ = proc.Stop(30 * time.Second) }()

	m := &meter{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// wait samples the process every second until the deadline, or until
	// each (called every second) says it is done.
	wait := func(until time.Time, each func(now time.Time) (done bool)) error {
		for {
			m.sample(proc.Pid())
			if each != nil && each(time.Now()) {
				return nil
			}
			if !time.Now().Before(until) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}

	logf("%s %s: warm-up %s", w.Name, sys.Name(), w.Warmup)
	if err := wait(time.Now().Add(w.Warmup), nil); err != nil {
		res.Err = err
		return res
	}
	cpu0, io0 := m.totals()
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
	err = wait(start.Add(w.Measure), func(now time.Time) bool {
		if w.KillInOutage && res.Restarts == 0 && now.After(start.Add(w.Outage/2)) {
			logf("%s %s: kill -9 pid %d, restart", w.Name, sys.Name(), proc.Pid())
			m.sample(proc.Pid())
			_ = proc.Kill()
			m.retire()
			res.Restarts++
			next, err := sys.Start(spec)
			if err != nil {
				res.Err = fmt.Errorf("restart after kill -9: %w", err)
				return true
			}
			proc = next
		}
		if w.Outage > 0 && !res.Drained && now.After(outageEnd) {
			if deficit := lg.SamplesServed() - int64(sk.Distinct(Prefix)); deficit <= 2*round {
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
	cpu1, io1 := m.totals()
	delivered := float64(sk.Stats().RemoteWrite.Samples - samples0)

	// Stop serving, then let delivery settle: until nothing new arrived for
	// three intervals, or the drain time is up.
	lg.Stop()
	lgStopped = true
	res.Served = lg.SamplesServed()
	logf("%s %s: window done, waiting up to %s for delivery to settle", w.Name, sys.Name(), w.Drain)
	last, stableSince := -1, time.Now()
	_ = wait(time.Now().Add(w.Drain), func(now time.Time) bool {
		if d := sk.Distinct(Prefix); d != last {
			last, stableSince = d, now
		}
		return now.Sub(stableSince) >= 3*w.Interval
	})
	st := sk.Stats().RemoteWrite
	res.Received = int64(sk.Distinct(Prefix))
	res.Duplicates, res.OutOfOrder = st.Duplicates, st.OutOfOrder
	res.PeakRSS = m.peakRSS
	if delivered > 0 {
		res.SamplesPerSec = delivered / window.Seconds()
		res.CPUPerMillion = (cpu1 - cpu0) / (delivered / 1e6)
		res.DiskPerMillion = float64(io1-io0) / (delivered / 1e6)
	}
	return res
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
