package remotewriteexporter

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// scrapeLike is one scrape of a loadgen-like target: n gauge and counter
// series over 100 families with two labels each.
func scrapeLike(n int, t int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	metrics := newResource(md, "bench", "127.0.0.1:20000")
	per := n / 100
	for f := range 100 {
		typ := "gauge"
		if f%2 == 0 {
			typ = "counter"
		}
		m := promMetric(metrics, fmt.Sprintf("lg_family_%d", f), typ)
		var dps pmetric.NumberDataPointSlice
		if typ == "gauge" {
			dps = m.SetEmptyGauge().DataPoints()
		} else {
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps = s.DataPoints()
		}
		for i := range per {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(ms(t))
			dp.SetDoubleValue(float64(i) * 1.5)
			dp.Attributes().PutStr("id", fmt.Sprint(i))
			dp.Attributes().PutStr("path", "/api/v1/items")
		}
	}
	return md
}

// BenchmarkConsumeMetrics: translate, shard, encode and append to the disk
// queue (sync: interval) — the work done before ConsumeMetrics returns. The
// senders are parked on an endpoint that never answers in time, so they do
// not compete for the CPU.
func BenchmarkConsumeMetrics(b *testing.B) {
	for _, msg := range []string{MessageV1, MessageV2} {
		b.Run(msg, func(b *testing.B) {
			stop := make(chan struct{})
			hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-stop:
				}
			}))
			defer hang.Close()
			defer close(stop)
			cfg := createDefaultConfig()
			cfg.ClientConfig.Endpoint = hang.URL
			cfg.ProtobufMessage = msg
			cfg.Queue.Directory = b.TempDir()
			cfg.Queue.MaxSize = 8 << 30
			e := newExporter(cfg, exporterSettings())
			if err := e.Start(context.Background(), nopHost{}); err != nil {
				b.Fatal(err)
			}
			defer e.Shutdown(context.Background())
			const series = 20000
			md := scrapeLike(series, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.ConsumeMetrics(context.Background(), md); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(series*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkBacklogDrain: a queue holding a backlog, sent to a loopback
// server that reads and acknowledges each request — the work of draining
// after an outage (read from disk, send, acknowledge).
func BenchmarkBacklogDrain(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	const series = 20000
	md := scrapeLike(series, 1000)
	b.ReportAllocs()
	var samples int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		cfg := createDefaultConfig()
		cfg.ClientConfig.Endpoint = "http://127.0.0.1:1/" // down while the backlog builds
		cfg.Queue.Directory = dir
		cfg.Queue.MaxSize = 8 << 30
		e := newExporter(cfg, exporterSettings())
		if err := e.Start(context.Background(), nopHost{}); err != nil {
			b.Fatal(err)
		}
		for range 20 { // 20 scrapes of 20k series: 400k samples
			if err := e.ConsumeMetrics(context.Background(), md); err != nil {
				b.Fatal(err)
			}
		}
		_ = e.Shutdown(context.Background())
		cfg.ClientConfig.Endpoint = srv.URL
		e = newExporter(cfg, exporterSettings())
		b.StartTimer()
		if err := e.Start(context.Background(), nopHost{}); err != nil {
			b.Fatal(err)
		}
		for {
			left := int64(0)
			for _, q := range e.allQueues() {
				left += q.Stats().Records
			}
			if left == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		_ = e.Shutdown(context.Background())
		samples += 20 * series
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}
