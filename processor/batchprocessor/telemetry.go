package batchprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluicehq/sluice/processor/batchprocessor/internal/metadata"
)

// What made a batch go out, as the sends counter's trigger attribute says.
const (
	triggerSize     = "size"     // send_batch_size reached
	triggerTimeout  = "timeout"  // timeout elapsed (or, with timeout 0, the previous export ended)
	triggerShutdown = "shutdown" // flushed by Shutdown
)

// telemetry is the processor's own metrics, through the collector's meter;
// every series carries processor="<id>".
type telemetry struct {
	sendSize metric.Int64Histogram
	sends    metric.Int64Counter
	failures metric.Int64Counter
	reg      metric.Registration
	// byTrigger holds the attribute sets of the sends counter, built once.
	byTrigger map[string]metric.MeasurementOption
	own       metric.MeasurementOption
}

// newTelemetry registers the instruments; pending reports the data points
// held and the number of shards, summed over shards.
func newTelemetry(id component.ID, set component.TelemetrySettings, pending func() (points, shards int)) (*telemetry, error) {
	m := set.MeterProvider.Meter(metadata.ScopeName)
	t := &telemetry{}
	own := attribute.String("processor", id.String())
	t.own = metric.WithAttributeSet(attribute.NewSet(own))
	t.byTrigger = map[string]metric.MeasurementOption{}
	for _, tr := range []string{triggerSize, triggerTimeout, triggerShutdown} {
		t.byTrigger[tr] = metric.WithAttributeSet(attribute.NewSet(own, attribute.String("trigger", tr)))
	}
	var err error
	if t.sendSize, err = m.Int64Histogram("otelcol_batch_send_size",
		metric.WithDescription("Data points per batch sent to the next component."), metric.WithUnit("{datapoint}"),
		metric.WithExplicitBucketBoundaries(10, 25, 50, 100, 250, 500, 1000, 2000, 4000, 8000, 10000, 20000, 50000, 100000)); err != nil {
		return nil, err
	}
	if t.sends, err = m.Int64Counter("otelcol_batch_sends",
		metric.WithDescription("Batches sent to the next component, by what made them go (trigger: size, timeout, shutdown)."), metric.WithUnit("{batch}")); err != nil {
		return nil, err
	}
	if t.failures, err = m.Int64Counter("otelcol_batch_export_errors",
		metric.WithDescription("Batches the next component returned an error for."), metric.WithUnit("{batch}")); err != nil {
		return nil, err
	}
	held, err := m.Int64ObservableGauge("otelcol_batch_pending", metric.WithUnit("{datapoint}"),
		metric.WithDescription("Data points accepted and not yet exported: waiting for their batch, queued or being exported."))
	if err != nil {
		return nil, err
	}
	shards, err := m.Int64ObservableGauge("otelcol_batch_metadata_cardinality", metric.WithUnit("{combination}"),
		metric.WithDescription("Distinct combinations of metadata_keys values seen (1 without metadata_keys)."))
	if err != nil {
		return nil, err
	}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		points, n := pending()
		o.ObserveInt64(held, int64(points), t.own)
		o.ObserveInt64(shards, int64(n), t.own)
		return nil
	}, held, shards)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// sent records one export of a batch of n data points.
func (t *telemetry) sent(n int, trigger string, err error) {
	ctx := context.Background()
	t.sendSize.Record(ctx, int64(n), t.own)
	t.sends.Add(ctx, 1, t.byTrigger[trigger])
	if err != nil {
		t.failures.Add(ctx, 1, t.own)
	}
}

func (t *telemetry) shutdown() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}
