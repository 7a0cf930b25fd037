package remotewriteexporter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/internal/statusapi"
)

// TestEndpointsShowFailureQueueAndRate: while the backend answers 503 the
// endpoint is failing, with that error and the data in its queue; once the
// backend recovers the queue drains and the accepted samples show in the
// send rate.
func TestEndpointsShowFailureQueueAndRate(t *testing.T) {
	s, url := startSink(t)
	if err := s.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r := startExporter(t, url, "", func(c *Config) { c.Shards = 2 })
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("app", time.Now().UnixMilli(), 1, "a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	var ep statusapi.Endpoint
	waitUntil(t, "the endpoint failing", func() bool {
		eps := r.exp.Endpoints()
		ep = eps[0]
		return len(eps) == 1 && ep.Failing
	})
	if !strings.Contains(ep.LastError, "HTTP 503") || ep.LastErrorTime.IsZero() || ep.QueueRecords == 0 || ep.QueueBytes == 0 || ep.DiskBytes < ep.QueueBytes ||
		ep.OldestAge <= 0 || ep.Shards != 2 || ep.QueueMax != 64<<20 || ep.URL != url || ep.Sent != 0 {
		t.Fatalf("failing endpoint: %+v", ep)
	}

	s.ClearFault()
	waitUntil(t, "the queue drained", func() bool {
		ep = r.exp.Endpoints()[0]
		return !ep.Failing && ep.QueueRecords == 0 && ep.InFlight == 0
	})
	if ep.Sent != 3 || ep.OldestAge != 0 || ep.QueueBytes != 0 || !strings.Contains(ep.LastError, "HTTP 503") {
		t.Fatalf("recovered endpoint: %+v", ep)
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1_000_000, 0) // a bucket boundary
	for i := 0; i < 60; i++ {
		w.add(t0.Add(time.Duration(i)*time.Second), 10) // 10/s for a minute
	}
	if got := w.perSecond(t0.Add(60 * time.Second)); got != 10 {
		t.Fatalf("rate after a minute at 10/s: %v", got)
	}
	// What is being filled does not count yet; what is over a minute old
	// no longer does.
	w.add(t0.Add(61*time.Second), 1000)
	if got := w.perSecond(t0.Add(65 * time.Second)); got != 10 {
		t.Fatalf("rate with the current bucket filling: %v", got)
	}
	if got := w.perSecond(t0.Add(10 * time.Minute)); got != 0 {
		t.Fatalf("rate long after: %v", got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
