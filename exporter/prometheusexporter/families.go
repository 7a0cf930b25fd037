package prometheusexporter

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sluicehq/sluice/internal/promseries"
)

// The store holds flat series, as Walk gives them and remote write sends
// them; an exposition holds metric families, a histogram's buckets, sum
// and count in one metric. families groups them back: the series of a
// classic histogram or summary (by family name and the labels besides le
// or quantile) and a native histogram of the same name and labels become
// one metric, every other series a metric of its own name. A group that
// cannot be written as one metric without inventing a value (no _sum, no
// +Inf bucket, a fractional bucket count) is written series by series as
// `unknown`, under its exact names, so nothing is bent to fit.

// group is one metric of a histogram or summary family.
type group struct {
	family    string
	summary   bool
	meta      promseries.Metadata
	labels    []labels.Label // without __name__, le, quantile
	members   []*series      // every series of the group, for the fallback
	buckets   []*dto.Bucket
	quantiles []*dto.Quantile
	sum       *series
	count     *series
	native    *series
	t         int64
}

type familyKey struct {
	name string
	typ  dto.MetricType
}

// families renders the series as metric families sorted by name;
// timestamps says whether samples carry their own time.
func families(ss []*series, timestamps bool) []*dto.MetricFamily {
	fams := map[familyKey]*dto.MetricFamily{}
	family := func(name string, typ dto.MetricType, meta promseries.Metadata) *dto.MetricFamily {
		k := familyKey{name, typ}
		f, ok := fams[k]
		if !ok {
			f = &dto.MetricFamily{Name: proto.String(name), Type: typ.Enum()}
			if meta.Help != "" {
				f.Help = proto.String(meta.Help)
			}
			if u := meta.Unit; u != "" && strings.HasSuffix(strings.TrimSuffix(name, "_total"), "_"+u) {
				// OpenMetrics requires the unit to end the name; other
				// units are left out rather than fail the scrape.
				f.Unit = proto.String(u)
			}
			fams[k] = f
		}
		return f
	}
	// The messages point into the series, which are never changed once
	// stored, and come from slabs: a scrape of many series allocates a
	// few large blocks rather than a handful of objects per series.
	var (
		pairs    pairSlab
		metrics  slab[dto.Metric]
		counters slab[dto.Counter]
		gauges   slab[dto.Gauge]
		untyped  slab[dto.Untyped]
	)
	single := func(s *series, typ dto.MetricType) {
		m := metrics.next()
		m.Label = pairs.of(s.labels, "")
		if timestamps {
			m.TimestampMs = &s.t
		}
		switch typ {
		case dto.MetricType_COUNTER:
			m.Counter = counters.next()
			m.Counter.Value, m.Counter.Exemplar = &s.v, lastExemplar(s.exemplars)
		case dto.MetricType_GAUGE:
			m.Gauge = gauges.next()
			m.Gauge.Value = &s.v
		default:
			m.Untyped = untyped.next()
			m.Untyped.Value = &s.v
		}
		f := family(s.name(), typ, s.meta)
		f.Metric = append(f.Metric, m)
	}

	groups := map[string]*group{}
	var order []*group
	for _, s := range ss {
		g, part := groupOf(s, groups)
		if g == nil {
			single(s, simpleType(s.meta.Type))
			continue
		}
		if g.members == nil {
			order = append(order, g)
		}
		g.members = append(g.members, s)
		g.t = max(g.t, s.t)
		g.add(s, part)
	}
	for _, g := range order {
		m, typ, ok := g.metric(&pairs)
		if !ok {
			for _, s := range g.members {
				single(s, dto.MetricType_UNTYPED)
			}
			continue
		}
		if timestamps {
			m.TimestampMs = &g.t
		}
		f := family(g.family, typ, g.meta)
		f.Metric = append(f.Metric, m)
	}

	// The series came sorted (store.snapshot), so each family's metrics are.
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int {
		if c := strings.Compare(a.GetName(), b.GetName()); c != 0 {
			return c
		}
		return int(a.GetType()) - int(b.GetType())
	})
	return out
}

