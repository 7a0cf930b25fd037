package batchprocessor

import (
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Cutting at every possible point keeps every data point, in order, with
// its resource, scope and metric header, and the cut piece has exactly n.
func TestSplitMetricsEveryCut(t *testing.T) {
	for _, tc := range []struct {
		name      string
		resources int
		points    int
	}{
		{"one point per metric", 2, 1},
		{"three points per metric", 2, 3},
		{"one resource", 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := mixed(tc.resources, tc.points)
			want := flatten(orig)
			total := orig.DataPointCount()
			for n := 1; n < total; n++ {
				src := pmetric.NewMetrics()
				orig.CopyTo(src)
				dst := splitMetrics(src, n)
				if got := dst.DataPointCount(); got != n {
					t.Fatalf("n=%d: cut piece has %d points", n, got)
				}
				if got := src.DataPointCount(); got != total-n {
					t.Fatalf("n=%d: rest has %d points, want %d", n, got, total-n)
				}
				if got := append(flatten(dst), flatten(src)...); !slices.Equal(got, want) {
					t.Fatalf("n=%d: data changed by the split:\n got %q\nwant %q", n, got, want)
				}
			}
		})
	}
}

// A metric whose points are split becomes two metrics with the same header;
// resources and scopes that are not split are moved whole.
func TestSplitMetricsStraddlingMetric(t *testing.T) {
	src := mixed(1, 4) // 1 resource, 2 scopes × 5 metrics × 4 points
	dst := splitMetrics(src, 6)
	// Cut after the gauge's 4 points and 2 of the sum's.
	if dst.ResourceMetrics().Len() != 1 || src.ResourceMetrics().Len() != 1 {
		t.Fatalf("resources: cut %d, rest %d", dst.ResourceMetrics().Len(), src.ResourceMetrics().Len())
	}
	cutScope, restScope := dst.ResourceMetrics().At(0).ScopeMetrics(), src.ResourceMetrics().At(0).ScopeMetrics()
	if cutScope.Len() != 1 || restScope.Len() != 2 {
		t.Fatalf("scopes: cut %d, rest %d", cutScope.Len(), restScope.Len())
	}
	cut, rest := cutScope.At(0).Metrics(), restScope.At(0).Metrics()
	if cut.Len() != 2 || rest.Len() != 4 {
		t.Fatalf("metrics: cut %d, rest %d", cut.Len(), rest.Len())
	}
	a, b := cut.At(1), rest.At(0)
	if a.Name() != "metric_1" || b.Name() != "metric_1" || a.Description() != b.Description() || a.Unit() != b.Unit() ||
		a.Type() != pmetric.MetricTypeSum || b.Type() != pmetric.MetricTypeSum ||
		a.Sum().AggregationTemporality() != b.Sum().AggregationTemporality() || !a.Sum().IsMonotonic() || !b.Sum().IsMonotonic() ||
		!a.Metadata().Equal(b.Metadata()) {
		t.Fatalf("split metric headers differ: %s/%s/%s vs %s/%s/%s", a.Name(), a.Description(), a.Type(), b.Name(), b.Description(), b.Type())
	}
	if a.Sum().DataPoints().Len() != 2 || b.Sum().DataPoints().Len() != 2 {
		t.Fatalf("split points: %d + %d", a.Sum().DataPoints().Len(), b.Sum().DataPoints().Len())
	}
	if dst.ResourceMetrics().At(0).SchemaUrl() != src.ResourceMetrics().At(0).SchemaUrl() ||
		!dst.ResourceMetrics().At(0).Resource().Attributes().Equal(src.ResourceMetrics().At(0).Resource().Attributes()) {
		t.Fatal("split resource lost its attributes or schema URL")
	}
}

// Metrics without data points are not counted and travel with the cut
// piece when they come before the cut.
func TestSplitMetricsEmptyMetric(t *testing.T) {
	src := gauge("t", "c", 0, 3)
	sm := src.ResourceMetrics().At(0).ScopeMetrics().At(0)
	empty := pmetric.NewMetric()
	empty.SetName("empty")
	empty.MoveTo(sm.Metrics().AppendEmpty())
	sm.Metrics().At(0).MoveTo(sm.Metrics().AppendEmpty()) // the empty one first
	sm.Metrics().RemoveIf(func(m pmetric.Metric) bool { return m.Name() == "" })
	dst := splitMetrics(src, 2)
	if dst.DataPointCount() != 2 || src.DataPointCount() != 1 {
		t.Fatalf("cut %d, rest %d", dst.DataPointCount(), src.DataPointCount())
	}
	if name := dst.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name(); name != "empty" {
		t.Fatalf("first metric of the cut piece is %q", name)
	}
}
