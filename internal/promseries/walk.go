package promseries

import (
	"math"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Reasons a point is not translated, as counted in Dropped.
const (
	DropEmptyName        = "empty_metric_name"
	DropScaleTooSmall    = "exponential_histogram_scale_below_-4"
	DropUnsupportedType  = "unsupported_metric_type"
	DropInvalidHistogram = "invalid_exponential_histogram"
)

// Dropped counts the points Walk could not translate, by reason.
type Dropped map[string]int

// Walk calls fn for every point of every series in md, in pdata order: one
// call per float sample (a classic histogram point gives its buckets, sum and
// count; a summary point its quantiles, sum and count) and one per native
// histogram. It stops at the first error fn returns.
func Walk(md pmetric.Metrics, opts Options, fn func(*Sample) error) (Dropped, error) {
	w := walker{
		opts:    opts,
		fn:      fn,
		names:   NewNamer(opts),
		dropped: Dropped{},
	}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		w.res = resourceLabels(rm.Resource(), opts, &w.lnamer, w.res[:0])
		w.set.setBase(w.res)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if err := w.metric(ms.At(k)); err != nil {
					return w.dropped, err
				}
			}
		}
	}
	return w.dropped, nil
}

type walker struct {
	opts   Options
	fn     func(*Sample) error
	names  *Namer
	lnamer otlptranslator.LabelNamer
	res    []labels.Label
	set    labelSet
	extra  [2]labels.Label
	// the bounds or quantiles of the last histogram or summary point, and
	// their label values
	bounds      []float64
	boundValues []string
	smp         Sample
	dropped     Dropped
}

// name returns the series (or family) name of m and its metadata.
func (w *walker) name(m pmetric.Metric) (string, Metadata, bool) { return w.names.MetricName(m) }

func (w *walker) metric(m pmetric.Metric) error {
	name, meta, prom := w.name(m)
	if name == "" {
		w.dropped[DropEmptyName] += DataPoints(m)
		return nil
	}
	w.smp.Meta = meta
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return w.numbers(name, m.Gauge().DataPoints(), prom, false)
	case pmetric.MetricTypeSum:
		delta := m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
		return w.numbers(name, m.Sum().DataPoints(), prom, delta)
	case pmetric.MetricTypeHistogram:
		return w.histograms(name, m.Histogram(), prom)
	case pmetric.MetricTypeSummary:
		return w.summaries(name, m.Summary().DataPoints(), prom)
	case pmetric.MetricTypeExponentialHistogram:
		return w.expHistograms(name, m.ExponentialHistogram(), prom)
	}
	w.dropped[DropUnsupportedType]++
	return nil
}

// point starts a sample for a data point: its labels without __name__ and
// the ones that vary per series (le, quantile), its time and flags.
func (w *walker) point(attrs pcommon.Map, prom bool, ts, start pcommon.Timestamp, delta bool) {
	w.set.reset()
	w.set.ls = attributeLabels(attrs, prom, &w.lnamer, w.set.ls)
	w.set.seal()
	w.smp.T, w.smp.StartT, w.smp.Delta = millis(ts), millis(start), delta
	w.smp.H, w.smp.Exemplars = nil, w.smp.Exemplars[:0]
}

// emit sends one float series: the point's labels plus name and, for a
// bucket or quantile, the label le or quantile with its value.
func (w *walker) emit(name string, v float64, stale bool, extra ...string) error {
	w.extra[0] = labels.Label{Name: model.MetricNameLabel, Value: name}
	n := 1
	if len(extra) == 2 { // le and quantile sort after __name__
		w.extra[1] = labels.Label{Name: extra[0], Value: extra[1]}
		n = 2
	}
	w.smp.Labels = w.set.build(w.extra[:n]...)
	w.smp.V = v
	if stale {
		w.smp.V = math.Float64frombits(value.StaleNaN)
	}
	return w.fn(&w.smp)
}

