// Command sink runs bench/sink as a process: a recording remote-write and
// OTLP/HTTP server on loopback, with JSON stats at /stats and fault injection
// at /fault (see package sink).
//
//	sink -listen 127.0.0.1:9201
//	curl -s 127.0.0.1:9201/stats
//	curl -s -XPOST 127.0.0.1:9201/fault -d '{"mode":"status","status":503,"for":"60s"}'
//	sink -tenant-header X-Scope-OrgID   # stats per tenant; faults may name a "tenant"
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicehq/sluice/bench/sink"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9201", "loopback address to serve on")
	tenantHeader := flag.String("tenant-header", "", "record remote write per value of this header (e.g. X-Scope-OrgID), in /stats under tenants")
	flag.Parse()
	s := sink.New()
	if *tenantHeader != "" {
		s.RecordTenants(*tenantHeader)
	}
	addr, stop, err := s.Start(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(1)
	}
	fmt.Printf("sink listening on %s (remote write at http://%s/api/v1/write)\n", addr, addr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	stop()
}
