package promseries

import (
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// MetadataType is the metric metadata key that marks Prometheus data and
// holds its family type (see the package documentation).
const MetadataType = "prometheus.type"

// Resource attributes that carry job and instance (OpenTelemetry specification).
const (
	attrServiceName       = "service.name"
	attrServiceNamespace  = "service.namespace"
	attrServiceInstanceID = "service.instance.id"
)

// Options say how OTLP-native data is named and which resource attributes
// become labels. Prometheus data is never renamed.
type Options struct {
	// AddMetricSuffixes appends unit and `_total` suffixes to OTLP-native
	// metric names (the otlptranslator rules).
	AddMetricSuffixes bool
	// ResourceToLabels turns every resource attribute (not only job and
	// instance) into a label of every series of that resource.
	ResourceToLabels bool
}

// Metadata is what Prometheus knows of a metric family.
type Metadata struct {
	Family string // family name: the series name without _bucket/_sum/_count/_total
	Type   model.MetricType
	Help   string
	Unit   string
}

// Sample is one point of one series, as Walk hands it out. Labels, Exemplars
// and H are valid only until the callback returns; copy what you keep.
type Sample struct {
	// Labels are the series' labels sorted by name, __name__ included, each
	// name once, none with an empty value: a slice rather than a
	// labels.Labels, so that encoders read it without decoding
	// (labels.New(s.Labels...) gives the other form).
	Labels    []labels.Label
	T         int64   // milliseconds since the epoch
	V         float64 // float sample; StaleNaN for a stale marker; unused when H is set
	H         *histogram.Histogram
	StartT    int64 // created timestamp in milliseconds; 0 when unknown
	Delta     bool  // the point has delta temporality: the caller converts or refuses it
	Exemplars []exemplar.Exemplar
	Meta      Metadata
}

// IsPrometheus reports whether m carries Prometheus data (and so keeps its
// exact name), returning the family type.
func IsPrometheus(m pmetric.Metric) (model.MetricType, bool) {
	v, ok := m.Metadata().Get(MetadataType)
	if !ok {
		return "", false
	}
	return model.MetricType(v.Str()), true
}

// labelSet makes the labels of a point's series: the resource's labels
// (base), then the point's own (added), then per series its name and le or
// quantile (build's extras). Of labels with the same name the later one
// wins, so point attributes override resource labels; a label whose winning
// value is empty is left out.
type labelSet struct {
	base  []labels.Label // sorted, each name once: set per resource
	ls    []labels.Label // the point's labels, in the order added
	point []labels.Label // base and ls merged by seal
	out   []labels.Label
}

// setBase sets the resource's labels for the points that follow.
func (s *labelSet) setBase(ls []labels.Label) { s.base = sortUnique(append(s.base[:0], ls...)) }

func (s *labelSet) reset() { s.ls = s.ls[:0] }
func (s *labelSet) add(name, value string) {
	s.ls = append(s.ls, labels.Label{Name: name, Value: value})
}

// seal merges the point's labels over the base, once per point: a
// histogram's many series then only merge in their name and le.
func (s *labelSet) seal() {
	s.point = mergeOver(s.point[:0], s.base, sortUnique(s.ls))
}

// build returns the series labels: the sealed point labels with extra
// (sorted by name, each name once) merged over them, empty values left out.
// They are valid until the next build.
func (s *labelSet) build(extra ...labels.Label) []labels.Label {
	s.out = mergeOver(s.out[:0], s.point, extra)
	out := s.out[:0]
	for _, l := range s.out {
		if l.Value != "" {
			out = append(out, l)
		}
	}
	return out
}

// sortUnique sorts ls by name in place, keeping the last of each name.
// Labels mostly come in order already; then it only compares neighbours.
func sortUnique(ls []labels.Label) []labels.Label {
	ordered := true
	for i := 1; i < len(ls); i++ {
		if ls[i-1].Name >= ls[i].Name {
			ordered = false
			break
		}
	}
	if ordered {
		return ls
	}
	// A handful of labels: the generic stable sort (insertion sort at this
	// size) costs a fraction of sort.SliceStable's reflection.
	slices.SortStableFunc(ls, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	out := ls[:0]
	for i, l := range ls {
		if i+1 < len(ls) && ls[i+1].Name == l.Name {
			continue // a later one of the same name wins
		}
		out = append(out, l) // out never overtakes i
	}
	return out
}

// mergeOver appends to dst the union of two sorted, unique label lists; of
// a name in both, over's label wins.
func mergeOver(dst, under, over []labels.Label) []labels.Label {
	i, j := 0, 0
	for i < len(under) && j < len(over) {
		switch c := strings.Compare(under[i].Name, over[j].Name); {
		case c < 0:
			dst = append(dst, under[i])
			i++
		case c > 0:
			dst = append(dst, over[j])
			j++
		default:
			dst = append(dst, over[j])
			i++
			j++
		}
	}
	dst = append(dst, under[i:]...)
	return append(dst, over[j:]...)
}

// resourceLabels returns job and instance of a resource, and with
// ResourceToLabels every other attribute (named by the label rules).
func resourceLabels(res pcommon.Resource, opts Options, namer *otlptranslator.LabelNamer, dst []labels.Label) []labels.Label {
	attrs := res.Attributes()
	if name, ok := attrs.Get(attrServiceName); ok {
		job := name.AsString()
		if ns, ok := attrs.Get(attrServiceNamespace); ok && ns.AsString() != "" {
			job = ns.AsString() + "/" + job
		}
		dst = append(dst, labels.Label{Name: model.JobLabel, Value: job})
	}
	if id, ok := attrs.Get(attrServiceInstanceID); ok {
		dst = append(dst, labels.Label{Name: model.InstanceLabel, Value: id.AsString()})
	}
	if opts.ResourceToLabels {
		attrs.Range(func(k string, v pcommon.Value) bool {
			switch k {
			case attrServiceName, attrServiceNamespace, attrServiceInstanceID:
				return true
			}
			if n, err := namer.Build(k); err == nil {
				dst = append(dst, labels.Label{Name: n, Value: v.AsString()})
			}
			return true
		})
	}
	return dst
}

// attributeLabels appends a data point's attributes. Prometheus data keeps its
// label names; OTLP-native names are made valid, and attributes whose names
// collide are joined with ";" in the order of their original keys.
func attributeLabels(attrs pcommon.Map, prom bool, namer *otlptranslator.LabelNamer, dst []labels.Label) []labels.Label {
	if prom {
		attrs.Range(func(k string, v pcommon.Value) bool {
			dst = append(dst, labels.Label{Name: k, Value: v.AsString()})
			return true
		})
		return dst
	}
	type kv struct{ name, key, value string }
	var kvs []kv
	attrs.Range(func(k string, v pcommon.Value) bool {
		n, err := namer.Build(k)
		if err == nil {
			kvs = append(kvs, kv{n, k, v.AsString()})
		}
		return true
	})
	slices.SortFunc(kvs, func(a, b kv) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for i := 0; i < len(kvs); {
		j, values := i+1, []string{kvs[i].value}
		for ; j < len(kvs) && kvs[j].name == kvs[i].name; j++ {
			values = append(values, kvs[j].value)
		}
		dst = append(dst, labels.Label{Name: kvs[i].name, Value: strings.Join(values, ";")})
		i = j
	}
	return dst
}

// FamilyName is the metric family a series of type t belongs to: a
// histogram's or summary's series drop _bucket, _sum and _count; any other
// series is its own family.
func FamilyName(name string, t model.MetricType) string {
	switch t {
	case model.MetricTypeHistogram, model.MetricTypeGaugeHistogram:
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, suffix); ok {
				return f
			}
		}
	case model.MetricTypeSummary:
		for _, suffix := range []string{"_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, suffix); ok {
				return f
			}
		}
	}
	return name
}
