package remotewriteexporter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicehq/sluice/internal/comptest"
)

// Retry-After in seconds or as an HTTP date: capped at maxRetryAfter, and
// never negative, also for values whose nanoseconds overflow int64.
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"5", 5 * time.Second},
		{" 5 ", 5 * time.Second},
		{"300", maxRetryAfter},
		{"301", maxRetryAfter},
		{"-5", 0},
		{"9223372036", maxRetryAfter},          // ns overflow int64
		{"99999999999999", maxRetryAfter},      // the value
		{"9223372036854775807", maxRetryAfter}, // MaxInt64 seconds
		{"99999999999999999999", maxRetryAfter},
		{"-99999999999999999999", 0},
		{"1.5", 0},
		{"soon", 0},
		{date(30 * time.Second), 30 * time.Second},
		{date(-time.Hour), 0},
		{date(2 * time.Hour), maxRetryAfter},
		{"Fri, 31 Dec 9999 23:59:59 GMT", maxRetryAfter},
		{"Mon, 01 Jan 0001 00:00:00 GMT", 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// A redirect is not followed: the request is not turned into a bodiless
// GET that "succeeds", the credentials and tenant do not reach the other
// host, and the data is dropped, counted as http_<code>, not retried.
func TestRedirectsAreNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var elsewhere atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				elsewhere.Add(1)
				if r.Header.Get("Authorization") != "" || r.Header.Get("X-Scope-OrgID") != "" {
					t.Errorf("credentials sent to the redirect target: %v", r.Header)
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer other.Close()
			c, url := startCapture(t, func(_ int, r *http.Request, _ []byte, w http.ResponseWriter) bool {
				http.Redirect(w, r, other.URL+"/steal", code)
				return true
			})
			r := startExporter(t, url, "", func(cfg *Config) {
				cfg.Shards = 1
				cfg.ClientConfig.Headers = configopaque.MapList{{Name: "Authorization", Value: "Bearer secret"}, {Name: "X-Scope-OrgID", Value: "team-a"}}
			})
			if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 1000, 1, "a", "b")); err != nil {
				t.Fatal(err)
			}
			want := reason(fmt.Sprintf("http_%d", code))
			comptest.WaitFor(t, 5*time.Second, "the drop", func() bool { return r.counter(t, "otelcol_remote_write_dropped", kind(kindSamples), want) == 2 })
			time.Sleep(200 * time.Millisecond) // time for a retry or a follow that must not come
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("the redirect target got %d requests", n)
			}
			if n := len(c.requests()); n != 1 {
				t.Fatalf("%d requests, want 1 (a redirect is not retried)", n)
			}
			if got := r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)); got != 0 {
				t.Fatalf("sent = %d: a redirect counted as delivered", got)
			}
		})
	}
}

// 401 and 403 (an expired token) keep the data: retried every
// retry_on_auth_error::interval, counted as failed with the status, logged;
// once the credentials work again, everything is delivered.
func TestAuthErrorsAreRetried(t *testing.T) {
	for _, status := range []int{401, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var renewed atomic.Bool
			c, url := startCapture(t, func(_ int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
				if !renewed.Load() {
					http.Error(w, "token expired", status)
					return true
				}
				return false
			})
			var logs *observer.ObservedLogs
			const every = 300 * time.Millisecond
			r := startExporterSet(t, url, "", func(cfg *Config) {
				cfg.Shards = 2
				cfg.RetryOnAuthError.Interval = every
			}, observed(&logs))
			if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 1000, 1, seriesNames(10)...)); err != nil {
				t.Fatal(err)
			}
			// The first round is up to one request per shard; then probes.
			comptest.WaitFor(t, 5*time.Second, "two probes after the first round", func() bool { return len(c.requests()) >= 4 })
			reqs := c.requests()
			if gap := reqs[len(reqs)-1].at.Sub(reqs[len(reqs)-2].at); gap < every {
				t.Errorf("attempts %s apart, want at least the interval %s", gap, every)
			}
			renewed.Store(true)
			comptest.WaitFor(t, 5*time.Second, "delivery once the token works", func() bool {
				return r.counter(t, "otelcol_remote_write_sent", kind(kindSamples)) == 10
			})
			if got := r.counter(t, "otelcol_remote_write_failed", kind(kindSamples), reason(fmt.Sprintf("http_%d", status))); got < 10 {
				t.Errorf("failed{reason=http_%d} = %d, want at least 10", status, got)
			}
			if got := r.counter(t, "otelcol_remote_write_dropped"); got != 0 {
				t.Errorf("dropped = %d, want 0", got)
			}
			if n := logs.FilterMessageSnippet("refuses the credentials").Len(); n != 1 {
				t.Errorf("%d auth error log lines, want 1 (rate-limited)", n)
			}
		})
	}
}

// With the default config, another 4xx is still dropped and counted.
func TestOtherClientErrorsAreDroppedByDefault(t *testing.T) {
	c, url := startCapture(t, func(_ int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
		http.Error(w, "bad", http.StatusBadRequest)
		return true
	})
	r := startExporter(t, url, "", func(cfg *Config) { cfg.Shards = 1 })
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 1000, 1, "a")); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "the drop", func() bool {
		return r.counter(t, "otelcol_remote_write_dropped", kind(kindSamples), reason("http_400")) == 1
	})
	time.Sleep(200 * time.Millisecond)
	if n := len(c.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// A fallback to 1.0 lasts the recheck interval, not the life of the
// process: a backend upgraded to 2.0 gets 2.0 again.
func TestFallbackIsRechecked(t *testing.T) {
	var upgraded atomic.Bool
	c, url := startCapture(t, func(_ int, r *http.Request, _ []byte, w http.ResponseWriter) bool {
		if !upgraded.Load() {
			w.WriteHeader(http.StatusNoContent) // a 1.0 receiver: no written headers
			return true
		}
		return false // the capture answers 2.0 with the written headers
	})
	var logs *observer.ObservedLogs
	r := startExporterSet(t, url, "", func(cfg *Config) {
		cfg.Shards = 1
		cfg.ProtobufMessage = MessageV2
	}, observed(&logs))
	const recheck = 500 * time.Millisecond
	r.exp.endpoints[0].recheck = recheck // before any request: the queue orders it before the sender reads it
	send := func(ts int64, want int) {
		t.Helper()
		if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", ts, 1, "a")); err != nil {
			t.Fatal(err)
		}
		comptest.WaitFor(t, 5*time.Second, fmt.Sprintf("%d requests", want), func() bool { return len(c.requests()) == want })
	}
	send(1000, 2) // 2.0, then the same as 1.0
	upgraded.Store(true)
	send(2000, 3) // within the recheck interval: 1.0
	time.Sleep(recheck)
	send(3000, 4) // 2.0 again, taken
	send(4000, 5)
	var got []string
	for _, q := range c.requests() {
		ct := q.header.Get("Content-Type")
		got = append(got, ct[strings.Index(ct, "proto=")+6:])
	}
	want := []string{MessageV2, MessageV1, MessageV1, MessageV2, MessageV2}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("messages sent %v, want %v", got, want)
	}
	if n := logs.FilterMessage("The backend takes remote write 2.0 again").Len(); n != 1 {
		t.Errorf("%d 'takes 2.0 again' log lines, want 1", n)
	}
	if got := r.counter(t, "otelcol_remote_write_fallbacks"); got != 1 {
		t.Errorf("fallbacks = %d, want 1", got)
	}
}
