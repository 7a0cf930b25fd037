package prometheusreceiver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/bench/loadgen"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
)

const benchSeries = 20000

// BenchmarkScrapeLoop scrapes one 20,000-series loadgen target with each
// loop, the whole receiver running (discovery, loop, parse, Builder, pdata
// handed to a consumer that counts it). One op is one scrape. The loops
// scrape on their interval, so wall time per op is the interval: the
// figures are cpu-ns/sample (this process's CPU time, the target's serving
// of a ready body included, the same for both), allocs/sample and
// B/sample (this process's heap allocations), and retained-B/series: the
// heap the running receiver holds after a GC, per series. The target serves the
// loadgen's scrapes 0 and 1 alternately: values change, series do not.
func BenchmarkScrapeLoop(b *testing.B) {
	gen, err := loadgen.New(loadgen.Config{Targets: 1, SeriesPerTarget: benchSeries, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		name   string
		format expfmt.Format
	}{
		{"text", expfmt.NewFormat(expfmt.TypeTextPlain)},
		{"openmetrics", expfmt.NewFormat(expfmt.TypeOpenMetrics)},
	} {
		b.Run(f.name, func(b *testing.B) { benchScrapeLoop(b, gen, f.format) })
	}
}

// benchScrapeLoop runs BenchmarkScrapeLoop for each loop on a target that
// serves the loadgen's families in format.
func benchScrapeLoop(b *testing.B, gen *loadgen.Generator, format expfmt.Format) {
	var bodies [2][]byte
	for k := range bodies {
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, format)
		for _, mf := range gen.Families(0, k) {
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
		if closer, ok := enc.(expfmt.Closer); ok {
			if err := closer.Close(); err != nil { // OpenMetrics' # EOF
				b.Fatal(err)
			}
		}
		bodies[k] = buf.Bytes()
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", string(format))
		_, _ = w.Write(bodies[n.Add(1)%2])
	}))
	defer srv.Close()

	for _, loop := range loops {
		b.Run(loop, func(b *testing.B) {
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			base := ms0.HeapAlloc
			sink := &countingSink{}
			stop := startBenchReceiver(b, loop, hostOf(srv), sink)
			defer stop()
			waitScrapes(b, sink, 2) // warm: the caches and buffers are in place
			runtime.ReadMemStats(&ms0)
			cpu0 := cpuTime()
			start := sink.scrapes.Load()
			b.ResetTimer()
			waitScrapes(b, sink, start+int64(b.N))
			b.StopTimer()
			cpu := cpuTime() - cpu0
			runtime.ReadMemStats(&ms1)
			// Stored series per scrape: the loadgen's and the five report series.
			samples := float64(gen.Lines()+5) * float64(b.N)
			b.ReportMetric(float64(cpu.Nanoseconds())/samples, "cpu-ns/sample")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/samples, "allocs/sample")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/samples, "B/sample")
			// What the receiver keeps between scrapes (its loop's state
			// for the target, and everything else of the receiver), per
			// series of the target.
			runtime.GC()
			runtime.ReadMemStats(&ms1)
			b.ReportMetric((float64(ms1.HeapAlloc)-float64(base))/float64(gen.Lines()), "retained-B/series")
		})
	}
}

// countingSink counts the scrapes (batches holding up) and data points it
// is handed.
type countingSink struct {
	scrapes, points atomic.Int64
}

func (c *countingSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *countingSink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	c.points.Add(int64(md.DataPointCount()))
	c.scrapes.Add(1)
	return nil
}

func waitScrapes(b *testing.B, sink *countingSink, n int64) {
	deadline := time.Now().Add(time.Duration(n+10) * 5 * time.Second)
	for sink.scrapes.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d scrapes", sink.scrapes.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startBenchReceiver(b *testing.B, loop, target string, next consumer.Metrics) func() {
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(`
scrape_loop: %s
config:
  scrape_configs:
    - job_name: bench
      scrape_interval: 250ms
      scrape_timeout: 250ms
      static_configs: [{targets: [%q]}]
`, loop, target)), &raw); err != nil {
		b.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		b.Fatal(err)
	}
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, next)
	if err != nil {
		b.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	return func() { _ = rcv.Shutdown(context.Background()) }
}
