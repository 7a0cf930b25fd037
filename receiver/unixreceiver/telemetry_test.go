package unixreceiver

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sluicehq/sluice/internal/comptest"
)

// Each collection handed to the pipeline is counted in the collector's
// standard receiver metrics with receiver="unix" and an empty transport, as
// the collector's hostmetrics receiver reports: accepted exactly as many
// points as the pipeline took; while the pipeline refuses, refused, and the
// collection counted as failed for reason pipeline.
func TestTelemetryCountsCollections(t *testing.T) {
	if isolated(t) {
		return
	}
	cfg := createDefaultConfig()
	cfg.ProcfsPath, cfg.SysfsPath, cfg.Instance = "testdata/proc", "testdata/sys", "testhost"
	cfg.SetCollectors = []string{"loadavg", "meminfo"}
	cfg.CollectionInterval = 20 * time.Millisecond
	s, err := startReceiver(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	std := []attribute.KeyValue{attribute.String("receiver", "unix"), attribute.String("transport", "")}
	comptest.WaitFor(t, 5*time.Second, "3 collections", func() bool { return len(s.sink.AllMetrics()) >= 3 })
	s.refuse.Store(true)
	pipeline := attribute.String("reason", reasonPipeline)
	comptest.WaitFor(t, 5*time.Second, "2 refused collections", func() bool {
		return comptest.Counter(s.tel, "otelcol_unix_receiver_failed_collections", pipeline) >= 2
	})
	// Stopped, so that the counts no longer move.
	if err := s.rcv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	accepted := int64(s.sink.DataPointCount())
	if got := comptest.Counter(s.tel, "otelcol_receiver_accepted_metric_points", std...); got != accepted {
		t.Errorf("otelcol_receiver_accepted_metric_points = %d, want the %d points the pipeline took", got, accepted)
	}
	// Every collection of the fixture tree holds the same number of points.
	perCollection := accepted / int64(len(s.sink.AllMetrics()))
	failed := comptest.Counter(s.tel, "otelcol_unix_receiver_failed_collections", pipeline)
	if got, want := comptest.Counter(s.tel, "otelcol_receiver_refused_metric_points", std...), failed*perCollection; got != want {
		t.Errorf("otelcol_receiver_refused_metric_points = %d, want %d (%d refused collections of %d points)", got, want, failed, perCollection)
	}
}
