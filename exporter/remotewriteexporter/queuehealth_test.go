package remotewriteexporter

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicehq/sluice/internal/comptest"
)

// statusHost is a collector host that records the status events reported
// to it, as the service's status aggregator would receive them.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []componentstatus.Status
}

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev.Status())
}

func (h *statusHost) statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]componentstatus.Status(nil), h.events...)
}

// A shard whose queue cannot be read (here: its directory replaced by a
// file, so opening the segment fails with ENOTDIR) keeps its sender: the
// read is retried with backoff, logged, counted, and the component reports
// a recoverable error; once the directory is back the data is delivered and
// the status is OK again.
func TestSenderSurvivesQueueReadErrors(t *testing.T) {
	s, url := startSink(t)
	host := &statusHost{Host: componenttest.NewNopHost()}
	var logs *observer.ObservedLogs
	r := startExporterSet(t, url, "", func(cfg *Config) { cfg.Shards = 1 }, func(set *exporter.Settings) component.Host {
		core, l := observer.New(zap.InfoLevel)
		set.Logger, logs = zap.New(core), l
		return host
	})
	// The sender waits in Next on the empty queue; it has not opened a
	// segment for reading yet.
	time.Sleep(100 * time.Millisecond)
	dir := filepath.Join(r.exp.dir, "shards-1", "0")
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Append writes through the open head segment, so it still works.
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 1000, 1, "a", "b")); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "two failed reads", func() bool {
		return r.counter(t, "otelcol_remote_write_queue_errors") >= 2
	})
	comptest.WaitFor(t, 5*time.Second, "a recoverable error status", func() bool {
		st := host.statuses()
		return len(st) == 1 && st[0] == componentstatus.StatusRecoverableError
	})
	if n := logs.FilterMessageSnippet("cannot read its disk queue").Len(); n != 1 {
		t.Errorf("%d log lines about the failing queue, want 1 (rate-limited)", n)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "delivery after the repair", func() bool { return s.Stats().RemoteWrite.Samples == 2 })
	comptest.WaitFor(t, 5*time.Second, "status OK", func() bool {
		st := host.statuses()
		return len(st) == 2 && st[1] == componentstatus.StatusOK
	})
	if n := logs.FilterMessage("The shard reads its disk queue again").Len(); n != 1 {
		t.Errorf("%d recovery log lines, want 1", n)
	}
}
