package prometheusexporter

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/sluicehq/sluice/internal/promseries"
)

// push sends one scrape's worth of series through the exporter.
func push(t *testing.T, e *promExporter, build func(b *promseries.Builder)) {
	t.Helper()
	b := promseries.NewBuilder("test")
	b.SetMetadata("up", promseries.Metadata{Type: model.MetricTypeGauge})
	b.SetMetadata("lat", promseries.Metadata{Type: model.MetricTypeHistogram})
	b.SetMetadata("nat", promseries.Metadata{Type: model.MetricTypeHistogram})
	build(b)
	if err := e.ConsumeMetrics(context.Background(), b.Metrics()); err != nil {
		t.Fatal(err)
	}
}

func ser(name string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{"__name__", name, "job", "j", "instance", "i"}, kv...)...)
}

func exposedNames(t *testing.T, url string) map[string]string {
	t.Helper()
	body, ct := scrape(t, url, acceptProtobuf)
	return parse(t, body, ct).series
}

// A stale marker removes the series at once — a classic histogram with
// all its series, a native histogram — and the others stay; a later
// sample brings the series back.
func TestStaleMarkerRemovesTheSeries(t *testing.T) {
	e, url := startExporter(t, nil)
	push(t, e, func(b *promseries.Builder) {
		b.Add(ser("up", "x", "1"), 1000, 1, 0)
		b.Add(ser("up", "x", "2"), 1000, 1, 0)
		b.Add(ser("lat_bucket", "le", "+Inf"), 1000, 2, 0)
		b.Add(ser("lat_sum"), 1000, 0.5, 0)
		b.Add(ser("lat_count"), 1000, 2, 0)
		b.AddHistogram(ser("nat"), 1000, &histogram.Histogram{Count: 1, Sum: 1, ZeroCount: 1}, nil, 0)
	})
	if n := len(exposedNames(t, url)); n != 6 {
		t.Fatalf("%d series exposed, want 6", n)
	}
	push(t, e, func(b *promseries.Builder) {
		b.Add(ser("up", "x", "2"), 2000, staleNaN, 0)
		b.Add(ser("lat_bucket", "le", "+Inf"), 2000, staleNaN, 0)
		b.Add(ser("lat_sum"), 2000, staleNaN, 0)
		b.Add(ser("lat_count"), 2000, staleNaN, 0)
		b.AddHistogram(ser("nat"), 2000, &histogram.Histogram{Sum: staleNaN}, nil, 0)
	})
	got := exposedNames(t, url)
	if len(got) != 1 || got[normalize(ser("up", "x", "1"))] != "1@1000" {
		t.Fatalf("after the stale markers: %v", got)
	}
	push(t, e, func(b *promseries.Builder) { b.Add(ser("up", "x", "2"), 3000, 0, 0) })
	if got := exposedNames(t, url); got[normalize(ser("up", "x", "2"))] != "0@3000" {
		t.Fatalf("the series did not come back: %v", got)
	}
}

// A series not received for metric_expiration leaves /metrics; one
// received since stays.
func TestExpiry(t *testing.T) {
	e, url := startExporter(t, func(c *Config) { c.MetricExpiration = time.Minute })
	now := time.Unix(1_700_000_000, 0)
	e.now = func() time.Time { return now }
	push(t, e, func(b *promseries.Builder) {
		b.Add(ser("up", "x", "old"), 1000, 1, 0)
		b.Add(ser("up", "x", "kept"), 1000, 1, 0)
	})
	now = now.Add(50 * time.Second)
	push(t, e, func(b *promseries.Builder) { b.Add(ser("up", "x", "kept"), 2000, 1, 0) })
	now = now.Add(20 * time.Second) // "old" last seen 70 s ago, "kept" 20 s
	got := exposedNames(t, url)
	if len(got) != 1 || got[normalize(ser("up", "x", "kept"))] != "1@2000" {
		t.Fatalf("after expiry: %v", got)
	}
	// Without a scrape, consuming expires too: memory stays bounded.
	now = now.Add(2 * time.Minute)
	push(t, e, func(b *promseries.Builder) { b.Add(ser("up", "x", "new"), 3000, 1, 0) })
	if n := e.store.len(); n != 1 {
		t.Fatalf("%d series held after two minutes, want 1", n)
	}
}

