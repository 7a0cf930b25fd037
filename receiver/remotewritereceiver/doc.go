//go:generate mdatagen metadata.yaml

// Package remotewritereceiver is Sluice's `remote_write` receiver: it takes
// Prometheus remote write 1.0 and 2.0 pushes (from Prometheus, vmagent,
// Alloy, or Sluice edges) and hands them to the pipeline as Prometheus data
// (internal/promseries), so receiver → remote_write exporter passes names,
// labels, samples, native histograms, exemplars and metadata through
// unchanged. It acknowledges a push only once the pipeline took it.
package remotewritereceiver
