package unixreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/receiver/unixreceiver/internal/metadata"
)

// Reasons a collection failed, the values of the reason attribute.
const (
	reasonSetup    = "collector_setup" // a collector could not be set up (a path is missing)
	reasonGather   = "gather"          // node_exporter's collectors returned inconsistent metrics
	reasonPipeline = "pipeline"        // the next component refused the metrics
)

// telemetry is the receiver's own metrics; every series carries
// receiver="<id>".
type telemetry struct {
	failed metric.Int64Counter
	id     attribute.KeyValue
}

func newTelemetry(id component.ID, set component.TelemetrySettings) (*telemetry, error) {
	m := set.MeterProvider.Meter(metadata.ScopeName)
	t := &telemetry{id: attribute.String("receiver", id.String())}
	var err error
	if t.failed, err = m.Int64Counter("otelcol_unix_receiver_failed_collections",
		metric.WithDescription("Collections that reported an error (reason: collector_setup, gather, pipeline); "+
			"what the working collectors read is still delivered."), metric.WithUnit("{collection}")); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *telemetry) failure(ctx context.Context, reason string) {
	t.failed.Add(ctx, 1, metric.WithAttributes(t.id, attribute.String("reason", reason)))
}

// defaultLogEvery is how often a failure that goes on is logged again: a
// host agent collecting every 15s with a missing mount would otherwise
// write a line per collection.
const defaultLogEvery = 5 * time.Minute

// limitedLog logs the first failure of a run at once, then at most one line
// per every, each with the number of failures it stands for, and one line
// when the failures end.
type limitedLog struct {
	logger   *zap.Logger
	msg      string
	every    time.Duration
	last     time.Time
	failing  bool
	unlogged int // failures since the last line
}

func (l *limitedLog) failure(err error, now time.Time) {
	if l.failing && now.Sub(l.last) < l.every {
		l.unlogged++
		return
	}
	l.logger.Warn(l.msg, zap.Error(err), zap.Int("failures_not_logged", l.unlogged), zap.Duration("logged_at_most_every", l.every))
	l.failing, l.last, l.unlogged = true, now, 0
}

func (l *limitedLog) success() {
	if !l.failing {
		return
	}
	l.logger.Info(l.msg+": working again", zap.Int("failures_not_logged", l.unlogged))
	l.failing, l.unlogged = false, 0
}
