//go:generate mdatagen metadata.yaml

// Package unixreceiver is Sluice's `unix` receiver: the host's metrics with
// node_exporter's names, labels, types and help text, so the host dashboards
// and alerts people already use work unchanged. It runs node_exporter's own
// collector package in-process and hands each collection to the pipeline as
// Prometheus data (internal/promseries), so the remote_write exporter sends
// exactly what node_exporter would have exposed.
package unixreceiver
