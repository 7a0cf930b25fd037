package remotewriteexporter

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/internal/diskqueue"
)

// The reported loss: a backlog queued while the backend was down, one 4 KiB
// page zeroed in the middle of the shard's head segment, a restart. Only
// the requests overlapping the page may be lost (they were cut with
// everything after them as a torn tail); the rest is delivered, in order,
// and the loss is counted and logged.
func TestZeroedPageInTheHeadLosesOnlyItsRequests(t *testing.T) {
	dir := t.TempDir()
	one := func(cfg *Config) { cfg.Shards = 1; cfg.MaxSamplesPerSend = 50 }
	r := startExporter(t, "http://127.0.0.1:1/api/v1/write", dir, one) // nothing listens
	const batches, perBatch = 400, 50
	names := make([]string, perBatch)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i)
	}
	for b := range batches {
		if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", int64(1000+b), float64(b), names...)); err != nil {
			t.Fatal(err)
		}
	}
	r.stop(t)

	var segs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".seg") {
			segs = append(segs, p)
		}
		return nil
	})
	if len(segs) != 1 {
		t.Fatalf("segments %v, want the one head segment of the one shard", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	page := int64(len(b)/2) &^ 4095
	// Which requests overlap the page, and how many requests there are.
	overlapping, total := 0, 0
	for pos := int64(0); pos < int64(len(b)); total++ {
		_, _, size, err := diskqueue.DecodeRecord(b[pos:])
		if err != nil {
			t.Fatalf("fresh queue does not decode at %d: %v", pos, err)
		}
		if pos < page+4096 && pos+int64(size) > page {
			overlapping++
		}
		pos += int64(size)
	}
	clear(b[page : page+4096])
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}

	s, url := startSink(t)
	var logs *observer.ObservedLogs
	r2 := startExporterSet(t, url, dir, one, observed(&logs))
	wantAtLeast := (batches - overlapping) * perBatch
	comptest.WaitFor(t, 20*time.Second, "the queue drained", func() bool {
		for _, q := range r2.exp.allQueues() {
			if q.Stats().Records > 0 {
				return false
			}
		}
		return s.Stats().RemoteWrite.Samples >= wantAtLeast
	})
	st := s.Stats().RemoteWrite
	if st.Samples < wantAtLeast || st.OutOfOrder != 0 || st.Duplicates != 0 {
		t.Fatalf("sink: %d samples (want at least %d of %d: only the %d of %d requests overlapping the page may be lost), %d out of order, %d duplicates",
			st.Samples, wantAtLeast, batches*perBatch, overlapping, total, st.OutOfOrder, st.Duplicates)
	}
	if n := r2.counter(t, "otelcol_remote_write_queue_lost_records", reason("corrupt")); n < 1 {
		t.Errorf("lost_records{corrupt} = %d, want the damage counted", n)
	}
	if n := r2.counter(t, "otelcol_remote_write_queue_lost_bytes", reason("corrupt")); n < 1 {
		t.Errorf("lost_bytes{corrupt} = %d, want the damaged bytes counted", n)
	}
	repaired := logs.FilterMessage("Queue repaired at start").All()
	if len(repaired) != 1 || repaired[0].ContextMap()["corrupt_bytes"].(int64) == 0 || repaired[0].ContextMap()["torn_bytes_cut"].(int64) != 0 {
		t.Fatalf("repair log %v, want one line with corrupt bytes and no torn tail", repaired)
	}
	t.Logf("%d of %d samples delivered; %d of %d requests overlapped the zeroed page; log: %v",
		st.Samples, batches*perBatch, overlapping, total, repaired[0].ContextMap())
}
