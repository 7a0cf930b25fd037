package relabelprocessor

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/internal/promseries"
)

func runRules(t *testing.T, rules string) pmetric.Metrics {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.MetricRelabelConfigs = rulesFrom(t, rules)
	return process(t, newTestProcessor(t, cfg), input())
}

// find returns the resources and metrics named name (one pair per metric).
func find(md pmetric.Metrics, name string) (res []pcommon.Map, ms []pmetric.Metric) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			for k := 0; k < sms.At(j).Metrics().Len(); k++ {
				if m := sms.At(j).Metrics().At(k); m.Name() == name {
					res, ms = append(res, rms.At(i).Resource().Attributes()), append(ms, m)
				}
			}
		}
	}
	return res, ms
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return "<absent>"
	}
	return v.AsString()
}

func TestChangedLabelsLandWhereTheyCameFrom(t *testing.T) {
	t.Run("point label stays an attribute under its own key", func(t *testing.T) {
		md := runRules(t, `[{source_labels: [http_method], regex: GET, target_label: http_method, replacement: get}]`)
		_, ms := find(md, "requests")
		if len(ms) != 1 {
			t.Fatalf("requests metrics: %d", len(ms))
		}
		if got := str(ms[0].Sum().DataPoints().At(0).Attributes(), "http.method"); got != "get" {
			t.Fatalf(`attribute "http.method" = %q, want "get" (its own key, not the label name)`, got)
		}
		if got := str(ms[0].Sum().DataPoints().At(0).Attributes(), "http_method"); got != "<absent>" {
			t.Fatalf(`attribute "http_method" was added: %q`, got)
		}
	})
	t.Run("job changes service.name and drops the namespace", func(t *testing.T) {
		md := runRules(t, `[{source_labels: [job], regex: 'shop/(.*)', target_label: job, replacement: '$1-eu'}]`)
		res, _ := find(md, "queue.depth")
		if len(res) != 1 || str(res[0], "service.name") != "checkout-eu" || str(res[0], "service.namespace") != "<absent>" || str(res[0], "host.name") != "h1" {
			t.Fatalf("resource: %v", res)
		}
		if md.ResourceMetrics().Len() != 3 {
			t.Fatalf("resources: %d, want 3 (the edited one is not left behind empty)", md.ResourceMetrics().Len())
		}
	})
	t.Run("instance of some points splits the resource", func(t *testing.T) {
		md := runRules(t, `[{source_labels: [instance, method], regex: 'a:1;GET', target_label: instance, replacement: 'moved:1'}]`)
		res, ms := find(md, "http_requests_total")
		byInstance := map[string]int{}
		for i := range res {
			byInstance[str(res[i], "service.instance.id")] += ms[i].Sum().DataPoints().Len()
		}
		if byInstance["moved:1"] != 2 || byInstance["a:1"] != 2 || byInstance["b:1"] != 4 {
			t.Fatalf("points by service.instance.id: %v", byInstance)
		}
	})
	t.Run("a renamed OTLP metric becomes Prometheus data under exactly that name", func(t *testing.T) {
		md := runRules(t, `[{source_labels: [__name__], regex: 'requests', target_label: __name__, replacement: 'orders_total'}]`)
		_, ms := find(md, "orders_total")
		if len(ms) != 1 {
			t.Fatalf("orders_total metrics: %d", len(ms))
		}
		if typ, ok := promseries.IsPrometheus(ms[0]); !ok || typ != "counter" {
			t.Fatalf("marked %q %v, want counter", typ, ok)
		}
		attrs := ms[0].Sum().DataPoints().At(0).Attributes()
		if str(attrs, "http_method") != "GET" || str(attrs, "a_b") != "x;y" || attrs.Len() != 2 {
			t.Fatalf("attributes are not the labels the rule saw: %v", attrs.AsRaw())
		}
		if _, ms := find(md, "requests"); len(ms) != 0 {
			t.Fatal("the emptied original metric is left behind")
		}
	})
	t.Run("renaming some points splits the metric", func(t *testing.T) {
		md := runRules(t, `[{source_labels: [__name__, method], regex: 'http_requests_total;GET', target_label: __name__, replacement: 'get_requests_total'}]`)
		_, old := find(md, "http_requests_total")
		_, renamed := find(md, "get_requests_total")
		count := func(ms []pmetric.Metric) (n int) {
			for _, m := range ms {
				n += m.Sum().DataPoints().Len()
			}
			return n
		}
		if count(old) != 4 || count(renamed) != 4 {
			t.Fatalf("points: %d kept, %d renamed; want 4 and 4", count(old), count(renamed))
		}
		if !renamed[0].Sum().IsMonotonic() || renamed[0].Description() != "requests" {
			t.Fatal("the renamed metric lost its settings")
		}
	})
	t.Run("emptied metrics, scopes and resources are removed", func(t *testing.T) {
		md := runRules(t, `[{source_labels: [job], regex: 'api', action: keep}, {source_labels: [__name__], regex: 'temperature', action: keep}]`)
		if md.ResourceMetrics().Len() != 2 || md.DataPointCount() != 4 {
			t.Fatalf("resources %d, points %d; want the two api targets with two temperature points each", md.ResourceMetrics().Len(), md.DataPointCount())
		}
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			if ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics(); ms.Len() != 1 {
				t.Fatalf("resource %d keeps %d metrics", i, ms.Len())
			}
		}
	})
	t.Run("dropping everything forwards nothing", func(t *testing.T) {
		cfg := createDefaultConfig()
		cfg.MetricRelabelConfigs = rulesFrom(t, `[{source_labels: [__name__], regex: '.+', action: drop}]`)
		_, err := newTestProcessor(t, cfg).processMetrics(t.Context(), input())
		if err == nil {
			t.Fatal("an empty result is forwarded")
		}
	})
}

// A rule sees a classic histogram or summary point once, under its family
// name and without le/quantile: matching the family name takes the whole
// point (Prometheus would drop only the series named exactly so).
func TestHistogramPointIsOneUnit(t *testing.T) {
	md := runRules(t, `[{source_labels: [__name__], regex: 'rpc_seconds', action: drop}]`)
	if _, ms := find(md, "rpc_seconds"); len(ms) != 0 {
		t.Fatal("rpc_seconds is still there")
	}
	md = runRules(t, `[{source_labels: [__name__], regex: 'rpc_seconds_bucket', action: drop}]`)
	if _, ms := find(md, "rpc_seconds"); len(ms) != 2 {
		t.Fatal("a rule on a series name of a histogram point took the point")
	}
}
