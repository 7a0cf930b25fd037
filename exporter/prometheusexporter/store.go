package prometheusexporter

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/sluicehq/sluice/internal/promseries"
)

// series is the newest sample of one series, as the store keeps it. Its
// fields are never changed once stored (an update stores a new series), so
// a snapshot can be rendered outside the lock.
type series struct {
	key       string         // the store's key: snapshots are sorted by it
	metric    string         // the value of __name__
	labels    []labels.Label // sorted, __name__ included
	meta      promseries.Metadata
	t         int64 // milliseconds
	v         float64
	h         *histogram.Histogram // a native histogram; v unused
	exemplars []exemplar.Exemplar
	seen      time.Time // when the exporter last received it
}

func (s *series) name() string { return s.metric }

// store holds what /metrics serves: the newest sample of every series
// received within the expiration.
type store struct {
	expire time.Duration

	mu     sync.Mutex
	series map[string]*series
	key    []byte
}

func newStore(expire time.Duration) *store {
	return &store{expire: expire, series: map[string]*series{}}
}

// add stores s (received at now), or removes its series when s is a stale
// marker: the series ended at its source, and /metrics stops showing it at
// once rather than at expiry. It copies what it keeps (Walk reuses s).
func (st *store) add(s *promseries.Sample, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.key = seriesKey(st.key[:0], s)
	old, ok := st.series[string(st.key)]
	if isStale(s) {
		if ok && s.T >= old.t {
			delete(st.series, string(st.key))
		}
		return
	}
	if ok && s.T < old.t {
		return // older than the sample held: kept out, so a scraper never sees time go back
	}
	n := &series{t: s.T, v: s.V, seen: now}
	if ok {
		n.key, n.metric, n.labels, n.meta = old.key, old.metric, old.labels, old.meta
		if n.meta != s.Meta {
			n.meta = cloneMeta(s.Meta)
		}
	} else {
		// Clone the strings: they point into the pdata the pipeline hands
		// over, which must not stay alive as long as the series does.
		n.key = string(st.key)
		n.labels = make([]labels.Label, len(s.Labels))
		for i, l := range s.Labels {
			n.labels[i] = labels.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
			if l.Name == model.MetricNameLabel {
				n.metric = n.labels[i].Value
			}
		}
		n.meta = cloneMeta(s.Meta)
	}
	if s.H != nil {
		n.h = s.H.Copy()
	}
	if len(s.Exemplars) > 0 {
		n.exemplars = append([]exemplar.Exemplar(nil), s.Exemplars...)
	}
	st.series[n.key] = n
}

func isStale(s *promseries.Sample) bool {
	if s.H != nil {
		return value.IsStaleNaN(s.H.Sum)
	}
	return value.IsStaleNaN(s.V)
}

// seriesKey identifies a series by its labels; a native histogram is told
// from a float series with the same labels (an OTLP gauge and exponential
// histogram of one name) by a trailing mark.
func seriesKey(dst []byte, s *promseries.Sample) []byte {
	for _, l := range s.Labels {
		dst = append(dst, l.Name...)
		dst = append(dst, 0xff)
		dst = append(dst, l.Value...)
		dst = append(dst, 0xff)
	}
	if s.H != nil {
		dst = append(dst, 'h')
	}
	return dst
}

func cloneMeta(m promseries.Metadata) promseries.Metadata {
	return promseries.Metadata{Family: strings.Clone(m.Family), Type: m.Type, Help: strings.Clone(m.Help), Unit: strings.Clone(m.Unit)}
}

// snapshot drops the series not received since now - expire and returns
// the others, sorted by key (by name, then labels): an exposition in a
// stable order, with each family's metrics together and sorted.
func (st *store) snapshot(now time.Time) []*series {
	st.mu.Lock()
	st.expireLocked(now)
	out := make([]*series, 0, len(st.series))
	for _, s := range st.series {
		out = append(out, s)
	}
	st.mu.Unlock()
	slices.SortFunc(out, func(a, b *series) int { return strings.Compare(a.key, b.key) })
	return out
}

// expireOld drops the series not received since now - expire.
func (st *store) expireOld(now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked(now)
}

func (st *store) expireLocked(now time.Time) {
	cutoff := now.Add(-st.expire)
	for k, s := range st.series {
		if s.seen.Before(cutoff) {
			delete(st.series, k)
		}
	}
}

// len is the number of series held.
func (st *store) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.series)
}
