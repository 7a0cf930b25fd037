package promseries

import (
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Namer renders names the way Walk does, for code that edits pdata in place
// and must see the labels the exporter will send (the relabel processor).
type Namer struct {
	opts   Options
	metric otlptranslator.MetricNamer
	label  otlptranslator.LabelNamer
}

// NewNamer returns a Namer for the given options (use the exporter's).
func NewNamer(opts Options) *Namer {
	return &Namer{opts: opts, metric: otlptranslator.MetricNamer{WithMetricSuffixes: opts.AddMetricSuffixes}}
}

// Source is one label of a data point and where it comes from.
type Source struct {
	Name, Value string
	// Keys are the attribute keys rendered into the label: one, or for job
	// service.name and service.namespace, or for OTLP-native attributes
	// whose names collide several joined with ";".
	Keys []string
}

// MetricName returns the name a data point of m is sent under — the series
// name of a counter, gauge or native histogram, the family name of a classic
// histogram or summary (its series add _bucket, _sum, _count) — its metadata,
// and whether m is Prometheus data. The name is "" when m cannot be sent.
func (n *Namer) MetricName(m pmetric.Metric) (string, Metadata, bool) {
	meta := Metadata{Help: m.Description(), Unit: m.Unit()}
	if typ, prom := IsPrometheus(m); prom {
		meta.Family, meta.Type = m.Name(), typ
		return m.Name(), meta, true
	}
	var t otlptranslator.MetricType
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		t, meta.Type = otlptranslator.MetricTypeGauge, model.MetricTypeGauge
	case pmetric.MetricTypeSum:
		if m.Sum().IsMonotonic() {
			t, meta.Type = otlptranslator.MetricTypeMonotonicCounter, model.MetricTypeCounter
		} else {
			t, meta.Type = otlptranslator.MetricTypeNonMonotonicCounter, model.MetricTypeGauge
		}
	case pmetric.MetricTypeHistogram:
		t, meta.Type = otlptranslator.MetricTypeHistogram, model.MetricTypeHistogram
	case pmetric.MetricTypeExponentialHistogram:
		t, meta.Type = otlptranslator.MetricTypeExponentialHistogram, model.MetricTypeHistogram
	case pmetric.MetricTypeSummary:
		t, meta.Type = otlptranslator.MetricTypeSummary, model.MetricTypeSummary
	}
	name, err := n.metric.Build(otlptranslator.Metric{Name: m.Name(), Unit: m.Unit(), Type: t})
	if err != nil {
		name = ""
	}
	meta.Family = name
	return name, meta, false
}

// ResourceSources appends the labels a resource gives each of its series.
func (n *Namer) ResourceSources(res pcommon.Resource, dst []Source) []Source {
	attrs := res.Attributes()
	if name, ok := attrs.Get(attrServiceName); ok {
		s := Source{Name: model.JobLabel, Value: name.AsString(), Keys: []string{attrServiceName}}
		if ns, ok := attrs.Get(attrServiceNamespace); ok && ns.AsString() != "" {
			s.Value = ns.AsString() + "/" + s.Value
			s.Keys = append(s.Keys, attrServiceNamespace)
		}
		dst = append(dst, s)
	}
	if id, ok := attrs.Get(attrServiceInstanceID); ok {
		dst = append(dst, Source{Name: model.InstanceLabel, Value: id.AsString(), Keys: []string{attrServiceInstanceID}})
	}
	if n.opts.ResourceToLabels {
		attrs.Range(func(k string, v pcommon.Value) bool {
			switch k {
			case attrServiceName, attrServiceNamespace, attrServiceInstanceID:
				return true
			}
			if name, err := n.label.Build(k); err == nil {
				dst = append(dst, Source{Name: name, Value: v.AsString(), Keys: []string{k}})
			}
			return true
		})
	}
	return dst
}

// PointSources appends the labels a data point's attributes give it.
// Prometheus data keeps its label names; OTLP-native ones are made valid,
// and attributes whose names collide are joined as Walk joins them.
func (n *Namer) PointSources(attrs pcommon.Map, prom bool, dst []Source) []Source {
	start := len(dst)
	attrs.Range(func(k string, v pcommon.Value) bool {
		name := k
		if !prom {
			var err error
			if name, err = n.label.Build(k); err != nil {
				return true
			}
		}
		for i := start; i < len(dst); i++ {
			if dst[i].Name == name { // a collision: joined in key order, like attributeLabels
				dst[i].Keys = append(dst[i].Keys, k)
				dst[i].Value = joinSorted(attrs, dst[i].Keys)
				return true
			}
		}
		dst = append(dst, Source{Name: name, Value: v.AsString(), Keys: []string{k}})
		return true
	})
	return dst
}

// joinSorted joins the values of keys in key order, as attributeLabels does.
func joinSorted(attrs pcommon.Map, keys []string) string {
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		v, _ := attrs.Get(k)
		b.WriteString(v.AsString())
	}
	return b.String()
}
