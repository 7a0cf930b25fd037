package promseries

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func TestTargetInfoCarriesResourceAttributes(t *testing.T) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "api")
	rm.Resource().Attributes().PutStr("service.instance.id", "pod-1")
	rm.Resource().Attributes().PutStr("k8s.namespace.name", "prod")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("x")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetTimestamp(pcommon.Timestamp(5_000_000_000))
	g.Gauge().DataPoints().AppendEmpty().SetTimestamp(pcommon.Timestamp(7_000_000_000))
	// A resource with only job and instance gets none.
	rm2 := md.ResourceMetrics().AppendEmpty()
	rm2.Resource().Attributes().PutStr("service.name", "bare")
	rm2.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetTimestamp(1)

	var got []string
	var ts []int64
	if err := TargetInfo(md, func(s *Sample) error {
		got = append(got, labels.New(s.Labels...).String())
		ts = append(ts, s.T)
		if s.V != 1 {
			t.Errorf("value %v, want 1", s.V)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := `{__name__="target_info", instance="pod-1", job="api", k8s_namespace_name="prod"}`
	if len(got) != 1 || got[0] != want || ts[0] != 7000 {
		t.Fatalf("got %v at %v, want [%s] at 7000", got, ts, want)
	}
}
