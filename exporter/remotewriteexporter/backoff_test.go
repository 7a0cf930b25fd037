package remotewriteexporter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/bench/sink"
)

// arrivals wraps bench/sink (its fault injection answers) with a record of
// when each request arrived, whatever shard sent it.
type arrivals struct {
	mu          sync.Mutex
	at          []time.Time
	firstAnswer time.Time // when the first answer was written
}

func startTimedSink(t *testing.T) (*sink.Sink, *arrivals, string) {
	t.Helper()
	s, a := sink.New(), &arrivals{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.at = append(a.at, time.Now())
		a.mu.Unlock()
		s.ServeHTTP(w, r)
		a.mu.Lock()
		if a.firstAnswer.IsZero() {
			a.firstAnswer = time.Now()
		}
		a.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return s, a, srv.URL + "/api/v1/write"
}

func (a *arrivals) times() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.at...)
}

// firstRound counts the requests that arrived before the first answer
// could have set the backoff: those sent while the endpoint still looked
// healthy. slack covers the client's reading of that answer.
func (a *arrivals) firstRound(slack time.Duration) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.at {
		if t.Before(a.firstAnswer.Add(slack)) {
			n++
		}
	}
	return n
}

// A backend answering 503 sees one backoff, whatever the shard count:
// after the first round (every shard's first request, sent before any
// answer came back), one request at a time, the waits between them growing
// exponentially (never shorter than the jittered floor of the backoff) up
// to max_interval, and no more requests with 4 shards than with 1.
func TestFailingBackendSeesOneBackoff(t *testing.T) {
	const (
		initial = 100 * time.Millisecond
		maxWait = 800 * time.Millisecond
		run     = 3 * time.Second
	)
	names := seriesNames(64) // every shard gets data
	retries := map[int]int{}
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d shards", shards), func(t *testing.T) {
			s, arr, url := startTimedSink(t)
			if err := s.SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			r := startExporter(t, url, "", func(cfg *Config) {
				cfg.Shards = shards
				cfg.RetryOnFailure = RetryConfig{InitialInterval: initial, MaxInterval: maxWait, Multiplier: 2}
			})
			for i := range 3 {
				if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", int64(1000+i), 1, names...)); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(run)
			r.stop(t)
			at := arr.times()
			// The backoff's floor is initial/2 after the first answer.
			first := arr.firstRound(initial / 4)
			if first > shards {
				t.Fatalf("%d requests in the first round, more than the %d shards", first, shards)
			}
			var gaps []time.Duration
			for i := first; i < len(at); i++ {
				gaps = append(gaps, at[i].Sub(at[i-1]))
			}
			if len(gaps) < 4 {
				t.Fatalf("only %d retries in %s", len(gaps), run)
			}
			for k, g := range gaps {
				floor := min(initial<<k, maxWait) / 2
				if g < floor {
					t.Fatalf("retry %d came %s after the previous request, less than the backoff floor %s (gaps %v)", k+1, g, floor, gaps)
				}
			}
			if ratio := float64(gaps[len(gaps)-1]) / float64(gaps[0]); ratio < 2 {
				t.Errorf("last/first wait ratio %.2f, want the waits to grow (gaps %v)", ratio, gaps)
			}
			retries[shards] = len(gaps)
			t.Logf("%d shards: first round %d requests, then %d retries, gaps %v", shards, first, len(gaps), gaps)
		})
	}
	// Jitter may give one run a retry or two more than the other.
	if retries[4] > retries[1]+2 {
		t.Fatalf("%d retries with 4 shards, %d with 1: the retry rate grows with the shard count", retries[4], retries[1])
	}
}

// Retry-After holds back every shard of the endpoint, not only the one
// that got it.
func TestRetryAfterHoldsEveryShard(t *testing.T) {
	s, arr, url := startTimedSink(t)
	if err := s.SetFault(sink.Fault{Mode: "status", Status: 429, RetryAfter: "1", For: sink.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r := startExporter(t, url, "", func(cfg *Config) { cfg.Shards = 4 })
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 1000, 1, seriesNames(64)...)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	at := arr.times()
	first := arr.firstRound(300 * time.Millisecond)
	var later []time.Duration // arrivals after the first round
	for _, a := range at[first:] {
		later = append(later, a.Sub(at[0]))
	}
	if len(later) == 0 || later[0] < time.Second {
		t.Fatalf("requests after the first round at %v: want none before the 1 s of Retry-After", later)
	}
	if len(later) > 3 {
		t.Fatalf("%d requests in 2.5 s after Retry-After: 1 answers, want at most one per second", len(later))
	}
}
