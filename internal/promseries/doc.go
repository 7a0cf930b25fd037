// Package promseries is Sluice's one translation between pdata metrics and
// Prometheus series. Every component that needs Prometheus series — the
// remote_write exporter, the relabel processor, the receivers — goes through
// it, so the labels a relabel rule sees are exactly the labels the exporter
// sends, and receiver → exporter round-trips exactly.
//
// # How Prometheus data is carried in pdata
//
// Data that came from a Prometheus scrape or a remote-write push is marked by
// the metric metadata key "prometheus.type" (MetadataType), whose value is the
// family's Prometheus type: counter, gauge, histogram, gaugehistogram,
// summary, info, stateset or unknown. Marked metrics keep their exact names:
//
//   - a counter, gauge, info, stateset or unknown series is a Sum (counter:
//     monotonic, cumulative) or Gauge named exactly like the series
//     (`http_requests_total`, not `http_requests`);
//   - a classic histogram is a Histogram named like the family
//     (`rpc_seconds`); its series are `<name>_bucket{le=…}`, `<name>_sum` and
//     `<name>_count`;
//   - a summary is a Summary named like the family; its series are
//     `<name>{quantile=…}`, `<name>_sum` and `<name>_count`;
//   - a native histogram is an ExponentialHistogram named like the series.
//
// A series that cannot be carried exactly in one of these shapes (a bucket
// without its siblings, a non-integer bucket count, …) travels as a Gauge
// named exactly like the series, with the family's type in the metadata: the
// exporter sends it unchanged, so nothing is bent to fit.
//
// The job and instance labels live on the resource, as the OpenTelemetry
// specification says: job = service.namespace + "/" + service.name (or
// service.name alone), instance = service.instance.id. Every other label is a
// data-point attribute, with its name unchanged. A stale marker is a data
// point with the NoRecordedValue flag; a created timestamp is the start time.
//
// # OTLP-native data
//
// Metrics without the marker (from OTLP) are named by the Prometheus project's
// own rules (github.com/prometheus/otlptranslator): names and label names are
// made valid, and with Options.AddMetricSuffixes units and `_total` are
// appended. Exponential histograms become native histograms.
package promseries