// An older sample than the one held (a late retry) is kept out: a scraper
// never sees a series' time go back.
func TestOlderSampleKeptOut(t *testing.T) {
	e, url := startExporter(t, nil)
	push(t, e, func(b *promseries.Builder) { b.Add(ser("up"), 5000, 1, 0) })
	push(t, e, func(b *promseries.Builder) { b.Add(ser("up"), 4000, 0, 0) })
	if got := exposedNames(t, url)[normalize(ser("up"))]; got != "1@5000" {
		t.Fatalf("got %s, want 1@5000", got)
	}
}

// A histogram that cannot be one metric without inventing a value (no
// _sum here) is shown series by series under its exact names.
func TestIncompleteHistogramShownAsItsSeries(t *testing.T) {
	e, url := startExporter(t, nil)
	push(t, e, func(b *promseries.Builder) {
		b.Add(ser("lat_bucket", "le", "1"), 1000, 1, 0)
		b.Add(ser("lat_bucket", "le", "+Inf"), 1000, 3, 0)
		b.Add(ser("lat_count"), 1000, 3, 0)
	})
	for name, accept := range formats {
		body, ct := scrape(t, url, accept)
		got := parse(t, body, ct).series
		want := map[string]string{
			normalize(ser("lat_bucket", "le", "1")):    "1@1000",
			normalize(ser("lat_bucket", "le", "+Inf")): "3@1000",
			normalize(ser("lat_count")):                "3@1000",
		}
		if d := diff(want, got); len(d) > 0 {
			t.Errorf("%s: %v", name, d)
		}
	}
}

// send_timestamps: false leaves the time to the scraper.
func TestWithoutTimestamps(t *testing.T) {
	e, url := startExporter(t, func(c *Config) { c.SendTimestamps = false })
	push(t, e, func(b *promseries.Builder) { b.Add(ser("up"), 5000, 1, 0) })
	for name, accept := range formats {
		body, ct := scrape(t, url, accept)
		if got := parse(t, body, ct).series[normalize(ser("up"))]; got != "1" {
			t.Errorf("%s: %q, want a value without time", name, got)
		}
	}
}

// The answer is gzip-compressed when the scraper accepts it (Prometheus
// does), plain otherwise; only GET and HEAD are answered.
func TestHTTP(t *testing.T) {
	e, url := startExporter(t, nil)
	push(t, e, func(b *promseries.Builder) { b.Add(ser("up"), 5000, 1, 0) })
	for _, tc := range []struct {
		encoding string
		gzipped  bool
	}{{"gzip", true}, {"deflate, gzip;q=0.5", true}, {"gzip;q=0", false}, {"", false}} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept-Encoding", tc.encoding) // set by hand: the client then does not decompress
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = resp.Body
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzipped {
			t.Errorf("Accept-Encoding %q: gzipped %v", tc.encoding, got)
		} else if got {
			if r, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		body, err := io.ReadAll(r)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(body), `up{instance="i",job="j"} 1 5000`) {
			t.Errorf("Accept-Encoding %q: %v\n%s", tc.encoding, err, body)
		}
	}
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
	body, ct := scrape(t, url, acceptOM)
	if !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(string(body), "# EOF\n") {
		t.Errorf("OpenMetrics: %s\n%s", ct, body)
	}
	if _, ct := scrape(t, url, ""); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("no Accept: %s", ct)
	}
}

// The format each scraper gets: OpenMetrics only to one that takes nothing
// else, since it renames counter families (see negotiate).
func TestNegotiation(t *testing.T) {
	e, url := startExporter(t, nil)
	push(t, e, func(b *promseries.Builder) { b.Add(ser("up"), 5000, 1, 0) })
	for _, tc := range []struct{ accept, want string }{
		{acceptProm, "text/plain; version=0.0.4"},
		{acceptText, "text/plain; version=0.0.4"},
		{"", "text/plain; version=0.0.4"},
		{acceptProtobuf, "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"},
		{"application/openmetrics-text;version=1.0.0,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5",
			"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"},
		{acceptOM, "application/openmetrics-text; version=1.0.0"},
		{"application/openmetrics-text;version=0.0.1,text/plain;q=0", "application/openmetrics-text; version=0.0.1"},
	} {
		if _, ct := scrape(t, url, tc.accept); !strings.HasPrefix(ct, tc.want) {
			t.Errorf("Accept %q: got %s, want %s", tc.accept, ct, tc.want)
		}
	}
}
