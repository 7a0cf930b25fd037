// Command loadgen serves bench/loadgen's targets as a process:
//
//	loadgen -listen 127.0.0.1:20000 -targets 10 -series 20000 -seed 1
//
// serves /metrics on ports 20000 to 20009 and its counts at -stats-listen.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicehq/sluice/bench/loadgen"
)

func main() {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:20000", "loopback address of the first target; the others follow on the next ports (port 0: any free ports)")
	stats := fs.String("stats-listen", "127.0.0.1:19999", "loopback address for GET /stats (empty: none)")
	cfg := loadgen.Config{}
	fs.IntVar(&cfg.Targets, "targets", 10, "number of targets")
	fs.IntVar(&cfg.SeriesPerTarget, "series", 20000, "stored series per target")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed: the same seed serves the same values")
	fs.Float64Var(&cfg.ChurnRate, "churn", 0, "fraction of counters and gauges replaced per scrape, 0..1")
	fs.BoolVar(&cfg.NativeHistograms, "native-histograms", false, "histograms carry native buckets too (protobuf format)")
	fs.StringVar(&cfg.Prefix, "prefix", "lg_", "metric name prefix")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: bad flags:", err)
		os.Exit(2)
	}
	s, err := loadgen.Start(cfg, *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	defer s.Stop()
	if *stats != "" {
		addr, err := s.ServeStats(*stats)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: -stats-listen:", err)
			os.Exit(1)
		}
		fmt.Printf("stats at http://%s/stats\n", addr)
	}
	for _, a := range s.Addrs() {
		fmt.Printf("target http://%s/metrics\n", a)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
