package batchprocessor

import (
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/internal/metricshape"

	"github.com/sluicehq/sluice/internal/promseries"
)

// splitMetrics moves the first n data points of src, in order, into a new
// pmetric.Metrics and returns it; src keeps the rest. Whole resources,
// scopes and metrics are moved without copying; only the one of each that
// straddles the cut is duplicated: its resource, scope and metric header
// (name, description, unit, metadata, type, temporality, monotonicity) are
// copied so that both halves stand on their own.
func splitMetrics(src pmetric.Metrics, n int) pmetric.Metrics {
	dst := pmetric.NewMetrics()
	left := n
	src.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		if left == 0 {
			return false
		}
		if c := resourcePoints(rm); c <= left {
			left -= c
			rm.MoveTo(dst.ResourceMetrics().AppendEmpty())
			return true
		}
		drm := dst.ResourceMetrics().AppendEmpty()
		rm.Resource().CopyTo(drm.Resource())
		drm.SetSchemaUrl(rm.SchemaUrl())
		left = splitScopes(rm.ScopeMetrics(), drm.ScopeMetrics(), left)
		return false
	})
	return dst
}

// splitScopes moves the first n data points of src to dst and returns how
// many of the n it could not move (0 unless src holds fewer).
func splitScopes(src, dst pmetric.ScopeMetricsSlice, n int) int {
	src.RemoveIf(func(sm pmetric.ScopeMetrics) bool {
		if n == 0 {
			return false
		}
		if c := scopePoints(sm); c <= n {
			n -= c
			sm.MoveTo(dst.AppendEmpty())
			return true
		}
		dsm := dst.AppendEmpty()
		sm.Scope().CopyTo(dsm.Scope())
		dsm.SetSchemaUrl(sm.SchemaUrl())
		n = splitMetricSlice(sm.Metrics(), dsm.Metrics(), n)
		return false
	})
	return n
}

func splitMetricSlice(src, dst pmetric.MetricSlice, n int) int {
	src.RemoveIf(func(m pmetric.Metric) bool {
		if n == 0 {
			return false
		}
		if c := promseries.DataPoints(m); c <= n {
			n -= c
			m.MoveTo(dst.AppendEmpty())
			return true
		}
		splitMetric(m, dst.AppendEmpty(), n)
		n = 0
		return false
	})
	return n
}

// splitMetric moves the first n data points of src (which has more) into
// dst, an empty metric, which gets a copy of src's header.
func splitMetric(src, dst pmetric.Metric, n int) {
	metricshape.EmptyLike(src, dst)
	switch src.Type() {
	case pmetric.MetricTypeGauge:
		movePoints[pmetric.NumberDataPoint](src.Gauge().DataPoints(), dst.Gauge().DataPoints(), n)
	case pmetric.MetricTypeSum:
		movePoints[pmetric.NumberDataPoint](src.Sum().DataPoints(), dst.Sum().DataPoints(), n)
	case pmetric.MetricTypeHistogram:
		movePoints[pmetric.HistogramDataPoint](src.Histogram().DataPoints(), dst.Histogram().DataPoints(), n)
	case pmetric.MetricTypeExponentialHistogram:
		movePoints[pmetric.ExponentialHistogramDataPoint](src.ExponentialHistogram().DataPoints(), dst.ExponentialHistogram().DataPoints(), n)
	case pmetric.MetricTypeSummary:
		movePoints[pmetric.SummaryDataPoint](src.Summary().DataPoints(), dst.Summary().DataPoints(), n)
	}
}

// pointSlice is what the five data point slice types of pmetric share.
type pointSlice[P interface{ MoveTo(P) }] interface {
	EnsureCapacity(int)
	AppendEmpty() P
	RemoveIf(func(P) bool)
}

// movePoints moves the first n points of src to the end of dst.
func movePoints[P interface{ MoveTo(P) }, S pointSlice[P]](src, dst S, n int) {
	dst.EnsureCapacity(n)
	moved := 0
	src.RemoveIf(func(p P) bool {
		if moved == n {
			return false
		}
		moved++
		p.MoveTo(dst.AppendEmpty())
		return true
	})
}

func resourcePoints(rm pmetric.ResourceMetrics) int {
	n := 0
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		n += scopePoints(sms.At(i))
	}
	return n
}

func scopePoints(sm pmetric.ScopeMetrics) int {
	n := 0
	ms := sm.Metrics()
	for i := 0; i < ms.Len(); i++ {
		n += promseries.DataPoints(ms.At(i))
	}
	return n
}
