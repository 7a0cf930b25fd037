package remotewriteexporter

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/comptest"
)

// The retry matrix: which answers are retried and which are dropped and
// counted by status code. The backend answers the first request with the
// status and takes the next one.
func TestRetryMatrix(t *testing.T) {
	for _, tc := range []struct {
		status int
		retry  bool
	}{
		{500, true}, {502, true}, {503, true}, {504, true}, {429, true},
		{400, false}, {401, false}, {403, false}, {404, false}, {409, false}, {413, false}, {422, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			c, url := startCapture(t, func(n int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
				if n == 0 {
					http.Error(w, "injected", tc.status)
					return true
				}
				return false
			})
			r := startExporter(t, url, "", func(cfg *Config) {
				cfg.Shards = 1
				cfg.RetryOnAuthError.Enabled = false // 401 and 403 dropped like the others (TestAuthErrors)
			})
			if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", time.Now().UnixMilli(), 1, "a", "b", "c")); err != nil {
				t.Fatal(err)
			}
			if tc.retry {
				comptest.WaitFor(t, 5*time.Second, "the retry to be delivered", func() bool { return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 3 })
				if n := len(c.requests()); n != 2 {
					t.Fatalf("%d requests, want 2 (one failed, one retried)", n)
				}
				if got := r.counter(t, "otelcol_remote_write_failed", kind(kindSamples)); got != 3 {
					t.Errorf("failed = %d, want 3", got)
				}
				if got := r.counter(t, "otelcol_remote_write_retried", kind(kindSamples)); got != 3 {
					t.Errorf("retried = %d, want 3", got)
				}
				return
			}
			want := reason(fmt.Sprintf("http_%d", tc.status))
			comptest.WaitFor(t, 5*time.Second, "the drop to be counted", func() bool { return r.counter(t, "otelcol_remote_write_dropped", kind(kindSamples), want) == 3 })
			time.Sleep(200 * time.Millisecond) // time for a retry that must not come
			if n := len(c.requests()); n != 1 {
				t.Fatalf("%d requests, want exactly 1: status %d must not be retried", n, tc.status)
			}
			if got := r.exp.queues[0].Stats().Records; got != 0 {
				t.Errorf("%d records left in the queue, want 0 (dropped)", got)
			}
		})
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	c, url := startCapture(t, func(n int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
		if n < 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // no answer at all
			}
			return true
		}
		return false
	})
	r := startExporter(t, url, "", func(cfg *Config) { cfg.Shards = 1 })
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", time.Now().UnixMilli(), 1, "a")); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "delivery after two closed connections", func() bool { return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 1 })
	if n := len(c.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestTimeoutsAreRetried(t *testing.T) {
	c, url := startCapture(t, func(n int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
		if n == 0 {
			time.Sleep(400 * time.Millisecond) // longer than the client timeout
		}
		return false
	})
	r := startExporter(t, url, "", func(cfg *Config) {
		cfg.Shards = 1
		cfg.ClientConfig.Timeout = 100 * time.Millisecond
	})
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", time.Now().UnixMilli(), 1, "a")); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "delivery after a timeout", func() bool { return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 1 })
	if n := len(c.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	c, url := startCapture(t, func(n int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		}
		return false
	})
	r := startExporter(t, url, "", func(cfg *Config) { cfg.Shards = 1 })
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", time.Now().UnixMilli(), 1, "a")); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "delivery", func() bool { return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 1 })
	reqs := c.requests()
	if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second {
		t.Fatalf("retried after %s, Retry-After said 1s (backoff alone would be ~10ms)", gap)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	e := newExporter(createDefaultConfig(), exporterSettings())
	e.cfg.RetryOnFailure = RetryConfig{InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2}
	for try, hi := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		hi *= time.Millisecond
		if try >= 4 {
			hi = time.Second
		}
		for range 50 {
			d := e.backoff(try)
			if d < hi/2 || d > hi {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", try, d, hi/2, hi)
			}
		}
	}
}

// A 2.0 request answered 415 is sent again as 1.0, and so is everything
// after it.
func TestUnsupportedMediaTypeFallsBackTo1(t *testing.T) {
	c, url := startCapture(t, func(_ int, r *http.Request, _ []byte, w http.ResponseWriter) bool {
		if strings.Contains(r.Header.Get("Content-Type"), MessageV2) {
			http.Error(w, "1.0 only", http.StatusUnsupportedMediaType)
			return true
		}
		return false
	})
	r := startExporter(t, url, "", func(cfg *Config) {
		cfg.Shards = 1
		cfg.ProtobufMessage = MessageV2
		cfg.ExternalLabels = map[string]string{"cluster": "eu"}
	})
	if err := r.exp.ConsumeMetrics(context.Background(), everyType()); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "delivery as 1.0", func() bool { return len(c.requests()) == 2 })
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 2000, 1, "later")); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "the next request", func() bool { return len(c.requests()) == 3 })
	reqs := c.requests()
	for i, want := range []string{MessageV2, MessageV1, MessageV1} {
		if got := reqs[i].header.Get("Content-Type"); !strings.HasSuffix(got, want) {
			t.Errorf("request %d: Content-Type %q, want proto=%s", i, got, want)
		}
	}
	// The converted request carries what the 1.0 encoder would have sent.
	if got := strings.Join(renderV1(t, reqs[1].body), "\n"); got != strings.Join(goldenV1, "\n") {
		t.Errorf("converted request:\n%s\nwant:\n%s", got, strings.Join(goldenV1, "\n"))
	}
	if got := r.counter(t, "otelcol_remote_write_fallbacks"); got != 1 {
		t.Errorf("fallbacks = %d, want 1", got)
	}
}

