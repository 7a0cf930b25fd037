package promseries

import (
	"math"
	"slices"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Metrics returns everything added since the last call as pdata: a resource
// per (job, instance), a metric per family, and empties the builder.
func (b *Builder) Metrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, r := range b.order {
		rm := md.ResourceMetrics().AppendEmpty()
		setResource(rm.Resource().Attributes(), r)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(b.scope)
		for _, m := range r.order {
			emitMetric(sm.Metrics(), m)
		}
	}
	b.reset()
	return md
}

// setResource puts job and instance where the OpenTelemetry specification
// says; a job "ns/name" splits at its first "/" (Walk joins it back).
func setResource(attrs pcommon.Map, r *resourceAcc) {
	if r.hasJob {
		if i := indexByte(r.job, '/'); i > 0 {
			attrs.PutStr(attrServiceNamespace, r.job[:i])
			attrs.PutStr(attrServiceName, r.job[i+1:])
		} else {
			attrs.PutStr(attrServiceName, r.job)
		}
	}
	if r.hasInst {
		attrs.PutStr(attrServiceInstanceID, r.instance)
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func newMetric(ms pmetric.MetricSlice, name string, meta Metadata) pmetric.Metric {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetDescription(meta.Help)
	m.SetUnit(meta.Unit)
	typ := meta.Type
	if typ == "" {
		typ = model.MetricTypeUnknown
	}
	m.Metadata().PutStr(MetadataType, string(typ))
	return m
}

func emitMetric(ms pmetric.MetricSlice, m *metricAcc) {
	switch {
	case len(m.order) > 0 && m.order[0].native:
		emitNative(ms, m)
	case m.meta.Type == model.MetricTypeHistogram && m.grouped:
		emitGrouped(ms, m, histogramExact, fillHistogram)
	case m.meta.Type == model.MetricTypeSummary && m.grouped:
		emitGrouped(ms, m, summaryExact, fillSummary)
	default:
		emitNumbers(ms, m.meta.Family, m.meta, m.order)
	}
}

// emitNumbers writes plain series as a Sum (counters) or a Gauge.
func emitNumbers(ms pmetric.MetricSlice, name string, meta Metadata, points []*pointAcc) {
	m := newMetric(ms, name, meta)
	var dps pmetric.NumberDataPointSlice
	if meta.Type == model.MetricTypeCounter {
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dps = s.DataPoints()
	} else {
		dps = m.SetEmptyGauge().DataPoints()
	}
	dps.EnsureCapacity(len(points))
	for _, p := range points {
		dp := dps.AppendEmpty()
		attributes(p.ls, false, dp.Attributes())
		setTimes(dp, p.t, p.startT)
		setValue(dp, p.v)
		addExemplars(dp.Exemplars(), p)
	}
}

// timed is any pdata data point. setTimes takes it as a type parameter: an
// interface argument would move every data point to the heap.
type timed interface {
	SetTimestamp(pcommon.Timestamp)
	SetStartTimestamp(pcommon.Timestamp)
}

func setTimes[P timed](dp P, t, startT int64) {
	dp.SetTimestamp(nanos(t))
	if startT != 0 {
		dp.SetStartTimestamp(nanos(startT))
	}
}

func setValue(dp pmetric.NumberDataPoint, v float64) {
	if isStale(v) {
		dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		return
	}
	dp.SetDoubleValue(v)
}

// emitGrouped writes the exact points of a histogram or summary family in
// their shape, and the rest as raw gauges named like their series.
func emitGrouped(ms pmetric.MetricSlice, m *metricAcc, exact func(*pointAcc) bool, fill func(pmetric.Metric, []*pointAcc)) {
	var shaped []*pointAcc
	raw := map[string][]*pointAcc{}
	var rawNames []string
	for _, p := range m.order {
		if exact(p) {
			shaped = append(shaped, p)
			continue
		}
		for _, r := range p.raw {
			if _, ok := raw[r.name]; !ok {
				rawNames = append(rawNames, r.name)
			}
			raw[r.name] = append(raw[r.name], &pointAcc{ls: r.ls, t: r.t, startT: r.startT, v: r.v, set: true})
		}
	}
	if len(shaped) > 0 {
		fill(newMetric(ms, m.meta.Family, m.meta), shaped)
	}
	for _, n := range rawNames {
		meta := m.meta
		meta.Family = n
		emitNumbers(ms, n, meta, raw[n])
	}
}

// exactCount reports whether v is a count pdata holds exactly.
func exactCount(v float64) bool { return v >= 0 && v == math.Trunc(v) && v < 1<<53 }

// canonical reports whether a le or quantile label value reads back as it is
// written when Walk formats it.
func canonical(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && labels.FormatOpenMetricsFloat(f) == s
}

// allStale reports whether every series of the point is stale (1) or none (0);
// -1 when mixed, which no shape can carry.
func staleness(p *pointAcc) int {
	stale := 0
	for _, r := range p.raw {
		if isStale(r.v) {
			stale++
		}
	}
	switch stale {
	case 0:
		return 0
	case len(p.raw):
		return 1
	}
	return -1
}

// histogramExact: buckets with canonical le, ascending and cumulative with
// integer counts, +Inf present and equal to _count, _sum present, one time,
// one created timestamp.
func histogramExact(p *pointAcc) bool {
	st := staleness(p)
	if st < 0 || !p.hasSum || !p.hasCount || len(p.buckets) == 0 || p.native || p.set || !sameStart(p) {
		return false
	}
	slices.SortStableFunc(p.buckets, func(a, b bucket) int {
		switch x, y := le(a.le), le(b.le); {
		case x < y:
			return -1
		case y < x:
			return 1
		}
		return 0 // equal, or NaN: kept in place
	})
	if p.buckets[len(p.buckets)-1].le != "+Inf" {
		return false
	}
	if st == 1 {
		return true
	}
	prev := 0.0
	for i, bk := range p.buckets {
		if _, ok := canonical(bk.le); !ok && bk.le != "+Inf" {
			return false
		}
		if i > 0 && bk.le == p.buckets[i-1].le {
			return false
		}
		if !exactCount(bk.v) || bk.v < prev {
			return false
		}
		prev = bk.v
	}
	return p.count == prev && exactCount(p.count)
}

func le(s string) float64 {
	if s == "+Inf" {
		return math.Inf(1)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

func sameStart(p *pointAcc) bool {
	for _, r := range p.raw {
		if r.startT != p.raw[0].startT {
			return false
		}
	}
	return true
}

func fillHistogram(m pmetric.Metric, points []*pointAcc) {
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, p := range points {
		dp := h.DataPoints().AppendEmpty()
		attributes(p.ls, true, dp.Attributes())
		setTimes(dp, p.t, p.startT)
		if staleness(p) == 1 {
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			dp.SetSum(0) // present, so its series is marked stale too
			for _, bk := range p.buckets[:len(p.buckets)-1] {
				dp.ExplicitBounds().Append(le(bk.le))
			}
			continue
		}
		prev := 0.0
		for _, bk := range p.buckets {
			if bk.le != "+Inf" {
				dp.ExplicitBounds().Append(le(bk.le))
			}
			dp.BucketCounts().Append(uint64(bk.v - prev))
			prev = bk.v
		}
		dp.SetCount(uint64(p.count))
		dp.SetSum(p.sum)
		addExemplars(dp.Exemplars(), p)
	}
}

// summaryExact: canonical quantiles, _sum and integer _count present, one
// created timestamp.
func summaryExact(p *pointAcc) bool {
	st := staleness(p)
	if st < 0 || !p.hasSum || !p.hasCount || p.native || p.set || !sameStart(p) {
		return false
	}
	for i, q := range p.buckets {
		if _, ok := canonical(q.le); !ok {
			return false
		}
		if i > 0 && q.le == p.buckets[i-1].le {
			return false
		}
	}
	return st == 1 || exactCount(p.count)
}

func fillSummary(m pmetric.Metric, points []*pointAcc) {
	dps := m.SetEmptySummary().DataPoints()
	for _, p := range points {
		dp := dps.AppendEmpty()
		attributes(p.ls, true, dp.Attributes())
		setTimes(dp, p.t, p.startT)
		for _, q := range p.buckets {
			qv := dp.QuantileValues().AppendEmpty()
			qv.SetQuantile(le(q.le))
			qv.SetValue(q.v)
		}
		if staleness(p) == 1 {
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			continue
		}
		dp.SetSum(p.sum)
		dp.SetCount(uint64(p.count))
	}
}

func addExemplars(dst pmetric.ExemplarSlice, p *pointAcc) {
	for _, e := range p.exemplars {
		ex := dst.AppendEmpty()
		ex.SetDoubleValue(e.Value)
		if e.HasTs {
			ex.SetTimestamp(nanos(e.Ts))
		}
		e.Labels.Range(func(l labels.Label) { ex.FilteredAttributes().PutStr(l.Name, l.Value) })
	}
}
