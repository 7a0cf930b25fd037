package remotewritereceiver

import (
	"context"
	"strconv"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluicehq/sluice/receiver/remotewritereceiver/internal/metadata"
)

// telemetry is the receiver's own metrics; every series carries
// receiver="<id>".
type telemetry struct {
	acceptedItems, refusedRequests, dropped metric.Int64Counter
	id                                      attribute.KeyValue
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
		metric.WithDescription("Items of accepted requests that could not be carried (reason: exemplar_without_sample, float_histogram_fractional_counts)."), metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *telemetry) accepted(ctx context.Context, c counts) {
	for kind, n := range map[string]int{"samples": c.samples, "histograms": c.histograms, "exemplars": c.exemplars} {
		if n > 0 {
			t.acceptedItems.Add(ctx, int64(n), metric.WithAttributes(t.id, attribute.String("kind", kind)))
		}
	}
	if c.orphanExemplars > 0 {
		t.dropped.Add(ctx, int64(c.orphanExemplars), metric.WithAttributes(t.id, attribute.String("reason", "exemplar_without_sample")))
	}
	if c.fractionalHistograms > 0 {
		t.dropped.Add(ctx, int64(c.fractionalHistograms), metric.WithAttributes(t.id, attribute.String("reason", "float_histogram_fractional_counts")))
	}
}

func (t *telemetry) refused(ctx context.Context, status int) {
	t.refusedRequests.Add(ctx, 1, metric.WithAttributes(t.id, attribute.String("status", strconv.Itoa(status))))
}
