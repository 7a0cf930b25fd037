// Command soak runs Sluice for a long time through repeated backend outages
// and one kill -9 (bench/scenario.RunSoak), prints what it found and appends
// it to bench/RESULTS.md. Not part of make test: it takes half an hour.
//
//	go run ./bench/cmd/soak                 (make bench-soak: W1, 6 × 5 min, 60 s outages, kill -9 in cycle 4)
//	go run ./bench/cmd/soak -cycles 2 -cycle 90s -outage 20s -kill-cycle 1 -results ""   (a quick look)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/bench/scenario"
	"github.com/sluicehq/sluice/bench/systems"
)

func main() {
	cycles := flag.Int("cycles", 6, "cycles after the warm-up")
	cycle := flag.Duration("cycle", 5*time.Minute, "length of a cycle; each begins with an outage")
	outage := flag.Duration("outage", time.Minute, "how long the backend answers 503 at the start of each cycle")
	killCycle := flag.Int("kill-cycle", 4, "kill -9 Sluice half-way through this cycle's outage (1-based; 0: never)")
	results := flag.String("results", "bench/RESULTS.md", "file to append the run to (empty: none)")
	points := flag.String("points", "", "CSV file for every per-second reading (empty: none)")
	flag.Parse()
	if *cycles < 2 || *outage >= *cycle || *killCycle > *cycles || *killCycle < 0 {
		fail("need -cycles >= 2, -outage < -cycle and 0 <= -kill-cycle <= -cycles")
	}

	w := scenario.Full()["W1"]
	w.Drain = 2 * time.Minute
	plan := scenario.Soak{Workload: w, Cycles: *cycles, CycleLength: *cycle, OutageFor: *outage, KillCycle: *killCycle - 1}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Printf("[%5.0fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	startLoadgen := scenario.BenchLoadgen
	var sluice systems.System
	for _, s := range systems.All() {
		if s.Name() == "sluice" {
			sluice = s
		}
	}
	res := scenario.RunSoak(ctx, plan, sluice, startLoadgen, logf)
	table := scenario.SoakTable(plan, res)
	fmt.Println()
	fmt.Println(table)
	if *results != "" {
		f, err := os.OpenFile(*results, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fail("%v", err)
		}
		header := fmt.Sprintf("%s — soak, %s", time.Now().UTC().Format("2006-01-02 15:04 UTC"), time.Since(start).Round(time.Second))
		command := strings.TrimSpace("go run ./bench/cmd/soak " + strings.Join(os.Args[1:], " "))
		if err := scenario.WriteResults(f, header, scenario.Machine(), "sluice: "+sluice.Version(), command, []string{table}); err != nil {
			fail("%v", err)
		}
		f.Close()
	}
	if *points != "" {
		if err := writePoints(*points, res.Points); err != nil {
			fail("%v", err)
		}
	}
	if res.Err != nil {
		os.Exit(1)
	}
}

// writePoints keeps the readings, so a run can be looked at again.
func writePoints(path string, pts []scenario.SoakPoint) error {
	var b strings.Builder
	b.WriteString("seconds,rss_bytes,goroutines,queue_pending_bytes,outage\n")
	for _, p := range pts {
		fmt.Fprintf(&b, "%.0f,%d,%d,%d,%t\n", p.At.Seconds(), p.RSS, p.Goroutines, p.QueueBytes, p.Outage)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "soak: "+format+"\n", args...)
	os.Exit(2)
}
