package remotewritereceiver

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluicehq/sluice/internal/promseries"
	"github.com/sluicehq/sluice/internal/rwproto"
	"github.com/sluicehq/sluice/receiver/remotewritereceiver/internal/metadata"
)

// formatRemoteWrite is the format the collector's receiver telemetry
// records for a push (a span attribute).
const formatRemoteWrite = "prometheus_remote_write"

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
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &telemetry{tb: tb, obs: obs, id: attribute.String("receiver", set.ID.String())}, nil
}

func (t *telemetry) accepted(ctx context.Context, c counts) {
	accepted := t.tb.RemoteWriteReceiverAccepted
	t.add(ctx, accepted, "kind", "samples", c.samples)
	t.add(ctx, accepted, "kind", "histograms", c.histograms)
	t.add(ctx, accepted, "kind", "exemplars", c.exemplars)
	dropped := t.tb.RemoteWriteReceiverDropped
	t.add(ctx, dropped, "reason", "exemplar_without_sample", c.orphanExemplars)
	u := c.unfitHistograms
	t.add(ctx, dropped, "reason", promseries.NativeFractional, u.fractional)
	t.add(ctx, dropped, "reason", promseries.NativeCustomBuckets, u.customBuckets)
	t.add(ctx, dropped, "reason", promseries.NativeSchema, u.schema)
	t.add(ctx, dropped, "reason", promseries.NativeTooWide, u.tooWide)
}

func (t *telemetry) add(ctx context.Context, c metric.Int64Counter, key, value string, n int) {
	if n > 0 {
		c.Add(ctx, int64(n), metric.WithAttributes(t.id, attribute.String(key, value)))
	}
}

// answered counts a push by the status it was answered with and the
// protocol its Content-Type names; every answer goes through here.
func (t *telemetry) answered(req *http.Request, status int) {
	t.tb.RemoteWriteReceiverRequests.Add(req.Context(), 1, metric.WithAttributes(t.id,
		attribute.String("code", strconv.Itoa(status)), attribute.String("protocol", protocolOf(req))))
	if status >= 400 {
		t.tb.RemoteWriteReceiverRefusedRequests.Add(req.Context(), 1, metric.WithAttributes(t.id, attribute.String("status", strconv.Itoa(status))))
	}
}

// protocolOf is the remote write version a push's Content-Type names, as the
// protocol attribute says it.
func protocolOf(req *http.Request) string {
	msg, err := rwproto.Message(req.Header.Get("Content-Type"))
	switch {
	case err != nil:
		return "unknown"
	case msg == rwproto.MessageV2:
		return "2.0"
	default:
		return "1.0"
	}
}

func (t *telemetry) overLimit(ctx context.Context, key string) {
	t.tb.RemoteWriteReceiverOverLimitRequests.Add(ctx, 1, metric.WithAttributes(t.id, attribute.String("limit", key)))
}
