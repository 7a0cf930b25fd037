package promseries

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// The label set merges resource, point and series labels instead of sorting
// them together; the reference below sorts them together. Of one name the
// label added last wins, and a winning empty value leaves the label out.
func TestLabelSetMatchesSortingAll(t *testing.T) {
	reference := func(parts ...[]labels.Label) []labels.Label {
		var all []labels.Label
		for _, p := range parts {
			all = append(all, p...)
		}
		slices.SortStableFunc(all, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
		var out []labels.Label
		for i, l := range all {
			if i+1 < len(all) && all[i+1].Name == l.Name {
				continue
			}
			if l.Value != "" {
				out = append(out, l)
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"__name__", "a", "b", "instance", "job", "le", "quantile", "z"}
	some := func(max int) []labels.Label {
		var ls []labels.Label
		for range rng.IntN(max + 1) {
			v := fmt.Sprint(rng.IntN(3))
			if v == "0" {
				v = ""
			}
			ls = append(ls, labels.Label{Name: names[rng.IntN(len(names))], Value: v})
		}
		if rng.IntN(2) == 0 {
			slices.SortStableFunc(ls, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
		}
		return ls
	}
	var set labelSet
	for i := range 20000 {
		base, point := some(4), some(5)
		extra := []labels.Label{{Name: "__name__", Value: "m"}}
		if rng.IntN(2) == 0 {
			extra = append(extra, labels.Label{Name: names[5+rng.IntN(2)], Value: fmt.Sprint(rng.IntN(2))})
		}
		want := reference(base, point, extra)
		set.setBase(base)
		set.reset()
		for _, l := range point {
			set.add(l.Name, l.Value)
		}
		set.seal()
		if got := set.build(extra...); !slices.Equal(got, want) {
			t.Fatalf("case %d: base %v, point %v, extra %v: got %v, want %v", i, base, point, extra, got, want)
		}
	}
}
