package batchprocessor

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	corebatch "go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/processortest"
)

// benchRequest is a 1,000-point request as a scrape or an OTLP push brings
// it: 4 resources, each with 2 gauges, 2 counters and 1 histogram of 50
// series.
func benchRequest() pmetric.Metrics {
	md := pmetric.NewMetrics()
	now := pcommon.Timestamp(1_700_000_000_000_000_000)
	for r := range 4 {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "api")
		rm.Resource().Attributes().PutStr("service.instance.id", fmt.Sprintf("10.0.0.%d:9100", r))
		sm := rm.ScopeMetrics().AppendEmpty()
		for k := range 5 {
			m := sm.Metrics().AppendEmpty()
			m.SetName(fmt.Sprintf("metric_%d", k))
			for s := range 50 {
				var attrs pcommon.Map
				switch k {
				case 0, 1:
					if m.Type() == pmetric.MetricTypeEmpty {
						m.SetEmptyGauge()
					}
					p := m.Gauge().DataPoints().AppendEmpty()
					p.SetDoubleValue(float64(s))
					p.SetTimestamp(now)
					attrs = p.Attributes()
				case 2, 3:
					if m.Type() == pmetric.MetricTypeEmpty {
						m.SetEmptySum().SetIsMonotonic(true)
						m.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					}
					p := m.Sum().DataPoints().AppendEmpty()
					p.SetIntValue(int64(s))
					p.SetTimestamp(now)
					attrs = p.Attributes()
				default:
					if m.Type() == pmetric.MetricTypeEmpty {
						m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					}
					p := m.Histogram().DataPoints().AppendEmpty()
					p.SetCount(10)
					p.SetSum(1.5)
					p.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1, 5})
					p.BucketCounts().FromRaw([]uint64{1, 2, 3, 4, 0})
					p.SetTimestamp(now)
					attrs = p.Attributes()
				}
				attrs.PutStr("method", "GET")
				attrs.PutStr("path", fmt.Sprintf("/v1/items/%d", s))
			}
		}
	}
	return md
}

// BenchmarkConsume feeds 1,000-point requests through Sluice's batch
// processor and the collector's (v0.160.0), both with their defaults
// (send_batch_size 8192, timeout 200ms, no send_batch_max_size) and the
// final flush counted. Building a request costs ~100 times what batching it
// does, so the requests are recycled instead: the next consumer moves the
// resources of each batch back into requests of 4 (both processors move
// whole resources into their batches, so these are the original requests'
// resources) for the benchmark loop to send again. "harness" is that loop
// and recycler without a processor: subtract it to get the processors' own
// cost.
func BenchmarkConsume(b *testing.B) {
	impls := []struct {
		name    string
		factory processor.Factory
	}{
		{"sluice", NewFactory()},
		{"core", corebatch.NewFactory()},
		{"harness", nil},
	}
	for _, callers := range []int{1, 4} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("%s/callers=%d", impl.name, callers), func(b *testing.B) {
				rc := newRecycler(64)
				var next consumer.Metrics = rc
				if impl.factory != nil {
					set := processortest.NewNopSettings(impl.factory.Type())
					proc, err := impl.factory.CreateMetrics(context.Background(), set, impl.factory.CreateDefaultConfig(), rc)
					if err != nil {
						b.Fatal(err)
					}
					if err := proc.Start(context.Background(), componenttest.NewNopHost()); err != nil {
						b.Fatal(err)
					}
					next = proc
				}
				b.ReportAllocs()
				b.ResetTimer()
				if callers == 1 {
					for range b.N {
						rc.send(b, next)
					}
				} else {
					b.SetParallelism(callers / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							rc.send(b, next)
						}
					})
				}
				if p, ok := next.(processor.Metrics); ok {
					// Flush what is pending, inside the timing. (Shutdown
					// only here: the core processor panics on a second one.)
					if err := p.Shutdown(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N*rc.points)/b.Elapsed().Seconds(), "datapoints/s")
			})
		}
	}
}

// recycler is the next consumer of the benchmark: it hands the resources of
// each batch back as 4-resource requests. (The emptied requests themselves
// are not reused: the core processor moves a request's data after
// ConsumeMetrics has returned.)
type recycler struct {
	reqs   chan pmetric.Metrics // requests ready to send
	points int                  // data points per request
}

func newRecycler(n int) *recycler {
	rc := &recycler{reqs: make(chan pmetric.Metrics, n)}
	template := benchRequest()
	rc.points = template.DataPointCount()
	for range n {
		md := pmetric.NewMetrics()
		template.CopyTo(md)
		rc.reqs <- md
	}
	return rc
}

// send takes a request and hands it to next.
func (rc *recycler) send(b *testing.B, next consumer.Metrics) {
	if err := next.ConsumeMetrics(context.Background(), <-rc.reqs); err != nil {
		b.Error(err)
	}
}

func (rc *recycler) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

func (rc *recycler) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	var req pmetric.Metrics
	i := 0
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		if i%4 == 0 {
			req = pmetric.NewMetrics()
		}
		rm.MoveTo(req.ResourceMetrics().AppendEmpty())
		if i++; i%4 == 0 {
			rc.reqs <- req
		}
		return true
	})
	return nil
}
