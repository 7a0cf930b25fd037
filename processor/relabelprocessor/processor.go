package relabelprocessor

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/prometheus/prometheus/model/relabel"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/sluicehq/sluice/internal/promseries"
)

type relabelProcessor struct {
	rules   []*relabel.Config
	names   *promseries.Namer
	cache   *cache
	tel     *telemetry
	workers sync.Pool // *worker: scratch space of one call
}

func newProcessor(cfg *Config, tel *telemetry) (*relabelProcessor, error) {
	rules, err := compileRules(cfg.MetricRelabelConfigs)
	if err != nil {
		return nil, err
	}
	p := &relabelProcessor{
		rules: rules,
		names: promseries.NewNamer(promseries.Options{
			AddMetricSuffixes: cfg.AddMetricSuffixes,
			ResourceToLabels:  cfg.ResourceToTelemetryConversion.Enabled,
		}),
		cache: newCache(cfg.MaxCacheSize),
		tel:   tel,
	}
	p.workers.New = func() any {
		return &worker{p: p, decider: newDecider(rules), found: map[string]*decision{}}
	}
	return p, nil
}

func (p *relabelProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	w := p.workers.Get().(*worker)
	defer p.workers.Put(w)
	before := md.DataPointCount()
	p.cache.mu.RLock()
	w.run(md)
	p.cache.mu.RUnlock()
	p.cache.put(w.found)
	clear(w.found)
	p.tel.record(ctx, before-md.DataPointCount(), w.misses)
	w.misses = 0
	if md.ResourceMetrics().Len() == 0 {
		return md, processorhelper.ErrSkipProcessingData
	}
	return md, nil
}

// worker relabels one Metrics in place.
type worker struct {
	p       *relabelProcessor
	decider *decider
	found   map[string]*decision // decided during this call, for the cache
	misses  int
	key     []byte
	res     []promseries.Source
	pt      []promseries.Source
	// Per resource: copies of it for points whose resource labels changed.
	moved      map[string]pmetric.ResourceMetrics
	movedOrder []string
	targets    map[target]pmetric.Metric
	renamed    []pmetric.MetricSlice // per scope of the current resource: renamed metrics to append
}

// target is where a moved point goes: the resource (by edit id, "" for its
// own), the scope and metric it came from, and its new name.
type target struct {
	res           string
	scope, metric int
	name          string
}

func (w *worker) run(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	var extra []pmetric.ResourceMetrics
	rms.RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		had := rm.ScopeMetrics().Len() > 0
		extra = w.resource(rm, extra)
		return had && rm.ScopeMetrics().Len() == 0
	})
	for _, rm := range extra {
		rm.MoveTo(rms.AppendEmpty())
	}
}

// resource relabels the points of one resource and returns extra with the
// copies of the resource that points moved to.
func (w *worker) resource(rm pmetric.ResourceMetrics, extra []pmetric.ResourceMetrics) []pmetric.ResourceMetrics {
	w.res = w.p.names.ResourceSources(rm.Resource(), w.res[:0])
	// Keys are length-prefixed strings, so no two label sets share a key.
	w.key = binary.AppendUvarint(w.key[:0], uint64(len(w.res)))
	for _, s := range w.res {
		w.key = appendString(w.key, s.Name)
		w.key = appendString(w.key, s.Value)
		w.key = binary.AppendUvarint(w.key, uint64(len(s.Keys)))
		for _, k := range s.Keys {
			w.key = appendString(w.key, k)
		}
	}
	resKey := len(w.key)
	clear(w.moved)
	w.movedOrder = w.movedOrder[:0]
	clear(w.targets)
	sms := rm.ScopeMetrics()
	w.renamed = w.renamed[:0]
	for j := 0; j < sms.Len(); j++ {
		w.renamed = append(w.renamed, pmetric.NewMetricSlice())
		ms := sms.At(j).Metrics()
		idx := -1
		ms.RemoveIf(func(m pmetric.Metric) bool {
			idx++
			name, meta, prom := w.p.names.MetricName(m)
			if name == "" {
				return false // the exporter drops it and says why
			}
			w.key = appendString(w.key[:resKey], name)
			if prom {
				w.key = append(w.key, 'p')
			} else {
				w.key = append(w.key, 'o')
			}
			pt := pointRef{rm: rm, scope: j, metric: idx, m: m, meta: meta, prom: prom, name: name, keyLen: len(w.key)}
			had := promseries.DataPoints(m) > 0
			w.points(&pt)
			return had && promseries.DataPoints(m) == 0
		})
		w.renamed[j].MoveAndAppendTo(ms)
	}
	sms.RemoveIf(func(sm pmetric.ScopeMetrics) bool { return sm.Metrics().Len() == 0 })
	for _, id := range w.movedOrder {
		moved := w.moved[id]
		moved.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool { return sm.Metrics().Len() == 0 })
		extra = append(extra, moved)
	}
	return extra
}

// pointRef is the metric whose points are being relabeled.
type pointRef struct {
	rm            pmetric.ResourceMetrics
	scope, metric int
	m             pmetric.Metric
	meta          promseries.Metadata
	prom          bool
	name          string
	keyLen        int
}

// point decides one point by its attributes; it returns the decision.
func (w *worker) decide(ref *pointRef, attrs pcommon.Map) *decision {
	w.key = w.key[:ref.keyLen]
	attrs.Range(func(k string, v pcommon.Value) bool {
		w.key = appendString(w.key, k)
		// Prometheus data has string attributes only; Str is the cheap test.
		if s := v.Str(); s != "" || v.Type() == pcommon.ValueTypeStr {
			w.key = append(w.key, 's')
			w.key = appendString(w.key, s)
		} else {
			w.key = append(w.key, 'v') // apart from a string of the same text
			w.key = appendString(w.key, v.AsString())
		}
		return true
	})
	if d, ok := w.p.cache.get(w.key); ok {
		return d
	}
	if d, ok := w.found[string(w.key)]; ok {
		return d
	}
	w.misses++
	w.pt = w.p.names.PointSources(attrs, ref.prom, w.pt[:0])
	d := w.decider.decide(w.res, w.pt, ref.name, ref.prom)
	if w.p.cache.max > 0 {
		w.found[string(w.key)] = d
	}
	return d
}

// apply edits a kept point's attributes and says whether it must move.
func apply(d *decision, attrs pcommon.Map) (move bool) {
	if d.adds > 0 {
		attrs.EnsureCapacity(attrs.Len() + d.adds)
	}
	for _, e := range d.attrs {
		switch {
		case e.clear:
			attrs.Clear()
		case e.del:
			attrs.Remove(e.key)
		default:
			attrs.PutStr(e.key, e.value)
		}
	}
	return d.rename != "" || d.res != nil
}

func appendString(b []byte, s string) []byte {
	if len(s) < 0x80 {
		return append(append(b, byte(len(s))), s...)
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
