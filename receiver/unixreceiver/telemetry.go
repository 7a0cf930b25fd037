package unixreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
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

// formatHost is the format the collector's receiver telemetry records for
// a collection (a span attribute).
const formatHost = "node_exporter"

// telemetry is the receiver's own metrics (metadata.yaml, documentation.md)
// and the collector's standard receiver metrics (obs); every series of its
// own carries receiver="<id>".
type telemetry struct {
	tb  *metadata.TelemetryBuilder
	obs *receiverhelper.ObsReport
	id  attribute.KeyValue
}

func newTelemetry(set receiver.Settings) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	// No transport and a long-lived context, as the collector's own
	// scraping receivers (hostmetrics) report: a collection reads files,
	// and its context is the receiver's run, not one request.
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, LongLivedCtx: true, ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &telemetry{tb: tb, obs: obs, id: attribute.String("receiver", set.ID.String())}, nil
}

func (t *telemetry) failure(ctx context.Context, reason string) {
	t.tb.UnixReceiverFailedCollections.Add(ctx, 1, metric.WithAttributes(t.id, attribute.String("reason", reason)))
}

// consume hands a collection to the pipeline, counted in the collector's
// otelcol_receiver_accepted/refused_metric_points.
func (t *telemetry) consume(ctx context.Context, next consumer.Metrics, md pmetric.Metrics) error {
	n := md.DataPointCount()
	ctx = t.obs.StartMetricsOp(ctx)
	err := next.ConsumeMetrics(ctx, md)
	t.obs.EndMetricsOp(ctx, formatHost, n, err)
	return err
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
