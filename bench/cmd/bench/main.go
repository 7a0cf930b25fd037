// Command bench runs the benchmark and fault scenarios (bench/scenario) on
// every system, one after another, prints a table per scenario with the
// ratios of Sluice to each reference, appends the run to bench/RESULTS.md and
// puts the tables in the README between its bench markers.
//
//	go run ./bench/cmd/bench -profile quick -scenarios W1,F1    (make bench)
//	go run ./bench/cmd/bench -profile full -scenarios W1,W2,F1,F2  (make bench-full)
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
	profile := flag.String("profile", "quick", "quick (make bench) or full (durations as specified)")
	names := flag.String("scenarios", "W1,F1", "comma-separated scenarios: W1, W2, F1, F2")
	only := flag.String("systems", "", "comma-separated system names to run (default: all)")
	results := flag.String("results", "bench/RESULTS.md", "file to append the run to (empty: none)")
	readme := flag.String("readme", "README.md", "file whose bench block gets the latest tables (empty: none)")
	scrapeOnly := flag.Bool("scrape-only", false, "compare the prometheus receivers alone (Sluice's and contrib's, into the debug exporter) on the scenarios' load")
	flag.Parse()

	workloads := scenario.Quick()
	if *profile == "full" {
		workloads = scenario.Full()
	} else if *profile != "quick" {
		fail("-profile must be quick or full, not %q", *profile)
	}
	var run []scenario.Workload
	for _, n := range strings.Split(*names, ",") {
		w, ok := workloads[strings.TrimSpace(n)]
		if !ok {
			fail("-scenarios: %q is not a scenario of the %s profile", n, *profile)
		}
		run = append(run, w)
	}
	all := systems.All()
	if *scrapeOnly {
		all = systems.ScrapeOnly()
	}
	var picked []systems.System
	for _, s := range all {
		if *only == "" || contains(strings.Split(*only, ","), s.Name()) {
			picked = append(picked, s)
		}
	}
	if len(picked) == 0 {
		fail("-systems %q matches none of the systems", *only)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Printf("[%5.0fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	startLoadgen := scenario.BenchLoadgen
	var tables []string
	for _, w := range run {
		if *scrapeOnly {
			var rs []scenario.ScrapeResult
			for _, sys := range picked {
				rs = append(rs, scenario.RunScrapeOnly(ctx, w, sys, startLoadgen, logf))
				if ctx.Err() != nil {
					fail("interrupted")
				}
			}
			t := scenario.ScrapeTable(w, rs)
			fmt.Println()
			fmt.Println(t)
			tables = append(tables, t)
			continue
		}
		var rs []scenario.Result
		for _, sys := range picked {
			r := scenario.Run(ctx, w, sys, startLoadgen, logf)
			if r.Err != nil {
				logf("%s %s: not run: %v", w.Name, sys.Name(), r.Err)
			}
			rs = append(rs, r)
			if ctx.Err() != nil {
				fail("interrupted")
			}
		}
		t := scenario.Table(w, rs)
		fmt.Println()
		fmt.Println(t)
		tables = append(tables, t)
	}

	header := fmt.Sprintf("%s — %s profile (%s), %s", time.Now().UTC().Format("2006-01-02 15:04 UTC"), *profile, *names, time.Since(start).Round(time.Second))
	var versions []string
	for _, s := range picked {
		versions = append(versions, s.Name()+": "+s.Version())
	}
	command := "go run ./bench/cmd/bench " + strings.Join(os.Args[1:], " ")
	if *results != "" {
		f, err := os.OpenFile(*results, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fail("%v", err)
		}
		if err := scenario.WriteResults(f, header, scenario.Machine(), strings.Join(versions, "; "), command, tables); err != nil {
			fail("%v", err)
		}
		f.Close()
	}
	if *readme != "" {
		if err := scenario.UpdateReadme(*readme, header, command, tables); err != nil {
			fail("%v", err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(2)
}
