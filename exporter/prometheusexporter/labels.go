package prometheusexporter

import (
	"cmp"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// slab hands out zeroed values of T from blocks of slabSize.
type slab[T any] struct{ buf []T }

const slabSize = 512

func (s *slab[T]) next() *T {
	if len(s.buf) == 0 {
		s.buf = make([]T, slabSize)
	}
	p := &s.buf[0]
	s.buf = s.buf[1:]
	return p
}

// pairSlab makes exposition labels from blocks.
type pairSlab struct {
	pairs slab[dto.LabelPair]
	ptrs  []*dto.LabelPair
}

// of returns the exposition labels of ls, all but __name__ and skip,
// pointing at ls's strings: ls must not change while they are in use.
func (p *pairSlab) of(ls []labels.Label, skip string) []*dto.LabelPair {
	if cap(p.ptrs)-len(p.ptrs) < len(ls) {
		p.ptrs = make([]*dto.LabelPair, 0, max(slabSize, len(ls)))
	}
	start := len(p.ptrs)
	for i := range ls {
		if ls[i].Name == model.MetricNameLabel || ls[i].Name == skip {
			continue
		}
		lp := p.pairs.next()
		lp.Name, lp.Value = &ls[i].Name, &ls[i].Value
		p.ptrs = append(p.ptrs, lp)
	}
	return p.ptrs[start:len(p.ptrs):len(p.ptrs)]
}

// labelPairsWithout is ls without __name__ and skip.
func labelPairsWithout(ls []labels.Label, skip string) []labels.Label {
	out := make([]labels.Label, 0, len(ls))
	for _, l := range ls {
		if l.Name != model.MetricNameLabel && l.Name != skip {
			out = append(out, l)
		}
	}
	return out
}

func labelValue(ls []labels.Label, name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func cmpFloat(a, b float64) int { return cmp.Compare(a, b) }

// whole returns v as a count when it is one: a whole, non-negative number
// that a uint64 holds exactly.
func whole(v float64) (uint64, bool) {
	if v < 0 || v > 1<<53 || math.Trunc(v) != v {
		return 0, false
	}
	return uint64(v), true
}

func timeOfMillis(ms int64) time.Time { return time.UnixMilli(ms) }
