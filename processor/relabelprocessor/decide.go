package relabelprocessor

import (
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/sluicehq/sluice/internal/promseries"
)

// decision is what the rules do to a data point with given labels. It is a
// function of the labels and where each comes from, so it is cached on them.
type decision struct {
	drop   bool
	same   bool
	rename string // the new metric name; "" keeps it
	// toProm: an OTLP-native metric was renamed. It becomes Prometheus data
	// (sent under exactly the new name) and its attributes are replaced by
	// the point's labels as the rules left them.
	toProm bool
	attrs  []edit   // edits of the point's attributes, in order
	adds   int      // how many of them set an attribute (to grow the map once)
	res    *resEdit // edits of the resource; nil leaves it alone
}

// edit sets or deletes one attribute; clear deletes them all first.
type edit struct {
	key, value string
	del, clear bool
}

// resEdit is a change of resource attributes; points whose resources change
// alike move together to one copy of the resource, grouped by id.
type resEdit struct {
	id    string
	edits []edit
}

var (
	keepDecision = &decision{same: true}
	dropDecision = &decision{drop: true}
)

// cache keeps decisions by key. Two generations bound it: when the current
// one is full the previous one is dropped, and entries used since move up.
type cache struct {
	mu       sync.RWMutex
	max      int
	cur, old map[string]*decision
}

func newCache(max int) *cache {
	return &cache{max: max, cur: map[string]*decision{}, old: map[string]*decision{}}
}

// get must be called with mu read-locked.
func (c *cache) get(key []byte) (*decision, bool) {
	if d, ok := c.cur[string(key)]; ok {
		return d, true
	}
	d, ok := c.old[string(key)]
	return d, ok
}

// put stores decisions found while mu was read-locked.
func (c *cache) put(found map[string]*decision) {
	if c.max == 0 || len(found) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	half := max(c.max/2, 1)
	for k, d := range found {
		if len(c.cur) >= half {
			c.old, c.cur = c.cur, make(map[string]*decision, half)
		}
		c.cur[k] = d
	}
}

// decider computes decisions; one per goroutine (it holds scratch space).
type decider struct {
	rules []*relabel.Config
	lb    *labels.Builder
	pt    []promseries.Source
	in    map[string]source
}

type source struct {
	value      string
	res, point *promseries.Source
}

func newDecider(rules []*relabel.Config) *decider {
	return &decider{rules: rules, lb: labels.NewBuilder(labels.EmptyLabels()), in: map[string]source{}}
}

// decide runs the rules on a point's labels: the resource's, the point's
// attributes' (which win over the resource's), and the metric name.
func (d *decider) decide(res, pt []promseries.Source, name string, prom bool) *decision {
	clear(d.in)
	d.lb.Reset(labels.EmptyLabels())
	for i := range res {
		s := &res[i]
		d.in[s.Name] = source{value: s.Value, res: s}
		d.lb.Set(s.Name, s.Value)
	}
	for i := range pt {
		s := &pt[i]
		src := d.in[s.Name]
		src.value, src.point = s.Value, s
		d.in[s.Name] = src
		d.lb.Set(s.Name, s.Value)
	}
	d.lb.Set(model.MetricNameLabel, name)
	if !relabel.ProcessBuilder(d.lb, d.rules...) {
		return dropDecision
	}
	newName := d.lb.Get(model.MetricNameLabel)
	if newName == "" {
		return dropDecision // a series without a name cannot be sent
	}
	out := &decision{}
	if newName != name {
		out.rename, out.toProm = newName, !prom
	}
	var resEdits []edit
	if out.toProm {
		out.attrs = append(out.attrs, edit{clear: true})
	}
	d.lb.Range(func(l labels.Label) {
		if l.Name == model.MetricNameLabel {
			return
		}
		src, had := d.in[l.Name]
		switch {
		case src.point != nil || !had:
			if out.toProm {
				out.attrs = append(out.attrs, edit{key: l.Name, value: l.Value})
			} else if !had || src.value != l.Value {
				out.attrs = setAttr(out.attrs, src.point, l.Name, l.Value)
			}
		case src.value != l.Value:
			resEdits = setResource(resEdits, src.res, l.Value)
		}
	})
	for n, src := range d.in {
		if d.lb.Get(n) != "" {
			continue
		}
		if src.point != nil && !out.toProm {
			for _, k := range src.point.Keys {
				out.attrs = append(out.attrs, edit{key: k, del: true})
			}
		}
		if src.res != nil {
			for _, k := range src.res.Keys {
				resEdits = append(resEdits, edit{key: k, del: true})
			}
		}
	}
	if len(resEdits) > 0 {
		out.res = newResEdit(resEdits)
	}
	for _, e := range out.attrs {
		if !e.del && !e.clear {
			out.adds++
		}
	}
	if out.rename == "" && len(out.attrs) == 0 && out.res == nil {
		return keepDecision
	}
	return out
}

// setAttr changes a label that a point attribute gave (or adds a new one):
// the attribute keeps its key, unless several collided into the label.
func setAttr(edits []edit, src *promseries.Source, name, value string) []edit {
	if src == nil {
		return append(edits, edit{key: name, value: value})
	}
	if len(src.Keys) == 1 {
		return append(edits, edit{key: src.Keys[0], value: value})
	}
	for _, k := range src.Keys {
		edits = append(edits, edit{key: k, del: true})
	}
	return append(edits, edit{key: name, value: value})
}

// setResource changes a label the resource gave. job is service.name (the
// namespace goes, as the value is now the whole job), instance is
// service.instance.id, any other the attribute it came from.
func setResource(edits []edit, src *promseries.Source, value string) []edit {
	for _, k := range src.Keys[1:] {
		edits = append(edits, edit{key: k, del: true})
	}
	return append(edits, edit{key: src.Keys[0], value: value})
}

func newResEdit(edits []edit) *resEdit {
	slices.SortStableFunc(edits, func(a, b edit) int { return strings.Compare(a.key, b.key) })
	var b strings.Builder
	for _, e := range edits {
		if e.del {
			b.WriteString("-" + e.key + "\x00")
		} else {
			b.WriteString("+" + e.key + "\x00" + e.value + "\x00")
		}
	}
	return &resEdit{id: b.String(), edits: edits}
}
