// Package e2e holds whole-binary tests of Sluice: they run bin/sluice (built by
// `make build`; SLUICE_BIN overrides the path) as users do, against real
// servers on loopback, and a real Docker engine for the container test. The
// recording server is bench/sink, shared with the benchmarks.
package e2e
