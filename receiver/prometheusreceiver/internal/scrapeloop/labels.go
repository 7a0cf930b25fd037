package scrapeloop

import (
	"fmt"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/model/textparse"
)

var errNameLabelMandatory = fmt.Errorf("missing metric name (%s label)", model.MetricNameLabel)

// labeler turns a parsed series into the labels it is stored with: the
// target's labels merged in (honor_labels decides who wins a conflict),
// metric_relabel_configs applied, and the label limits checked — the same
// steps, in the same order, as Prometheus' scrape loop.
type labeler struct {
	target      []labels.Label // the target's public labels
	honor       bool
	rules       []*relabel.Config
	validation  model.ValidationScheme
	labelLimit  int
	nameLimit   int
	valueLimit  int
	lb          *labels.Builder
	parsed      labels.Labels
	conflicting []labels.Label
	scratch     []labels.Label
	floats      map[string]string // see floatForm
}

// of returns the final labels of the current series of p, whose bytes are
// met; keep is false when metric relabelling dropped it. text says p is a
// text parser whose series bytes labeler.fast may read (plainSeries);
// curType is the type of the last TYPE line.
func (l *labeler) of(p textparse.Parser, met []byte, text bool, curType model.MetricType) (ls labels.Labels, keep bool, err error) {
	fast := false
	if text {
		ls, fast = l.fast(met, curType)
	}
	switch {
	case !fast:
		p.Labels(&l.parsed)
		ls = l.mutate(l.parsed)
	case len(l.rules) > 0:
		l.lb.Reset(ls)
		if !relabel.ProcessBuilder(l.lb, l.rules...) {
			return labels.EmptyLabels(), false, nil
		}
		ls = l.lb.Labels()
	}
	if ls.IsEmpty() {
		return ls, false, nil
	}
	if !ls.Has(model.MetricNameLabel) {
		return ls, true, errNameLabelMandatory
	}
	// Names the fast path took are plain ([a-zA-Z_:][a-zA-Z0-9_:]*), valid
	// under either scheme, and the target's were checked when it was
	// built; only relabelling can bring in others.
	if (!fast || len(l.rules) > 0) && !ls.IsValid(l.validation) {
		return ls, true, fmt.Errorf("invalid metric name or label names: %s", ls.String())
	}
	if err := l.limits(ls); err != nil {
		return ls, true, err
	}
	return ls, true, nil
}

func (l *labeler) mutate(parsed labels.Labels) labels.Labels {
	lb := l.lb
	lb.Reset(parsed)
	if l.honor {
		for _, t := range l.target {
			if !parsed.Has(t.Name) {
				lb.Set(t.Name, t.Value)
			}
		}
	} else {
		l.conflicting = l.conflicting[:0]
		for _, t := range l.target {
			if v := parsed.Get(t.Name); v != "" {
				l.conflicting = append(l.conflicting, labels.Label{Name: t.Name, Value: v})
			}
			lb.Set(t.Name, t.Value)
		}
		if len(l.conflicting) > 0 {
			// The exposed value moves to exported_<name> (or
			// exported_exported_<name>, …): shortest names first.
			slices.SortStableFunc(l.conflicting, func(a, b labels.Label) int { return len(a.Name) - len(b.Name) })
			for _, c := range l.conflicting {
				name := c.Name
				for {
					name = model.ExportedLabelPrefix + name
					if lb.Get(name) == "" {
						lb.Set(name, c.Value)
						break
					}
				}
			}
		}
	}
	if len(l.rules) > 0 && !relabel.ProcessBuilder(lb, l.rules...) {
		return labels.EmptyLabels()
	}
	return lb.Labels()
}

func (l *labeler) limits(ls labels.Labels) error {
	name := ls.Get(model.MetricNameLabel)
	if l.labelLimit > 0 && ls.Len() > l.labelLimit {
		return fmt.Errorf("label_limit exceeded (metric: %.50s, number of labels: %d, limit: %d)", name, ls.Len(), l.labelLimit)
	}
	if l.nameLimit == 0 && l.valueLimit == 0 {
		return nil
	}
	return ls.Validate(func(lb labels.Label) error {
		if l.nameLimit > 0 && len(lb.Name) > l.nameLimit {
			return fmt.Errorf("label_name_length_limit exceeded (metric: %.50s, label name: %.50s, length: %d, limit: %d)", name, lb.Name, len(lb.Name), l.nameLimit)
		}
		if l.valueLimit > 0 && len(lb.Value) > l.valueLimit {
			return fmt.Errorf("label_value_length_limit exceeded (metric: %.50s, label name: %.50s, value: %.50q, length: %d, limit: %d)", name, lb.Name, lb.Value, len(lb.Value), l.valueLimit)
		}
		return nil
	})
}

// reportLabels are the labels of a report series (up, scrape_*): the name
// and the target's labels, which always win.
func (l *labeler) reportLabels(name string) labels.Labels {
	b := labels.NewBuilder(labels.FromStrings(model.MetricNameLabel, name))
	for _, t := range l.target {
		b.Set(t.Name, t.Value)
	}
	return b.Labels()
}
