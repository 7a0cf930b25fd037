//go:generate mdatagen metadata.yaml

// Package batchprocessor is Sluice's `batch` processor: it groups the data
// points of many small requests into batches of send_batch_size (or whatever
// arrived within timeout) for the exporter, as the collector's own batch
// processor does, and adds what a Prometheus pipeline needs on top:
//
//   - push back: at most max_pending_data_points are held per shard; beyond
//     that ConsumeMetrics blocks its caller instead of growing memory;
//   - order: each shard exports one batch at a time, in the order its data
//     was accepted, so per-series order survives to remote_write;
//   - wait_for_result: a caller can wait for the export of its own data and
//     get the exporter's error back.
//
// shard.go holds one batch stream (one per metadata_keys combination),
// split.go cuts pmetric.Metrics at a data point count, processor.go routes
// requests to shards.
package batchprocessor
