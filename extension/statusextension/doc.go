//go:generate mdatagen metadata.yaml

// Package statusextension is Sluice's `status` extension: an HTML status
// page and a JSON API that show what a running Sluice is doing — every
// scrape target with its labels before and after relabelling, its health
// and last error; the discovered targets relabelling dropped, with the rule
// that dropped each; the pipelines as configured, drawn as a graph; and
// each remote_write endpoint's shards, queue, in-flight requests, last
// error and send rate.
//
// Components report through internal/statusapi: the prometheus receiver
// and the remote_write exporter register a source with this extension at
// Start; the pipelines come from the collector's config snapshot. The page
// is rendered on the server from embedded templates, with no script, no
// asset from outside and only relative links, so it works through
// `kubectl port-forward` or a path-prefixing proxy and writes nothing.
package statusextension
