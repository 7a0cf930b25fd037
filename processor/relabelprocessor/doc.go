//go:generate mdatagen metadata.yaml

// Package relabelprocessor is Sluice's `relabel` processor: Prometheus
// metric_relabel_configs applied to any metrics in a pipeline. A rule sees a
// data point as the series labels the remote_write exporter would send
// (internal/promseries renders both), and what it changes lands where it came
// from: a data-point attribute, a resource attribute, or the metric name.
package relabelprocessor