// simpleType is the exposition type of a series that is its own metric.
// Info and stateset series are gauges in the formats without those types
// (as the OpenMetrics specification says), a gauge histogram's series
// gauges under their exact names.
func simpleType(t model.MetricType) dto.MetricType {
	switch t {
	case model.MetricTypeCounter:
		return dto.MetricType_COUNTER
	case model.MetricTypeGauge, model.MetricTypeInfo, model.MetricTypeStateset, model.MetricTypeGaugeHistogram:
		return dto.MetricType_GAUGE
	}
	return dto.MetricType_UNTYPED
}

// Parts of a group a series can be.
const (
	partBucket = iota
	partQuantile
	partSum
	partCount
	partNative
)

// groupOf returns the group s belongs to and which part of it s is, or nil
// when s is a metric of its own.
func groupOf(s *series, groups map[string]*group) (*group, int) {
	name := s.name()
	typ := s.meta.Type
	var family, extra string
	var part int
	switch {
	case s.h != nil:
		family, part = name, partNative
	case typ == model.MetricTypeHistogram || typ == model.MetricTypeSummary:
		family = promseries.FamilyName(name, typ)
		switch {
		case family != name && strings.HasSuffix(name, "_bucket"):
			part, extra = partBucket, model.BucketLabel
		case family != name && strings.HasSuffix(name, "_sum"):
			part = partSum
		case family != name:
			part = partCount
		case typ == model.MetricTypeSummary:
			part, extra = partQuantile, model.QuantileLabel
		default:
			return nil, 0 // a histogram-typed series that is not part of one
		}
		if extra != "" && labelValue(s.labels, extra) == "" {
			return nil, 0
		}
	default:
		return nil, 0
	}
	summary := typ == model.MetricTypeSummary && s.h == nil
	ls := labelPairsWithout(s.labels, extra)
	var kb strings.Builder
	kb.WriteString(family)
	if summary {
		kb.WriteString("\xffsummary")
	}
	for _, l := range ls {
		kb.WriteString("\xff" + l.Name + "\xff" + l.Value)
	}
	k := kb.String()
	g, ok := groups[k]
	if !ok {
		g = &group{family: family, summary: summary, meta: s.meta, labels: ls}
		groups[k] = g
	}
	if g.meta.Help == "" {
		g.meta = s.meta
	}
	return g, part
}

func (g *group) add(s *series, part int) {
	switch part {
	case partBucket:
		le, err := strconv.ParseFloat(labelValue(s.labels, model.BucketLabel), 64)
		if err != nil {
			g.members = append(g.members, nil) // marks the group unfit
			return
		}
		b := &dto.Bucket{UpperBound: proto.Float64(le), Exemplar: lastExemplar(s.exemplars)}
		if c, ok := whole(s.v); ok {
			b.CumulativeCount = proto.Uint64(c)
		} else {
			g.members = append(g.members, nil)
		}
		g.buckets = append(g.buckets, b)
	case partQuantile:
		q, err := strconv.ParseFloat(labelValue(s.labels, model.QuantileLabel), 64)
		if err != nil {
			g.members = append(g.members, nil)
			return
		}
		g.quantiles = append(g.quantiles, &dto.Quantile{Quantile: proto.Float64(q), Value: proto.Float64(s.v)})
	case partSum:
		g.sum = s
	case partCount:
		g.count = s
	case partNative:
		g.native = s
	}
}

