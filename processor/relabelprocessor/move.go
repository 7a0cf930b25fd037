package relabelprocessor

import (
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/internal/metricshape"
	"github.com/sluicehq/sluice/internal/promseries"
)

// points relabels every data point of ref.m: dropped ones are removed, kept
// ones edited in place, renamed ones (or ones whose resource labels changed)
// moved to the metric they now belong to.
func (w *worker) points(ref *pointRef) {
	m := ref.m
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool {
			d := w.decide(ref, dp.Attributes())
			if d.drop || d.same || !apply(d, dp.Attributes()) {
				return d.drop
			}
			dp.MoveTo(w.target(ref, d).Gauge().DataPoints().AppendEmpty())
			return true
		})
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool {
			d := w.decide(ref, dp.Attributes())
			if d.drop || d.same || !apply(d, dp.Attributes()) {
				return d.drop
			}
			dp.MoveTo(w.target(ref, d).Sum().DataPoints().AppendEmpty())
			return true
		})
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().RemoveIf(func(dp pmetric.HistogramDataPoint) bool {
			d := w.decide(ref, dp.Attributes())
			if d.drop || d.same || !apply(d, dp.Attributes()) {
				return d.drop
			}
			dp.MoveTo(w.target(ref, d).Histogram().DataPoints().AppendEmpty())
			return true
		})
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
			d := w.decide(ref, dp.Attributes())
			if d.drop || d.same || !apply(d, dp.Attributes()) {
				return d.drop
			}
			dp.MoveTo(w.target(ref, d).ExponentialHistogram().DataPoints().AppendEmpty())
			return true
		})
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().RemoveIf(func(dp pmetric.SummaryDataPoint) bool {
			d := w.decide(ref, dp.Attributes())
			if d.drop || d.same || !apply(d, dp.Attributes()) {
				return d.drop
			}
			dp.MoveTo(w.target(ref, d).Summary().DataPoints().AppendEmpty())
			return true
		})
	}
}

// target returns the metric a moved point goes to, creating it (and the copy
// of the resource and scope it lives in) on first use.
func (w *worker) target(ref *pointRef, d *decision) pmetric.Metric {
	t := target{scope: ref.scope, metric: ref.metric, name: d.rename}
	if d.res != nil {
		t.res = d.res.id
	}
	if m, ok := w.targets[t]; ok {
		return m
	}
	var dst pmetric.MetricSlice
	if d.res == nil {
		// Same resource and scope; appended after the scope's metrics have
		// all been relabeled, so a moved point is not relabeled twice.
		dst = w.renamed[ref.scope]
	} else {
		dst = w.movedScope(ref, d.res).Metrics()
	}
	m := dst.AppendEmpty()
	metricshape.EmptyLike(ref.m, m)
	if d.rename != "" {
		m.SetName(d.rename)
	}
	if d.toProm {
		m.Metadata().PutStr(promseries.MetadataType, string(ref.meta.Type))
	}
	if w.targets == nil {
		w.targets = map[target]pmetric.Metric{}
	}
	w.targets[t] = m
	return m
}

// movedScope returns, in the copy of ref's resource with edits e applied, the
// copy of ref's scope.
func (w *worker) movedScope(ref *pointRef, e *resEdit) pmetric.ScopeMetrics {
	rm, ok := w.moved[e.id]
	if !ok {
		rm = pmetric.NewResourceMetrics()
		ref.rm.Resource().CopyTo(rm.Resource())
		rm.SetSchemaUrl(ref.rm.SchemaUrl())
		attrs := rm.Resource().Attributes()
		for _, ed := range e.edits {
			if ed.del {
				attrs.Remove(ed.key)
			} else {
				attrs.PutStr(ed.key, ed.value)
			}
		}
		// One scope per scope of the original, filled as points arrive.
		src := ref.rm.ScopeMetrics()
		for j := 0; j < src.Len(); j++ {
			sm := rm.ScopeMetrics().AppendEmpty()
			src.At(j).Scope().CopyTo(sm.Scope())
			sm.SetSchemaUrl(src.At(j).SchemaUrl())
		}
		if w.moved == nil {
			w.moved = map[string]pmetric.ResourceMetrics{}
		}
		w.moved[e.id] = rm
		w.movedOrder = append(w.movedOrder, e.id)
	}
	return rm.ScopeMetrics().At(ref.scope)
}
