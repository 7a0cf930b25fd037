package prometheusexporter

import (
	"cmp"
	"math"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/proto"
)

// labelPairs are the exposition labels of ls: all but __name__ and skip.
func labelPairs(ls []labels.Label, skip string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(ls))
	for _, l := range ls {
		if l.Name == model.MetricNameLabel || l.Name == skip {
			continue
		}
		out = append(out, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
	}
	return out
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

func compareLabelPairs(a, b []*dto.LabelPair) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].GetName(), b[i].GetName()); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].GetValue(), b[i].GetValue()); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
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