// metric builds the group's metric, or reports that it cannot be one.
func (g *group) metric(pairs *pairSlab) (*dto.Metric, dto.MetricType, bool) {
	if slices.Contains(g.members, nil) {
		return nil, 0, false
	}
	m := &dto.Metric{Label: pairs.of(g.labels, "")}
	if g.summary {
		if g.sum == nil || g.count == nil {
			return nil, 0, false
		}
		c, ok := whole(g.count.v)
		if !ok {
			return nil, 0, false
		}
		slices.SortFunc(g.quantiles, func(a, b *dto.Quantile) int { return cmpFloat(a.GetQuantile(), b.GetQuantile()) })
		m.Summary = &dto.Summary{SampleCount: proto.Uint64(c), SampleSum: proto.Float64(g.sum.v), Quantile: g.quantiles}
		return m, dto.MetricType_SUMMARY, true
	}
	h := &dto.Histogram{}
	if g.native != nil {
		nativeFields(h, g.native.h)
		h.Exemplars = exemplars(g.native.exemplars)
	}
	classic := len(g.buckets) > 0 || g.sum != nil || g.count != nil
	if classic {
		slices.SortFunc(g.buckets, func(a, b *dto.Bucket) int { return cmpFloat(a.GetUpperBound(), b.GetUpperBound()) })
		if g.sum == nil || g.count == nil || len(g.buckets) == 0 || !math.IsInf(g.buckets[len(g.buckets)-1].GetUpperBound(), 1) {
			return nil, 0, false
		}
		c, ok := whole(g.count.v)
		if !ok || c != g.buckets[len(g.buckets)-1].GetCumulativeCount() {
			return nil, 0, false
		}
		if g.native != nil && (c != g.native.h.Count || g.sum.v != g.native.h.Sum) {
			return nil, 0, false // two histograms that disagree: shown apart
		}
		h.Bucket, h.SampleCount, h.SampleSum = g.buckets, proto.Uint64(c), proto.Float64(g.sum.v)
	}
	m.Histogram = h
	return m, dto.MetricType_HISTOGRAM, true
}

// nativeFields writes a native histogram into h. The store's histograms
// are integer histograms with delta-encoded buckets, the encoding the
// protobuf exposition uses too.
func nativeFields(h *dto.Histogram, nh *histogram.Histogram) {
	h.SampleCount = proto.Uint64(nh.Count)
	h.SampleSum = proto.Float64(nh.Sum)
	h.Schema = proto.Int32(nh.Schema)
	h.ZeroThreshold = proto.Float64(nh.ZeroThreshold)
	h.ZeroCount = proto.Uint64(nh.ZeroCount)
	h.PositiveSpan, h.PositiveDelta = spans(nh.PositiveSpans), nh.PositiveBuckets
	h.NegativeSpan, h.NegativeDelta = spans(nh.NegativeSpans), nh.NegativeBuckets
	if len(h.PositiveSpan)+len(h.NegativeSpan) == 0 {
		// A histogram with no populated bucket still has to read as
		// native: client_golang marks it with one empty span, and
		// scrapers look for that.
		h.PositiveSpan = []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(0)}}
	}
}

func spans(in []histogram.Span) []*dto.BucketSpan {
	out := make([]*dto.BucketSpan, len(in))
	for i, s := range in {
		out[i] = &dto.BucketSpan{Offset: proto.Int32(s.Offset), Length: proto.Uint32(s.Length)}
	}
	return out
}

// maxExemplarRunes is OpenMetrics' limit on an exemplar's labels (names and
// values together); a longer one would fail the whole scrape.
const maxExemplarRunes = 128

func exemplarOf(e exemplar.Exemplar) *dto.Exemplar {
	n := 0
	pairs := make([]*dto.LabelPair, 0, e.Labels.Len())
	e.Labels.Range(func(l labels.Label) {
		n += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value)
		pairs = append(pairs, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
	})
	if n > maxExemplarRunes {
		return nil
	}
	out := &dto.Exemplar{Label: pairs, Value: proto.Float64(e.Value)}
	if e.HasTs {
		out.Timestamp = timestamppb.New(timeOfMillis(e.Ts))
	}
	return out
}

// lastExemplar is the newest of a series' exemplars (the last of those
// with the newest time): a counter or bucket carries one.
func lastExemplar(exs []exemplar.Exemplar) *dto.Exemplar {
	var best *dto.Exemplar
	var bestTs int64
	for _, e := range exs {
		if d := exemplarOf(e); d != nil && (best == nil || e.Ts >= bestTs) {
			best, bestTs = d, e.Ts
		}
	}
	return best
}

func exemplars(exs []exemplar.Exemplar) []*dto.Exemplar {
	var out []*dto.Exemplar
	for _, e := range exs {
		if d := exemplarOf(e); d != nil {
			out = append(out, d)
		}
	}
	return out
}
