//go:generate mdatagen metadata.yaml

// Package prometheusreceiver is Sluice's `prometheus` receiver: paste the
// scrape_configs of a prometheus.yml under `config:` and it scrapes as
// Prometheus does — with Prometheus' own discovery, relabel, HTTP client and
// parsing code, and Sluice's own scrape loop (internal/scrapeloop; or
// Prometheus' scrape.Manager with scrape_loop: prometheus) — and hands each scrape to the pipeline as pdata carrying
// exactly the series Prometheus would store (see internal/promseries).
package prometheusreceiver
