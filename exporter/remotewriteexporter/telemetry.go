package remotewriteexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluicehq/sluice/exporter/remotewriteexporter/internal/metadata"
	"github.com/sluicehq/sluice/internal/diskqueue"
)

// Kinds of data counted by the sent/failed/retried/dropped counters.
const (
	kindSamples    = "samples"
	kindHistograms = "histograms"
	kindExemplars  = "exemplars"
)

// Reasons data is dropped, as the dropped counter's reason attribute says.
const (
	reasonTooOld      = "too_old"            // older than max_sample_age
	reasonDelta       = "delta_temporality"  // delta sums and histograms are refused
	reasonUndecodable = "undecodable_record" // a queued record this version cannot read
	reasonNotWritten  = "not_written_by_receiver"
	// HTTP 4xx answers count as "http_<code>".
)

// telemetry is the exporter's own metrics, through the collector's meter
// (so every series carries the exporter's id).
type telemetry struct {
	sent, failed, retried, dropped metric.Int64Counter
	fallbacks                      metric.Int64Counter
	queueErrors                    metric.Int64Counter
	duration                       metric.Float64Histogram
	reg                            metric.Registration
	id                             attribute.KeyValue // exporter="<id>", on every series
}

func newTelemetry(id component.ID, set component.TelemetrySettings, shards func() int, queues func() []*diskqueue.Queue) (*telemetry, error) {
	m := set.MeterProvider.Meter(metadata.ScopeName)
	t := &telemetry{id: attribute.String("exporter", id.String())}
	own := metric.WithAttributes(t.id)
	var err error
	if t.sent, err = m.Int64Counter("otelcol_remote_write_sent",
		metric.WithDescription("Samples, histograms and exemplars the backend accepted (kind)."), metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	if t.failed, err = m.Int64Counter("otelcol_remote_write_failed",
		metric.WithDescription("Samples, histograms and exemplars in requests that failed and will be retried (kind, reason: http_<code> or network_error)."), metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	if t.retried, err = m.Int64Counter("otelcol_remote_write_retried",
		metric.WithDescription("Samples, histograms and exemplars sent again after a failed attempt (kind)."), metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	if t.dropped, err = m.Int64Counter("otelcol_remote_write_dropped",
		metric.WithDescription("Samples, histograms and exemplars given up on (kind, reason: http_<code>, too_old, delta_temporality, a translation reason, ...)."), metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	if t.fallbacks, err = m.Int64Counter("otelcol_remote_write_fallbacks",
		metric.WithDescription("Times the backend refused remote write 2.0 and the exporter fell back to 1.0.")); err != nil {
		return nil, err
	}
	if t.queueErrors, err = m.Int64Counter("otelcol_remote_write_queue_errors",
		metric.WithDescription("Failed reads and acknowledgements of the disk queue by a sender (op: read, acknowledge); the sender retries with backoff.")); err != nil {
		return nil, err
	}
	if t.duration, err = m.Float64Histogram("otelcol_remote_write_request_duration",
		metric.WithDescription("Duration of remote-write HTTP requests (status: the HTTP code, or error)."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)); err != nil {
		return nil, err
	}
	qBytes, err := m.Int64ObservableGauge("otelcol_remote_write_queue_size", metric.WithUnit("By"),
		metric.WithDescription("Bytes of the disk queue, over all shards."))
	if err != nil {
		return nil, err
	}
	qPending, err := m.Int64ObservableGauge("otelcol_remote_write_queue_pending_size", metric.WithUnit("By"),
		metric.WithDescription("Bytes of the disk queue not yet acknowledged by the backend (the backlog), over all shards; queue_size also counts acknowledged parts of segments not yet deleted."))
	if err != nil {
		return nil, err
	}
	qRecords, err := m.Int64ObservableGauge("otelcol_remote_write_queue_records", metric.WithUnit("{request}"),
		metric.WithDescription("Requests in the disk queue not yet acknowledged by the backend."))
	if err != nil {
		return nil, err
	}
	qAge, err := m.Float64ObservableGauge("otelcol_remote_write_queue_oldest_age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest request in the disk queue; 0 when it is empty."))
	if err != nil {
		return nil, err
	}
	qLost, err := m.Int64ObservableCounter("otelcol_remote_write_queue_lost_records", metric.WithUnit("{request}"),
		metric.WithDescription("Queued requests lost: reason full (dropped by full_policy drop_oldest) or corrupt (damaged ranges skipped; each held at least one request)."))
	if err != nil {
		return nil, err
	}
	qLostBytes, err := m.Int64ObservableCounter("otelcol_remote_write_queue_lost_bytes", metric.WithUnit("By"),
		metric.WithDescription("Queued bytes lost: reason full (drop_oldest), corrupt (damaged ranges skipped) or torn (an unfinished last record cut at start)."))
	if err != nil {
		return nil, err
	}
	qIOErrors, err := m.Int64ObservableCounter("otelcol_remote_write_queue_io_errors",
		metric.WithDescription("Disk failures the queue survived: failed fsyncs and segment rotations, segment files removed behind its back."))
	if err != nil {
		return nil, err
	}
	nShards, err := m.Int64ObservableGauge("otelcol_remote_write_shards", metric.WithDescription("Shards (parallel senders)."))
	if err != nil {
		return nil, err
	}
	full := metric.WithAttributes(t.id, attribute.String("reason", "full"))
	corrupt := metric.WithAttributes(t.id, attribute.String("reason", "corrupt"))
	torn := metric.WithAttributes(t.id, attribute.String("reason", "torn"))
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var st diskqueue.Stats
		var oldest time.Time
		for _, q := range queues() {
			s := q.Stats()
			st.Bytes += s.Bytes
			st.PendingBytes += s.PendingBytes
			st.Records += s.Records
			st.DroppedRecs += s.DroppedRecs
			st.CorruptRecs += s.CorruptRecs
			st.DroppedBytes += s.DroppedBytes
			st.CorruptBytes += s.CorruptBytes
			st.RepairedBytes += s.RepairedBytes
			st.IOErrors += s.IOErrors
			if !s.Oldest.IsZero() && (oldest.IsZero() || s.Oldest.Before(oldest)) {
				oldest = s.Oldest
			}
		}
		o.ObserveInt64(qBytes, st.Bytes, own)
		o.ObserveInt64(qPending, st.PendingBytes, own)
		o.ObserveInt64(qRecords, st.Records, own)
		age := 0.0
		if !oldest.IsZero() {
			age = time.Since(oldest).Seconds()
		}
		o.ObserveFloat64(qAge, age, own)
		o.ObserveInt64(qLost, st.DroppedRecs, full)
		o.ObserveInt64(qLost, st.CorruptRecs, corrupt)
		o.ObserveInt64(qLostBytes, st.DroppedBytes, full)
		o.ObserveInt64(qLostBytes, st.CorruptBytes, corrupt)
		o.ObserveInt64(qLostBytes, st.RepairedBytes, torn)
		o.ObserveInt64(qIOErrors, st.IOErrors, own)
		o.ObserveInt64(nShards, int64(shards()), own)
		return nil
	}, qBytes, qPending, qRecords, qAge, qLost, qLostBytes, qIOErrors, nShards)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// count adds the header's samples, histograms and exemplars to c.
func (t *telemetry) count(ctx context.Context, c metric.Int64Counter, h recordHeader, extra ...attribute.KeyValue) {
	for _, k := range []struct {
		kind string
		n    int64
	}{{kindSamples, h.samples}, {kindHistograms, h.histograms}, {kindExemplars, h.exemplars}} {
		if k.n > 0 {
			c.Add(ctx, k.n, metric.WithAttributes(append([]attribute.KeyValue{t.id, attribute.String("kind", k.kind)}, extra...)...))
		}
	}
}

func (t *telemetry) drop(ctx context.Context, h recordHeader, reason string) {
	t.count(ctx, t.dropped, h, attribute.String("reason", reason))
}

// with adds the exporter id to a measurement's attributes.
func (t *telemetry) with(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(append([]attribute.KeyValue{t.id}, kv...)...)
}

func (t *telemetry) shutdown() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}