// A 2xx to a 2.0 request without the written headers comes from a receiver
// that did not read it as 2.0: the exporter sends it again as 1.0.
func TestTwoHundredWithoutWrittenHeadersFallsBack(t *testing.T) {
	c, url := startCapture(t, func(_ int, r *http.Request, _ []byte, w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusNoContent) // as a 1.0-only receiver answers anything
		return true
	})
	r := startExporter(t, url, "", func(cfg *Config) {
		cfg.Shards = 1
		cfg.ProtobufMessage = MessageV2
	})
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 1000, 1, "a")); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "the 1.0 resend", func() bool { return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 1 })
	reqs := c.requests()
	if len(reqs) != 2 || !strings.HasSuffix(reqs[1].header.Get("Content-Type"), MessageV1) {
		t.Fatalf("want a 2.0 request then a 1.0 one, got %d requests", len(reqs))
	}
}

// Written headers that report less than was sent are counted as dropped by
// the receiver, not retried.
func TestPartialWriteIsCounted(t *testing.T) {
	_, url := startCapture(t, func(_ int, r *http.Request, _ []byte, w http.ResponseWriter) bool {
		w.Header().Set(headerSamplesWritten, "2")
		w.WriteHeader(http.StatusNoContent)
		return true
	})
	r := startExporter(t, url, "", func(cfg *Config) {
		cfg.Shards = 1
		cfg.ProtobufMessage = MessageV2
	})
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 1000, 1, "a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "the partial write", func() bool { return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 2 })
	if got := r.counter(t, "otelcol_remote_write_dropped", kind(kindSamples), reason(reasonNotWritten)); got != 1 {
		t.Errorf("dropped not_written_by_receiver = %d, want 1", got)
	}
}

// Samples older than max_sample_age are dropped and counted instead of
// being retried forever; newer ones in the same request still go.
func TestMaxSampleAge(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	c, url := startCapture(t, func(_ int, r *http.Request, _ []byte, w http.ResponseWriter) bool {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	r := startExporter(t, url, "", func(cfg *Config) {
		cfg.Shards = 1
		cfg.MaxSampleAge = time.Second
	})
	now := time.Now().UnixMilli()
	md := gauges("j", now-5000, 1, "old1", "old2")
	gauges("j", now+60000, 1, "fresh").ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	if err := r.exp.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "a failed attempt", func() bool { return len(c.requests()) > 0 })
	down.Store(false)
	comptest.WaitFor(t, 5*time.Second, "the fresh sample", func() bool { return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 1 })
	if got := r.counter(t, "otelcol_remote_write_dropped", kind(kindSamples), reason(reasonTooOld)); got != 2 {
		t.Errorf("dropped too_old = %d, want 2", got)
	}
	last := c.requests()[len(c.requests())-1]
	if got := renderV1(t, last.body); len(got) != 2 || !strings.Contains(strings.Join(got, " "), "fresh") {
		t.Errorf("last request %q, want only the fresh series and its metadata", got)
	}
}
