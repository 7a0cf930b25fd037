// Package scenario runs the benchmark and fault scenarios of bench/: one
// workload, served by bench/loadgen, scraped by each system in turn (Sluice
// and the references of bench/systems), delivered to bench/sink, with the
// system's process measured from /proc. Each scenario prints one table, with
// the ratios of Sluice to each reference computed pair by pair in the run.
package scenario

import (
	"fmt"
	"time"
)

// Workload is one scenario: what is served, for how long, and what fails.
type Workload struct {
	Name            string
	Targets         int
	SeriesPerTarget int
	Interval        time.Duration
	Warmup          time.Duration // before anything is measured
	Measure         time.Duration // the measured window, after the warm-up
	Outage          time.Duration // backend answers 503 from the start of the window for this long
	KillInOutage    bool          // kill -9 the system half-way through the outage, restart it at once
	// Drain is how long after the window the harness waits for delivery to
	// settle (the loadgen stops serving at the end of the window).
	Drain time.Duration
}

// Series is the number of active series the workload serves.
func (w Workload) Series() int { return w.Targets * w.SeriesPerTarget }

func (w Workload) String() string {
	s := fmt.Sprintf("%s: %d targets × %d series = %d active series, scrape every %s, warm-up %s, measured %s",
		w.Name, w.Targets, w.SeriesPerTarget, w.Series(), w.Interval, w.Warmup, w.Measure)
	if w.Outage > 0 {
		s += fmt.Sprintf(", backend 503 for %s from the start of the window", w.Outage)
	}
	if w.KillInOutage {
		s += ", kill -9 and restart half-way through the outage"
	}
	return s
}

// Full returns the scenarios as specified: W1 (200k series at 10 s, 1 min
// warm-up, 3 min measured), W2 (1M at 15 s), F1 (W1 with a 60 s outage), F2
// (F1 plus kill -9 during the outage).
func Full() map[string]Workload {
	w1 := Workload{Name: "W1", Targets: 10, SeriesPerTarget: 20000, Interval: 10 * time.Second,
		Warmup: time.Minute, Measure: 3 * time.Minute, Drain: 2 * time.Minute}
	w2 := w1
	w2.Name, w2.Targets, w2.SeriesPerTarget, w2.Interval = "W2", 50, 20000, 15*time.Second
	f1 := w1
	f1.Name, f1.Outage = "F1", time.Minute
	f2 := f1
	f2.Name, f2.KillInOutage = "F2", true
	return map[string]Workload{"W1": w1, "W2": w2, "F1": f1, "F2": f2}
}

// Quick returns W1 and F1 shortened for `make bench`: the same series,
// interval and 60 s outage, a 20 s warm-up and a shorter window. The drain
// wait ends as soon as nothing new arrived for three intervals, but allows
// 70 s because the contrib WAL flushes only once a minute. The figures are
// noisier than Full's; the table header says which durations made them.
func Quick() map[string]Workload {
	full := Full()
	w1, f1 := full["W1"], full["F1"]
	w1.Warmup, w1.Measure, w1.Drain = 20*time.Second, 60*time.Second, 70*time.Second
	f1.Warmup, f1.Measure, f1.Drain = 20*time.Second, 90*time.Second, 70*time.Second
	f2 := f1
	f2.Name, f2.KillInOutage = "F2", true
	return map[string]Workload{"W1": w1, "F1": f1, "F2": f2}
}
