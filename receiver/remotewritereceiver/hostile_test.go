package remotewritereceiver

import (
	"bytes"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"google.golang.org/protobuf/encoding/protowire"
)

// hostile are pushes of a few MiB at most on the wire that, unbounded, take
// gigabytes once decoded (issue 15): each with the answer it must get.
func hostile(t *testing.T) map[string]struct {
	ct     string
	body   []byte
	status int
} {
	t.Helper()
	// 1,000 native histograms of one series, each schema 0 with spans
	// [{0,1},{65533,1}] on both sides: 2 x 65,535 dense buckets each,
	// about 1 GiB of pdata.
	wide := &histogram.Histogram{Schema: 0, Count: 4, Sum: 1,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}, {Offset: 65533, Length: 1}}, PositiveBuckets: []int64{1, 0},
		NegativeSpans: []histogram.Span{{Offset: 0, Length: 1}, {Offset: 65533, Length: 1}}, NegativeBuckets: []int64{1, 0}}
	if err := wide.Validate(); err != nil {
		t.Fatal(err)
	}
	wideReq := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: prompb.FromLabels(labels.FromStrings("__name__", "wide"), nil)}}}
	for i := range 1000 {
		wideReq.Timeseries[0].Histograms = append(wideReq.Timeseries[0].Histograms, prompb.FromIntHistogram(int64(i), wide))
	}
	// Zeros, decompressing to exactly max_decompressed_body_size: the
	// whole payload is taken, then fails to decode (field number 0).
	zeros := snappy.Encode(nil, make([]byte, DefaultMaxDecompressedBodySize))
	// One series of 128 labels and 2 million samples: 14 bytes a sample on
	// the wire, 7 KiB of pdata (each data point carries every label).
	labelled := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: prompb.FromLabels(manyLabels(DefaultLabelLimit), nil)}}}
	for i := range 2_000_000 {
		labelled.Timeseries[0].Samples = append(labelled.Timeseries[0].Samples, prompb.Sample{Value: 1, Timestamp: int64(i)})
	}
	// A 2.0 series of 10 million empty samples: 2 bytes each on the wire,
	// a 24-byte struct each in prompb's decoding (before the slice grows).
	series := protowire.AppendTag(nil, 1, protowire.BytesType)
	series = protowire.AppendBytes(series, []byte{0, 1})
	for range 10_000_000 {
		series = append(series, 0x12, 0x00)
	}
	empty := protowire.AppendString(protowire.AppendTag(nil, 4, protowire.BytesType), "")
	empty = protowire.AppendString(protowire.AppendTag(empty, 4, protowire.BytesType), "__name__")
	empty = protowire.AppendBytes(protowire.AppendTag(empty, 5, protowire.BytesType), series)
	return map[string]struct {
		ct     string
		body   []byte
		status int
	}{
		"1,000 histograms of 131,070 dense buckets": {ctV1, snappyOf(t, wideReq), http.StatusRequestEntityTooLarge},
		"32 MiB of snappy-compressed zeros":         {ctV2, zeros, http.StatusBadRequest},
		"2 million samples of 128 labels":           {ctV1, snappyOf(t, labelled), http.StatusRequestEntityTooLarge},
		"10 million empty 2.0 samples":              {ctV2, snappy.Encode(nil, empty), http.StatusRequestEntityTooLarge},
	}
}

// A gateway with a 1 GiB memory limit runs the Go runtime with a soft limit
// below it (GOMEMLIMIT, or the memory_limiter's 80%): the garbage collector
// then lets the heap grow to gatewaySoftLimit before it works harder.
// Hostile pushes must leave the process under gatewayLimit, and the live
// heap under liveBound: the defaults allow 8 pushes in flight, each holding
// at most 32 MiB decompressed and 32 MiB estimated once decoded.
const (
	gatewayLimit     = 1 << 30
	gatewaySoftLimit = 800 << 20
	liveBound        = 8*(DefaultMaxDecompressedBodySize+DefaultMaxRequestMemory) + 128<<20 // and the test process
)

// A gateway with a 1 GiB memory limit and the default limits takes 32
// hostile pushes at once, twice, and stays under its limit: each push is
// refused (or, over max_concurrent_requests, answered 503) with no more than
// its share of memory taken.
func TestHostilePushesStayBounded(t *testing.T) {
	cfg := createDefaultConfig()
	pushes := hostile(t)
	rounds, parallel := 2, 8
	unbounded := os.Getenv("SLUICE_HOSTILE_UNBOUNDED") != ""
	if unbounded {
		// By hand, to see what the limits prevent (one push of each at a
		// time, the 15 GiB one left out): SLUICE_HOSTILE_UNBOUNDED=1 go
		// test -run TestHostilePushesStayBounded -v
		cfg.Limits = Limits{}
		rounds, parallel = 1, 1
		delete(pushes, "2 million samples of 128 labels")
	}
	url := startReceiver(t, cfg, consumertest.NewNop())
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(gatewaySoftLimit))
	debug.FreeOSMemory() // what building the pushes took
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("before: %d MiB held from the OS, %d MiB of heap in use", (ms.Sys-ms.HeapReleased)>>20, ms.HeapInuse>>20)

	stop := watchMemory()
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]map[int]int{}
	for round := range rounds {
		for name, p := range pushes {
			for range parallel {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(p.body))
					req.Header.Set("Content-Type", p.ct)
					req.Header.Set("Content-Encoding", "snappy")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Errorf("round %d, %s: %v", round, name, err)
						return
					}
					resp.Body.Close()
					mu.Lock()
					defer mu.Unlock()
					if answers[name] == nil {
						answers[name] = map[int]int{}
					}
					answers[name][resp.StatusCode]++
				}()
			}
		}
		wg.Wait()
	}
	held, live := stop()
	if unbounded {
		t.Logf("without limits: peak %d MiB held from the OS, %d MiB of live heap; answers %v", held>>20, live>>20, answers)
		return
	}
	for name, p := range pushes {
		for status, n := range answers[name] {
			if status != p.status && status != http.StatusServiceUnavailable {
				t.Errorf("%s: %d answered %d, want %d (or 503 beyond max_concurrent_requests)", name, n, status, p.status)
			}
		}
		t.Logf("%s (%d bytes on the wire): answers %v", name, len(p.body), answers[name])
	}
	t.Logf("peak: %d MiB held from the OS (limit %d MiB), %d MiB of live heap (bound %d MiB)", held>>20, gatewayLimit>>20, live>>20, liveBound>>20)
	if held > gatewayLimit || live > liveBound {
		t.Fatalf("peak memory %d MiB held, %d MiB live: over the limit of %d MiB or the bound of %d MiB", held>>20, live>>20, gatewayLimit>>20, liveBound>>20)
	}
}

// watchMemory samples the memory the Go runtime holds from the OS (what
// RSS follows) and the live heap (as of the last collection) every few
// milliseconds until stop, which returns the peaks.
func watchMemory() (stop func() (held, live uint64)) {
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}, {Name: "/gc/heap/live:bytes"}}
	var held, live uint64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(samples)
			held = max(held, samples[0].Value.Uint64()-samples[1].Value.Uint64())
			live = max(live, samples[2].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (uint64, uint64) { close(done); <-finished; return held, live }
}
