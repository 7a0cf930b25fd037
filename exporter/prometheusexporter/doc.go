//go:generate mdatagen metadata.yaml

// Package prometheusexporter is Sluice's `prometheus` exporter: it serves
// what the pipeline carries at /metrics for a Prometheus server to scrape.
//
// Series come from internal/promseries, the translation the remote_write
// exporter uses, so a Prometheus that scrapes this exporter stores the same
// series — names, labels, values and timestamps — as one that receives the
// same data by remote write. The store (store.go) keeps the newest sample of
// each series, drops a series at its stale marker or once it has not been
// seen for metric_expiration; the handler (handler.go) groups the series
// back into metric families and renders them with prometheus/common's
// expfmt in the format the scraper asks for: text, OpenMetrics, or
// delimited protobuf (the only one that carries native histograms).
package prometheusexporter
