package promseries

import (
	"math"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Native histogram schemas Prometheus accepts for exponential buckets.
const (
	minSchema = -4
	maxSchema = 8
)

// MaxDenseBuckets bounds the buckets of one side of a native histogram once
// written densely, as OpenTelemetry holds them: Prometheus' spans can leave
// gaps of any size, which would take that much memory to fill with zeros.
// Schema 8 across 1e-9 to 1e9 is some 15,000 buckets.
const MaxDenseBuckets = 1 << 16

// Why a native histogram cannot travel as an exponential histogram.
const (
	NativeCustomBuckets = "native_histogram_custom_buckets"
	NativeSchema        = "native_histogram_schema_out_of_range"
	NativeFractional    = "float_histogram_fractional_counts"
	NativeTooWide       = "native_histogram_too_wide"
)

// nativeUnfit says why fh cannot be written as an exponential histogram
// point, or "".
func nativeUnfit(fh *histogram.FloatHistogram) string {
	switch {
	case fh.UsesCustomBuckets():
		return NativeCustomBuckets
	case fh.Schema < minSchema || fh.Schema > maxSchema:
		return NativeSchema
	case !wholeCounts(fh):
		return NativeFractional
	case denseWidth(fh.PositiveSpans) > MaxDenseBuckets || denseWidth(fh.NegativeSpans) > MaxDenseBuckets:
		return NativeTooWide
	}
	return ""
}

// denseWidth is how many buckets the spans cover from first to last.
func denseWidth(spans []histogram.Span) int64 {
	var idx, first, last int64
	seen := false
	for _, s := range spans {
		idx += int64(s.Offset)
		if s.Length == 0 {
			continue
		}
		if !seen {
			first, seen = idx, true
		}
		idx += int64(s.Length)
		last = idx - 1
	}
	if !seen {
		return 0
	}
	return last - first + 1
}

func (w *walker) expHistograms(name string, h pmetric.ExponentialHistogram, prom bool) error {
	delta := h.AggregationTemporality() == pmetric.AggregationTemporalityDelta
	dps := h.DataPoints()
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		nh, reason := nativeHistogram(dp)
		if reason != "" {
			w.dropped[reason]++
			continue
		}
		w.point(dp.Attributes(), prom, dp.Timestamp(), dp.StartTimestamp(), delta)
		w.exemplars(dp.Exemplars(), math.Inf(1), math.Inf(-1))
		if delta {
			nh.CounterResetHint = histogram.GaugeType
		}
		w.smp.Labels = w.set.build(labels.Label{Name: model.MetricNameLabel, Value: name})
		w.smp.H = nh
		if err := w.fn(&w.smp); err != nil {
			return err
		}
		w.smp.H = nil
	}
	return nil
}

// nativeHistogram converts an exponential histogram point to a Prometheus
// integer native histogram. OpenTelemetry bucket i of scale s covers
// (base^i, base^(i+1)]; Prometheus bucket i of the same schema covers
// (base^(i-1), base^i], hence the +1. Scales above 8 are merged down to 8;
// scales below -4 have no Prometheus schema and are dropped (reason returned).
func nativeHistogram(dp pmetric.ExponentialHistogramDataPoint) (*histogram.Histogram, string) {
	scale := dp.Scale()
	if scale < minSchema {
		return nil, DropScaleTooSmall
	}
	shift := int32(0)
	if scale > maxSchema {
		shift = scale - maxSchema
		scale = maxSchema
	}
	h := &histogram.Histogram{
		Schema:        scale,
		ZeroThreshold: dp.ZeroThreshold(),
		ZeroCount:     dp.ZeroCount(),
		Count:         dp.Count(),
		Sum:           dp.Sum(),
	}
	if !dp.HasSum() {
		h.Sum = 0
	}
	h.PositiveSpans, h.PositiveBuckets = spansAndDeltas(dp.Positive(), shift)
	h.NegativeSpans, h.NegativeBuckets = spansAndDeltas(dp.Negative(), shift)
	if dp.Flags().NoRecordedValue() {
		h.Sum = math.Float64frombits(value.StaleNaN)
	}
	if err := h.Validate(); err != nil && !dp.Flags().NoRecordedValue() {
		return nil, DropInvalidHistogram
	}
	return h, ""
}

