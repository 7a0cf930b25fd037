package promseries

import (
	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// TargetInfoName is the series that carries a resource's attributes.
const TargetInfoName = "target_info"

// TargetInfo calls fn with the target_info sample of every resource of md
// that has attributes besides the ones that make job and instance: value 1,
// labels job, instance and every other attribute (named by the OTLP label
// rules), at the newest point time of the resource. This is how Prometheus'
// OTLP rules keep resource attributes without putting them on every series.
func TargetInfo(md pmetric.Metrics, fn func(*Sample) error) error {
	var (
		set   labelSet
		smp   Sample
		res   []labels.Label
		namer otlptranslator.LabelNamer
	)
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		attrs := rm.Resource().Attributes()
		others := false
		attrs.Range(func(k string, _ pcommon.Value) bool {
			switch k {
			case attrServiceName, attrServiceNamespace, attrServiceInstanceID:
				return true
			}
			others = true
			return false
		})
		newest := newestTime(rm)
		if !others || newest == 0 {
			continue
		}
		res = resourceLabels(rm.Resource(), Options{ResourceToLabels: true}, &namer, res[:0])
		set.setBase(res)
		set.reset()
		set.seal()
		smp = Sample{Labels: set.build(labels.Label{Name: model.MetricNameLabel, Value: TargetInfoName}), T: millis(newest), V: 1, Meta: Metadata{Family: TargetInfoName, Type: model.MetricTypeGauge, Help: "Target metadata"}}
		if err := fn(&smp); err != nil {
			return err
		}
	}
	return nil
}

// newestTime is the latest point timestamp of a resource's metrics.
func newestTime(rm pmetric.ResourceMetrics) pcommon.Timestamp {
	var t pcommon.Timestamp
	see := func(ts pcommon.Timestamp) { t = max(t, ts) }
	sms := rm.ScopeMetrics()
	for j := 0; j < sms.Len(); j++ {
		ms := sms.At(j).Metrics()
		for k := 0; k < ms.Len(); k++ {
			m := ms.At(k)
			switch m.Type() {
			case pmetric.MetricTypeGauge:
				for _, dp := range m.Gauge().DataPoints().All() {
					see(dp.Timestamp())
				}
			case pmetric.MetricTypeSum:
				for _, dp := range m.Sum().DataPoints().All() {
					see(dp.Timestamp())
				}
			case pmetric.MetricTypeHistogram:
				for _, dp := range m.Histogram().DataPoints().All() {
					see(dp.Timestamp())
				}
			case pmetric.MetricTypeExponentialHistogram:
				for _, dp := range m.ExponentialHistogram().DataPoints().All() {
					see(dp.Timestamp())
				}
			case pmetric.MetricTypeSummary:
				for _, dp := range m.Summary().DataPoints().All() {
					see(dp.Timestamp())
				}
			}
		}
	}
	return t
}
