package promseries

import (
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Builder turns Prometheus samples — one scrape, or one remote-write push —
// into pdata as the package documentation describes, so that Walk gives back
// exactly the series that went in. Add samples in any order; Metrics returns
// the result and empties the builder.
type Builder struct {
	scope      string
	meta       map[string]Metadata
	resources  map[resourceKey]*resourceAcc
	order      []*resourceAcc
	last       *resourceAcc // of the previous sample: pushes come series by series of one target
	lastMetric *metricAcc   // of the previous sample, in last: a scrape gives a family's series together
	hashBuf    []byte
	slab       []pointAcc // points are allocated from here, a chunk at a time
}

// resourceKey tells apart a job or instance label that is empty from one that
// is absent.
type resourceKey struct {
	job, instance   string
	hasJob, hasInst bool
}

// NewBuilder returns a builder whose metrics carry the instrumentation scope
// name scope (the receiver's import path, say).
func NewBuilder(scope string) *Builder {
	b := &Builder{scope: scope}
	b.reset()
	return b
}

func (b *Builder) reset() {
	b.meta = map[string]Metadata{}
	b.resources = map[resourceKey]*resourceAcc{}
	b.order = nil
	b.last = nil
	b.lastMetric = nil
	b.slab = nil // a fresh chunk next time: the old one is dropped with its points
}

// SetMetadata records what is known of a family: its type, help and unit.
// Without metadata a series is of type unknown and travels as a gauge.
func (b *Builder) SetMetadata(family string, m Metadata) {
	m.Family = family
	b.meta[family] = m
}

// family resolves the family of a series name and the role of the series in
// it: "" for a plain series, or "_bucket", "_sum", "_count", "quantile".
func (b *Builder) family(name string, ls labels.Labels) (Metadata, string) {
	if m, ok := b.meta[name]; ok {
		if m.Type == model.MetricTypeSummary && ls.Has(model.QuantileLabel) {
			return m, "quantile"
		}
		if m.Type != model.MetricTypeHistogram && m.Type != model.MetricTypeSummary {
			return m, ""
		}
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count", "_total"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		m, ok := b.meta[base]
		if !ok {
			continue
		}
		switch {
		case m.Type == model.MetricTypeHistogram && suffix != "_total":
			if suffix == "_bucket" && !ls.Has(model.BucketLabel) {
				break
			}
			return m, suffix
		case m.Type == model.MetricTypeSummary && (suffix == "_sum" || suffix == "_count"):
			return m, suffix
		case m.Type == model.MetricTypeCounter && suffix == "_total":
			m.Family = name // an OpenMetrics counter family: the series keeps its _total name
			return m, ""
		}
	}
	if m, ok := b.meta[name]; ok {
		return m, "" // e.g. a histogram family's own name on a plain series
	}
	return Metadata{Family: name, Type: model.MetricTypeUnknown}, ""
}

// Add records a float sample (v may be StaleNaN) of the series ls at time t
// (ms); startT is its created timestamp in ms, 0 when unknown.
func (b *Builder) Add(ls labels.Labels, t int64, v float64, startT int64) {
	name := ls.Get(model.MetricNameLabel)
	meta, role := b.family(name, ls)
	p := b.point(ls, name, meta, role != "", t)
	if role != "" {
		// Kept for a histogram or summary point that turns out to have
		// no exact shape: its series then travel as they came.
		p.raw = append(p.raw, rawSample{name: name, ls: ls, t: t, v: v, startT: startT})
	}
	if startT != 0 {
		p.startT = startT
	}
	switch role {
	case "":
		p.v, p.set = v, true
	case "_bucket":
		p.buckets = append(p.buckets, bucket{le: ls.Get(model.BucketLabel), v: v})
	case "quantile":
		p.buckets = append(p.buckets, bucket{le: ls.Get(model.QuantileLabel), v: v})
	case "_sum":
		p.sum, p.hasSum = v, true
	case "_count":
		p.count, p.hasCount = v, true
	}
}

// AddHistogram records a native histogram sample (integer or float, one of
// h and fh set) of the series ls at time t. One that pdata's exponential
// histogram cannot carry is left out, and the reason (Native*) returned.
func (b *Builder) AddHistogram(ls labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram, startT int64) string {
	f := fh
	if f == nil {
		f = h.ToFloat(nil)
	}
	if reason := nativeUnfit(f); reason != "" {
		return reason
	}
	name := ls.Get(model.MetricNameLabel)
	meta, _ := b.family(name, ls)
	p := b.point(ls, name, meta, false, t)
	p.native, p.fh = true, f
	if startT != 0 {
		p.startT = startT
	}
	return ""
}

// AddExemplar attaches an exemplar to the point of series ls at time t, if
// that point was added.
func (b *Builder) AddExemplar(ls labels.Labels, t int64, e exemplar.Exemplar) {
	name := ls.Get(model.MetricNameLabel)
	meta, role := b.family(name, ls)
	p := b.point(ls, name, meta, role != "", t)
	p.exemplars = append(p.exemplars, e)
}

type resourceAcc struct {
	job, instance   string
	hasJob, hasInst bool
	metrics         map[metricKey]*metricAcc
	order           []*metricAcc
}

// metricKey: a family gathered into histogram or summary points is apart from
// plain series of the same name (a histogram family's own name, say).
type metricKey struct {
	name    string
	grouped bool
}

type metricAcc struct {
	meta    Metadata
	grouped bool // its series are the buckets/quantiles, sum and count of points
	points  map[pointKey]*pointAcc
	order   []*pointAcc
}

type pointKey struct {
	hash uint64
	t    int64
}

type bucket struct {
	le string // or the quantile
	v  float64
}

type rawSample struct {
	name      string
	ls        labels.Labels
	t, startT int64
	v         float64
}

// pointAcc gathers one data point: a plain sample, the series of one classic
// histogram or summary at one time, or one native histogram.
type pointAcc struct {
	ls         labels.Labels // of the first series seen; attributes come from it
	t, startT  int64
	v          float64
	set        bool
	buckets    []bucket
	sum, count float64
	hasSum     bool
	hasCount   bool
	native     bool
	fh         *histogram.FloatHistogram // a native histogram, integer ones as float
	exemplars  []exemplar.Exemplar
	raw        []rawSample
}

// point finds or creates the data point a series sample belongs to. Series
// of one histogram or summary point share everything but name, le and quantile.
func (b *Builder) point(ls labels.Labels, name string, meta Metadata, grouped bool, t int64) *pointAcc {
	job, hasJob := get(ls, model.JobLabel)
	inst, hasInst := get(ls, model.InstanceLabel)
	r := b.last
	if r == nil || r.job != job || r.instance != inst || r.hasJob != hasJob || r.hasInst != hasInst {
		rk := resourceKey{job: job, instance: inst, hasJob: hasJob, hasInst: hasInst}
		var ok bool
		if r, ok = b.resources[rk]; !ok {
			r = &resourceAcc{job: job, instance: inst, hasJob: hasJob, hasInst: hasInst, metrics: map[metricKey]*metricAcc{}}
			b.resources[rk] = r
			b.order = append(b.order, r)
		}
		b.last, b.lastMetric = r, nil
	}
	mkey := metricKey{name: meta.Family, grouped: grouped}
	if !grouped {
		mkey.name = name
	}
	m := b.lastMetric
	if m == nil || m.grouped != grouped || m.meta.Family != mkey.name {
		var ok bool
		if m, ok = r.metrics[mkey]; !ok {
			m = &metricAcc{meta: meta, grouped: grouped, points: map[pointKey]*pointAcc{}}
			if !grouped {
				m.meta.Family = mkey.name
			}
			r.metrics[mkey] = m
			r.order = append(r.order, m)
		}
		b.lastMetric = m
	}
	var h uint64
	if grouped {
		h, b.hashBuf = ls.HashWithoutLabels(b.hashBuf, model.JobLabel, model.InstanceLabel, model.BucketLabel, model.QuantileLabel)
	} else {
		// Every series of one resource has the same job and instance, so
		// the hash of all labels tells its series apart as well, and costs
		// one pass over the label bytes.
		h = ls.Hash()
	}
	k := pointKey{h, t}
	p, ok := m.points[k]
	if !ok {
		if len(b.slab) == 0 {
			b.slab = make([]pointAcc, 256)
		}
		p = &b.slab[0]
		b.slab = b.slab[1:]
		p.ls, p.t = ls, t
		m.points[k] = p
		m.order = append(m.order, p)
	}
	return p
}

func get(ls labels.Labels, name string) (string, bool) {
	v := ls.Get(name)
	return v, v != "" || ls.Has(name)
}

func isStale(v float64) bool { return value.IsStaleNaN(v) }

func nanos(ms int64) pcommon.Timestamp { return pcommon.Timestamp(ms * 1e6) }

// attributes copies a point's labels but name, job and instance (and le and
// quantile, which the shape of a histogram or summary point carries).
func attributes(ls labels.Labels, grouped bool, dst pcommon.Map) {
	dst.EnsureCapacity(ls.Len())
	ls.Range(func(l labels.Label) {
		switch l.Name {
		case model.MetricNameLabel, model.JobLabel, model.InstanceLabel:
			return
		case model.BucketLabel, model.QuantileLabel:
			if grouped {
				return
			}
		}
		dst.PutStr(l.Name, l.Value)
	})
}
