package prometheusexporter

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/exporter/prometheusexporter/internal/metadata"
	"github.com/sluicehq/sluice/internal/promseries"
)

// scrapeOf is one scrape of a target with n counter series and n/10
// classic histograms of 10 buckets, at time ts, as the receiver builds it.
func scrapeOf(n int, ts int64) pmetric.Metrics {
	b := promseries.NewBuilder("bench")
	b.SetMetadata("requests_total", promseries.Metadata{Type: model.MetricTypeCounter, Help: "Requests."})
	b.SetMetadata("latency_seconds", promseries.Metadata{Type: model.MetricTypeHistogram, Help: "Latency."})
	base := []string{"job", "app", "instance", "10.0.0.1:8080"}
	for i := 0; i < n; i++ {
		b.Add(labels.FromStrings(append([]string{"__name__", "requests_total", "path", fmt.Sprintf("/p/%d", i)}, base...)...), ts, float64(i+int(ts)), 0)
	}
	for i := 0; i < n/10; i++ {
		path := fmt.Sprintf("/p/%d", i)
		for j, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"} {
			b.Add(labels.FromStrings(append([]string{"__name__", "latency_seconds_bucket", "path", path, "le", le}, base...)...), ts, float64(j), 0)
		}
		b.Add(labels.FromStrings(append([]string{"__name__", "latency_seconds_sum", "path", path}, base...)...), ts, 1.5, 0)
		b.Add(labels.FromStrings(append([]string{"__name__", "latency_seconds_count", "path", path}, base...)...), ts, 9, 0)
	}
	return b.Metrics()
}

func benchExporter(b *testing.B) *promExporter {
	cfg := createDefaultConfig()
	return newExporter(cfg, exportertest.NewNopSettings(metadata.Type))
}

// BenchmarkConsume stores a scrape of 10,000 series (and 1,000 histograms,
// 12,000 more series) over the same series each time, as a steady target
// does.
func BenchmarkConsume(b *testing.B) {
	e := benchExporter(b)
	md := scrapeOf(10_000, 1000)
	points := 10_000 + 1_000*12
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.ConsumeMetrics(context.Background(), md); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*points), "ns/series")
}

// BenchmarkScrape renders the same 22,000 series for a scraper in each
// format, gzip included (as Prometheus asks).
func BenchmarkScrape(b *testing.B) {
	e := benchExporter(b)
	if err := e.ConsumeMetrics(context.Background(), scrapeOf(10_000, 1000)); err != nil {
		b.Fatal(err)
	}
	for name, accept := range formats {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", accept)
			req.Header.Set("Accept-Encoding", "gzip")
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w := httptest.NewRecorder()
				e.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*22_000), "ns/series")
		})
	}
}

// Scrapes while the pipeline consumes: under -race (make race) this is
// what shows the store and the rendering share nothing unguarded.
func TestConcurrentConsumeAndScrape(t *testing.T) {
	e, url := startExporter(t, nil)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := e.ConsumeMetrics(context.Background(), scrapeOf(200, int64(1000*(i+1)))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	wg.Wait()
	body, ct := scrape(t, url, acceptProtobuf)
	got := parse(t, body, ct).series
	if len(got) != 200+20*12 {
		t.Fatalf("%d series after the scrapes, want %d", len(got), 200+20*12)
	}
	if v := got[normalize(labels.FromStrings("__name__", "requests_total", "path", "/p/0", "job", "app", "instance", "10.0.0.1:8080"))]; v != "20000@20000" {
		t.Fatalf("the newest sample is not the one held: %s", v)
	}
}
