package promseries

import (
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
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
