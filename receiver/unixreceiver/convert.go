package unixreceiver

import (
	"math"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/sluicehq/sluice/internal/promseries"
)

// addFamily adds one gathered metric family to b as a scrape of it would:
// the family's type and help as metadata, one series per metric labelled
// with job and instance, every sample at time t (ms).
func addFamily(b *promseries.Builder, lb *labels.ScratchBuilder, mf *dto.MetricFamily, job, instance string, t int64) {
	name := mf.GetName()
	typ := model.MetricTypeUnknown
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		typ = model.MetricTypeCounter
	case dto.MetricType_GAUGE:
		typ = model.MetricTypeGauge
	case dto.MetricType_SUMMARY:
		typ = model.MetricTypeSummary
	case dto.MetricType_HISTOGRAM:
		typ = model.MetricTypeHistogram
	case dto.MetricType_GAUGE_HISTOGRAM:
		typ = model.MetricTypeGaugeHistogram
	}
	b.SetMetadata(name, promseries.Metadata{Type: typ, Help: mf.GetHelp(), Unit: mf.GetUnit()})
	for _, m := range mf.GetMetric() {
		series := func(n string, v float64, extra ...string) {
			lb.Reset()
			lb.Add(model.MetricNameLabel, n)
			lb.Add(model.JobLabel, job)
			lb.Add(model.InstanceLabel, instance)
			for _, p := range m.GetLabel() {
				lb.Add(p.GetName(), p.GetValue())
			}
			for i := 0; i+1 < len(extra); i += 2 {
				lb.Add(extra[i], extra[i+1])
			}
			lb.Sort()
			b.Add(lb.Labels(), t, v, 0)
		}
		switch typ {
		case model.MetricTypeCounter:
			series(name, m.GetCounter().GetValue())
		case model.MetricTypeGauge:
			series(name, m.GetGauge().GetValue())
		case model.MetricTypeSummary:
			s := m.GetSummary()
			for _, q := range s.GetQuantile() {
				series(name, q.GetValue(), model.QuantileLabel, labels.FormatOpenMetricsFloat(q.GetQuantile()))
			}
			series(name+"_sum", s.GetSampleSum())
			series(name+"_count", float64(s.GetSampleCount()))
		case model.MetricTypeHistogram, model.MetricTypeGaugeHistogram:
			h := m.GetHistogram()
			inf := false
			for _, bk := range h.GetBucket() {
				inf = inf || math.IsInf(bk.GetUpperBound(), 1)
				series(name+"_bucket", float64(bk.GetCumulativeCount()), model.BucketLabel, labels.FormatOpenMetricsFloat(bk.GetUpperBound()))
			}
			if !inf {
				series(name+"_bucket", float64(h.GetSampleCount()), model.BucketLabel, "+Inf")
			}
			series(name+"_sum", h.GetSampleSum())
			series(name+"_count", float64(h.GetSampleCount()))
		default:
			series(name, m.GetUntyped().GetValue())
		}
	}
}