// spansAndDeltas turns dense OpenTelemetry buckets into Prometheus spans and
// delta-encoded counts, merging 2^shift neighbours when downscaling and
// leaving out empty buckets.
func spansAndDeltas(b pmetric.ExponentialHistogramDataPointBuckets, shift int32) ([]histogram.Span, []int64) {
	counts := b.BucketCounts()
	var (
		spans   []histogram.Span
		deltas  []int64
		prevIdx int32
		prevCnt int64
		haveIdx bool
		curIdx  int32
		curCnt  uint64
		haveCur bool
	)
	flush := func() {
		if !haveCur || curCnt == 0 {
			return
		}
		idx := curIdx + 1 // OpenTelemetry index -> Prometheus index
		switch {
		case !haveIdx:
			spans = append(spans, histogram.Span{Offset: idx, Length: 1})
		case idx == prevIdx+1:
			spans[len(spans)-1].Length++
		default:
			spans = append(spans, histogram.Span{Offset: idx - prevIdx - 1, Length: 1})
		}
		deltas = append(deltas, int64(curCnt)-prevCnt)
		prevIdx, prevCnt, haveIdx = idx, int64(curCnt), true
	}
	for i := 0; i < counts.Len(); i++ {
		idx := (b.Offset() + int32(i)) >> shift // arithmetic shift: floor, also for negatives
		if haveCur && idx != curIdx {
			flush()
			curCnt = 0
		}
		curIdx, haveCur = idx, true
		curCnt += counts.At(i)
	}
	flush()
	return spans, deltas
}

// emitNative writes native histogram points as an ExponentialHistogram: the
// inverse of nativeHistogram.
func emitNative(ms pmetric.MetricSlice, m *metricAcc) {
	out := newMetric(ms, m.meta.Family, m.meta)
	eh := out.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, p := range m.order {
		fh := p.fh
		if fh == nil {
			continue // a float sample among native histograms of one name: no exponential histogram point holds it
		}
		dp := eh.DataPoints().AppendEmpty()
		attributes(p.ls, false, dp.Attributes())
		setTimes(dp, p.t, p.startT)
		dp.SetScale(fh.Schema)
		dp.SetZeroThreshold(fh.ZeroThreshold)
		dp.SetZeroCount(uint64(fh.ZeroCount))
		dp.SetCount(uint64(fh.Count))
		if value.IsStaleNaN(fh.Sum) {
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		} else {
			dp.SetSum(fh.Sum)
		}
		denseBuckets(dp.Positive(), fh.PositiveSpans, fh.PositiveBuckets)
		denseBuckets(dp.Negative(), fh.NegativeSpans, fh.NegativeBuckets)
		addExemplars(dp.Exemplars(), p)
	}
}

func wholeCounts(fh *histogram.FloatHistogram) bool {
	if !exactCount(fh.Count) || !exactCount(fh.ZeroCount) {
		return false
	}
	for _, bs := range [][]float64{fh.PositiveBuckets, fh.NegativeBuckets} {
		for _, c := range bs {
			if !exactCount(c) {
				return false
			}
		}
	}
	return true
}

// denseBuckets writes Prometheus spans of absolute counts as OpenTelemetry's
// offset and dense counts; Prometheus index i is OpenTelemetry index i-1.
func denseBuckets(dst pmetric.ExponentialHistogramDataPointBuckets, spans []histogram.Span, counts []float64) {
	if len(counts) == 0 {
		return
	}
	idx, first, ci := int32(0), true, 0
	for _, s := range spans {
		idx += s.Offset
		for j := uint32(0); j < s.Length; j++ {
			if first {
				dst.SetOffset(idx - 1)
				first = false
			}
			for int32(dst.BucketCounts().Len()) < idx-1-dst.Offset() {
				dst.BucketCounts().Append(0)
			}
			dst.BucketCounts().Append(uint64(counts[ci]))
			ci++
			idx++
		}
	}
}
