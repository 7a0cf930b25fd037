package promseries

import (
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// BenchmarkBuildScrape is what the scrape receiver does with one scrape of
// a loadgen-like target: 20,000 series of 100 counter and gauge families in
// exposition order, each with job, instance and two labels of its own, then
// the pdata out.
func BenchmarkBuildScrape(b *testing.B) {
	const families, perFamily = 100, 200
	var series []labels.Labels
	for f := range families {
		for i := range perFamily {
			series = append(series, labels.FromStrings(
				model.MetricNameLabel, fmt.Sprintf("lg_family_%d", f), "id", fmt.Sprint(i),
				model.InstanceLabel, "127.0.0.1:20000", model.JobLabel, "lg", "path", "/api/v1/items"))
		}
	}
	bld := NewBuilder("bench")
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for f := range families {
			typ := model.MetricTypeGauge
			if f%2 == 0 {
				typ = model.MetricTypeCounter
			}
			bld.SetMetadata(fmt.Sprintf("lg_family_%d", f), Metadata{Type: typ})
		}
		for i, ls := range series {
			bld.Add(ls, 1_700_000_000_000, float64(i), 0)
		}
		if md := bld.Metrics(); md.DataPointCount() != len(series) {
			b.Fatalf("%d points, want %d", md.DataPointCount(), len(series))
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(series))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkWalkHistograms walks 1,000 classic histogram points of one family
// (three bounds each, so six series a point), as the exporter does.
func BenchmarkWalkHistograms(b *testing.B) {
	md := pmetric.NewMetrics()
	m := testMetric(md, "rpc_seconds", "histogram")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 1000 {
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(t0)
		dp.Attributes().PutStr("id", fmt.Sprint(i))
		dp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1})
		dp.BucketCounts().FromRaw([]uint64{1, 1, 1, 1})
		dp.SetCount(4)
		dp.SetSum(2)
	}
	series := 0
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if _, err := Walk(md, Options{}, func(*Sample) error { series++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(series)/b.Elapsed().Seconds(), "series/s")
}
