package relabelprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluicehq/sluice/processor/relabelprocessor/internal/metadata"
)

// telemetry is the processor's own metrics; every series carries
// processor="<id>".
type telemetry struct {
	dropped, misses metric.Int64Counter
	own             metric.MeasurementOption
}

func newTelemetry(id component.ID, set component.TelemetrySettings) (*telemetry, error) {
	m := set.MeterProvider.Meter(metadata.ScopeName)
	t := &telemetry{own: metric.WithAttributes(attribute.String("processor", id.String()))}
	var err error
	if t.dropped, err = m.Int64Counter("otelcol_relabel_dropped_data_points",
		metric.WithDescription("Data points the rules dropped."), metric.WithUnit("{datapoint}")); err != nil {
		return nil, err
	}
	if t.misses, err = m.Int64Counter("otelcol_relabel_cache_misses",
		metric.WithDescription("Data points whose labels were not in the cache, so the rules ran."), metric.WithUnit("{datapoint}")); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *telemetry) record(ctx context.Context, dropped, misses int) {
	if dropped > 0 {
		t.dropped.Add(ctx, int64(dropped), t.own)
	}
	if misses > 0 {
		t.misses.Add(ctx, int64(misses), t.own)
	}
}