func (w *walker) numbers(name string, dps pmetric.NumberDataPointSlice, prom, delta bool) error {
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		w.point(dp.Attributes(), prom, dp.Timestamp(), dp.StartTimestamp(), delta)
		w.exemplars(dp.Exemplars(), math.Inf(1), math.Inf(-1))
		v := dp.DoubleValue()
		if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			v = float64(dp.IntValue())
		}
		if err := w.emit(name, v, dp.Flags().NoRecordedValue()); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) histograms(name string, h pmetric.Histogram, prom bool) error {
	delta := h.AggregationTemporality() == pmetric.AggregationTemporalityDelta
	bucket, sum, count := name+"_bucket", name+"_sum", name+"_count" // once, not per point
	dps := h.DataPoints()
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		w.point(dp.Attributes(), prom, dp.Timestamp(), dp.StartTimestamp(), delta)
		stale := dp.Flags().NoRecordedValue()
		bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
		les := w.formatted(bounds.Len(), bounds.At)
		var cum uint64
		lower := math.Inf(-1)
		for b := 0; b < bounds.Len(); b++ {
			if b < counts.Len() { // a stale point has bounds but no counts
				cum += counts.At(b)
			}
			upper := bounds.At(b)
			w.exemplars(dp.Exemplars(), upper, lower)
			if err := w.emit(bucket, float64(cum), stale, model.BucketLabel, les[b]); err != nil {
				return err
			}
			lower = upper
		}
		w.exemplars(dp.Exemplars(), math.Inf(1), lower)
		if err := w.emit(bucket, float64(dp.Count()), stale, model.BucketLabel, "+Inf"); err != nil {
			return err
		}
		w.smp.Exemplars = w.smp.Exemplars[:0]
		if dp.HasSum() {
			if err := w.emit(sum, dp.Sum(), stale); err != nil {
				return err
			}
		}
		if err := w.emit(count, float64(dp.Count()), stale); err != nil {
			return err
		}
	}
	return nil
}

// formatted returns the n values at(0..n-1) formatted as le or quantile
// label values. A histogram's points mostly share their bounds, a summary's
// their quantiles, so the last values formatted are kept and reused.
func (w *walker) formatted(n int, at func(int) float64) []string {
	same := len(w.bounds) == n
	for i := 0; same && i < n; i++ {
		same = w.bounds[i] == at(i) // a NaN is formatted anew: harmless
	}
	if !same {
		w.bounds, w.boundValues = w.bounds[:0], w.boundValues[:0]
		for i := 0; i < n; i++ {
			w.bounds = append(w.bounds, at(i))
			w.boundValues = append(w.boundValues, labels.FormatOpenMetricsFloat(at(i)))
		}
	}
	return w.boundValues
}

func (w *walker) summaries(name string, dps pmetric.SummaryDataPointSlice, prom bool) error {
	sum, count := name+"_sum", name+"_count"
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		w.point(dp.Attributes(), prom, dp.Timestamp(), dp.StartTimestamp(), false)
		stale := dp.Flags().NoRecordedValue()
		qs := dp.QuantileValues()
		quantiles := w.formatted(qs.Len(), func(i int) float64 { return qs.At(i).Quantile() })
		for q := 0; q < qs.Len(); q++ {
			if err := w.emit(name, qs.At(q).Value(), stale, model.QuantileLabel, quantiles[q]); err != nil {
				return err
			}
		}
		if err := w.emit(sum, dp.Sum(), stale); err != nil {
			return err
		}
		if err := w.emit(count, float64(dp.Count()), stale); err != nil {
			return err
		}
	}
	return nil
}

// exemplars attaches the point's exemplars whose value lies in (lower, upper]:
// for a histogram, each bucket carries the exemplars that fell into it.
func (w *walker) exemplars(exs pmetric.ExemplarSlice, upper, lower float64) {
	w.smp.Exemplars = w.smp.Exemplars[:0]
	for i := 0; i < exs.Len(); i++ {
		e := exs.At(i)
		v := e.DoubleValue()
		if e.ValueType() == pmetric.ExemplarValueTypeInt {
			v = float64(e.IntValue())
		}
		if !(v > lower && v <= upper) && !(math.IsInf(upper, 1) && math.IsInf(lower, -1)) {
			continue
		}
		var b labels.ScratchBuilder
		e.FilteredAttributes().Range(func(k string, val pcommon.Value) bool {
			b.Add(k, val.AsString())
			return true
		})
		if tid := e.TraceID(); !tid.IsEmpty() {
			b.Add("trace_id", tid.String())
		}
		if sid := e.SpanID(); !sid.IsEmpty() {
			b.Add("span_id", sid.String())
		}
		b.Sort()
		w.smp.Exemplars = append(w.smp.Exemplars, exemplar.Exemplar{
			Labels: b.Labels(), Value: v, Ts: millis(e.Timestamp()), HasTs: e.Timestamp() != 0,
		})
	}
}

func millis(ts pcommon.Timestamp) int64 { return int64(ts) / 1e6 }

// DataPoints counts the data points of a metric, whatever its type.
func DataPoints(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
