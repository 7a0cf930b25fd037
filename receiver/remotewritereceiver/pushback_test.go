package remotewritereceiver

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/exporter/remotewriteexporter"
)

// With the backend down, the remote_write exporter's queue (full_policy:
// block) fills up; the receiver then answers 503 once pipeline_timeout
// passes, so the sender keeps its data and retries, instead of holding the
// push open until the sender's own timeout.
func TestFullQueueAnswers503WithinPipelineTimeout(t *testing.T) {
	sk := sink.New()
	addr, stop, err := sk.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if err := sk.SetFault(sink.Fault{Mode: "status", Status: http.StatusServiceUnavailable, For: sink.Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	exp := startExporterWith(t, "http://"+addr+"/api/v1/write", func(c *remotewriteexporter.Config) {
		c.Shards = 1
		c.Queue.MaxSize = 4 << 20 // the smallest a shard may have
		c.Queue.FullPolicy = "block"
	})
	cfg := createDefaultConfig()
	cfg.PipelineTimeout = 500 * time.Millisecond
	url := startReceiver(t, cfg, exp)

	r := rand.New(rand.NewPCG(7, 8))
	for i := range 1000 {
		// Label values that do not compress, so the queue fills in a
		// few dozen pushes.
		req := &prompb.WriteRequest{}
		for j := range 2000 {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "filler"}, {Name: "id", Value: fmt.Sprintf("%016x-%d", r.Uint64(), j)}},
				Samples: []prompb.Sample{{Value: r.Float64(), Timestamp: 1_700_000_000_000}},
			})
		}
		start := time.Now()
		status, _, body := push(t, url, http.MethodPost, ctV1, "snappy", snappyOf(t, req))
		took := time.Since(start)
		if status == http.StatusNoContent {
			continue
		}
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "pipeline_timeout (500ms)") {
			t.Fatalf("push %d: %d %q, want 503 naming pipeline_timeout", i, status, body)
		}
		// The bound is pipeline_timeout; allow the rest of the push
		// (decode, a slow shared machine) ten times that.
		if took > 5*time.Second {
			t.Fatalf("push %d answered 503 after %s; pipeline_timeout is 500ms", i, took)
		}
		t.Logf("queue full after %d pushes of 2,000 series; push %d answered 503 after %s", i, i, took.Round(time.Millisecond))
		return
	}
	t.Fatal("1000 pushes and the 4 MiB queue never filled")
}
