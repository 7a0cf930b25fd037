package remotewritereceiver

import (
	"context"
	"strconv"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluicehq/sluice/internal/promseries"
	"github.com/sluicehq/sluice/receiver/remotewritereceiver/internal/metadata"
)

// telemetry is the receiver's own metrics; every series carries
// receiver="<id>".
type telemetry struct {
	acceptedItems, refusedRequests, dropped, overLimitRequests metric.Int64Counter
	id                                                         attribute.KeyValue
}

func newTelemetry(id component.ID, set component.TelemetrySettings) (*telemetry, error) {
	m := set.MeterProvider.Meter(metadata.ScopeName)
	t := &telemetry{id: attribute.String("receiver", id.String())}
	var err error
	if t.acceptedItems, err = m.Int64Counter("otelcol_remote_write_receiver_accepted",
		metric.WithDescription("Samples, histograms and exemplars accepted into the pipeline (kind)."), metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	if t.refusedRequests, err = m.Int64Counter("otelcol_remote_write_receiver_refused_requests",
		metric.WithDescription("Requests answered with an error (status: the HTTP code)."), metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if t.dropped, err = m.Int64Counter("otelcol_remote_write_receiver_dropped",
		metric.WithDescription("Items of accepted requests that could not be carried (reason: exemplar_without_sample, float_histogram_fractional_counts, native_histogram_custom_buckets, native_histogram_schema_out_of_range, native_histogram_too_wide)."), metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	if t.overLimitRequests, err = m.Int64Counter("otelcol_remote_write_receiver_over_limit_requests",
		metric.WithDescription("Requests refused for a limit (limit: the configuration key, e.g. label_value_length_limit, max_request_memory, max_concurrent_requests, read_timeout)."), metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *telemetry) accepted(ctx context.Context, c counts) {
	t.add(ctx, t.acceptedItems, "kind", "samples", c.samples)
	t.add(ctx, t.acceptedItems, "kind", "histograms", c.histograms)
	t.add(ctx, t.acceptedItems, "kind", "exemplars", c.exemplars)
	t.add(ctx, t.dropped, "reason", "exemplar_without_sample", c.orphanExemplars)
	u := c.unfitHistograms
	t.add(ctx, t.dropped, "reason", promseries.NativeFractional, u.fractional)
	t.add(ctx, t.dropped, "reason", promseries.NativeCustomBuckets, u.customBuckets)
	t.add(ctx, t.dropped, "reason", promseries.NativeSchema, u.schema)
	t.add(ctx, t.dropped, "reason", promseries.NativeTooWide, u.tooWide)
}

func (t *telemetry) add(ctx context.Context, c metric.Int64Counter, key, value string, n int) {
	if n > 0 {
		c.Add(ctx, int64(n), metric.WithAttributes(t.id, attribute.String(key, value)))
	}
}

func (t *telemetry) refused(ctx context.Context, status int) {
	t.refusedRequests.Add(ctx, 1, metric.WithAttributes(t.id, attribute.String("status", strconv.Itoa(status))))
}

func (t *telemetry) overLimit(ctx context.Context, key string) {
	t.overLimitRequests.Add(ctx, 1, metric.WithAttributes(t.id, attribute.String("limit", key)))
}
