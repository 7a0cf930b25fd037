package relabelprocessor

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/sluicehq/sluice/internal/promseries"
)

// The cases cover every action. A rule here does not look at `le` or
// `quantile` or at the _bucket/_sum/_count suffixes: rules see a classic
// histogram or summary point once, under its family name (see README).
var oracleCases = []struct{ name, rules string }{
	{"keep", `[{source_labels: [__name__], regex: "http_.*|temperature|queue_depth", action: keep}]`},
	{"drop", `[{source_labels: [method], regex: POST, action: drop}]`},
	{"drop_resource", `[{source_labels: [job], regex: api, action: drop}]`},
	{"keepequal", `[{source_labels: [zone], target_label: area, action: keepequal}]`},
	{"dropequal", `[{source_labels: [zone], target_label: area, action: dropequal}]`},
	{"replace_new_label", `[{target_label: region, replacement: eu}]`},
	{"replace_point_label", `[{source_labels: [code], regex: '(\d)\d\d', target_label: code, replacement: '${1}xx'}]`},
	{"replace_collided_label", `[{source_labels: [a_b], regex: '(.*);(.*)', target_label: a_b, replacement: '$2-$1'}]`},
	{"replace_instance_some_points", `[{source_labels: [instance, method], regex: 'a:1;GET', target_label: instance, replacement: 'moved:1'}]`},
	{"replace_job", `[{source_labels: [job], regex: 'shop/(.*)', target_label: job, replacement: '$1'}]`},
	{"replace_delete", `[{source_labels: [method], regex: GET, target_label: method, replacement: ''}]`},
	{"rename", `[{source_labels: [__name__], regex: '(.*)', target_label: __name__, replacement: 'app_$1'}]`},
	{"rename_some_points", `[{source_labels: [__name__, method], regex: '(.*);GET', target_label: __name__, replacement: 'get_$1'}]`},
	{"hashmod", `[{source_labels: [instance, method], modulus: 4, target_label: shard, action: hashmod}, {source_labels: [shard], regex: '[01]', action: keep}]`},
	{"labelmap", `[{regex: '(room|method|queue_name)', replacement: 'x_$1', action: labelmap}]`},
	{"labeldrop", `[{regex: 'code|queue_name|a_b', action: labeldrop}]`},
	{"labeldrop_job", `[{regex: 'job', action: labeldrop}]`},
	{"labeldrop_overriding_attribute", `[{target_label: job, replacement: override}, {regex: 'job', action: labeldrop}]`},
	{"labelkeep", `[{regex: '__name__|job|instance|method|le|quantile', action: labelkeep}]`},
	{"lowercase", `[{source_labels: [Env], target_label: env, action: lowercase}]`},
	{"uppercase", `[{source_labels: [method], target_label: method, action: uppercase}, {source_labels: [instance], target_label: instance, action: uppercase}]`},
	{"mixed", `[
		{source_labels: [__name__], regex: 'rpc_quantiles.*', action: drop},
		{source_labels: [job, instance], separator: '@', regex: '(.*)@(.*)', target_label: origin, replacement: '$1 on $2'},
		{source_labels: [code], regex: '5..', action: drop},
		{regex: 'Env', action: labeldrop},
		{source_labels: [room], target_label: room, action: lowercase}]`},
}

// TestOracle checks every action against Prometheus' own relabel code: the
// series the exporter would send after the processor must be exactly the
// series Prometheus' relabeling makes of the series it would send before.
func TestOracle(t *testing.T) {
	for _, opts := range []struct {
		name string
		cfg  func(*Config)
	}{
		{"defaults", func(*Config) {}},
		{"suffixes_and_resource_labels", func(c *Config) {
			c.AddMetricSuffixes, c.ResourceToTelemetryConversion.Enabled = true, true
		}},
		{"no_cache", func(c *Config) { c.MaxCacheSize = 0 }},
		{"tiny_cache", func(c *Config) { c.MaxCacheSize = 2 }},
	} {
		for _, tc := range oracleCases {
			t.Run(opts.name+"/"+tc.name, func(t *testing.T) {
				cfg := createDefaultConfig()
				opts.cfg(cfg)
				cfg.MetricRelabelConfigs = rulesFrom(t, tc.rules)
				if err := cfg.Validate(); err != nil {
					t.Fatal(err)
				}
				rules, _ := compileRules(cfg.MetricRelabelConfigs)
				popts := promseries.Options{AddMetricSuffixes: cfg.AddMetricSuffixes, ResourceToLabels: cfg.ResourceToTelemetryConversion.Enabled}
				want := oracle(t, rules, popts)
				p := newTestProcessor(t, cfg)
				for round := 0; round < 2; round++ { // the second round answers from the cache
					got := series(t, process(t, p, input()), popts)
					if d := diff(want, got); d != "" {
						t.Fatalf("round %d: differs from Prometheus' relabeling (- want, + got):\n%s", round, d)
					}
				}
			})
		}
	}
}

// oracle applies Prometheus' relabeling to every series of the input.
func oracle(t *testing.T, rules []*relabel.Config, opts promseries.Options) []string {
	var want []string
	lb := labels.NewBuilder(labels.EmptyLabels())
	if _, err := promseries.Walk(input(), opts, func(s *promseries.Sample) error {
		lb.Reset(labels.New(s.Labels...))
		if !relabel.ProcessBuilder(lb, rules...) || lb.Get(model.MetricNameLabel) == "" {
			return nil
		}
		want = append(want, sampleLine(lb.Labels(), s))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	if len(want) == 0 {
		t.Fatal("the case drops everything: it tests nothing")
	}
	return want
}

func diff(want, got []string) string {
	w, g := map[string]int{}, map[string]int{}
	for _, s := range want {
		w[s]++
	}
	for _, s := range got {
		g[s]++
	}
	var out []string
	for s, n := range w {
		if g[s] < n {
			out = append(out, "- "+s)
		}
	}
	for s, n := range g {
		if w[s] < n {
			out = append(out, "+ "+s)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// Callers run concurrently (several receivers feed one pipeline): each gets
// Prometheus' answer while they share and evict the cache.
func TestConcurrentCallers(t *testing.T) {
	for _, size := range []int{2, 100_000} {
		cfg := createDefaultConfig()
		cfg.MaxCacheSize = size
		cfg.MetricRelabelConfigs = rulesFrom(t, oracleCases[len(oracleCases)-1].rules)
		rules, _ := compileRules(cfg.MetricRelabelConfigs)
		want := oracle(t, rules, promseries.Options{})
		p := newTestProcessor(t, cfg)
		errs := make(chan string, 4)
		for g := 0; g < 4; g++ {
			go func() {
				for i := 0; i < 50; i++ {
					out, err := p.processMetrics(t.Context(), input())
					if err != nil {
						errs <- err.Error()
						return
					}
					var got []string
					if _, err := promseries.Walk(out, promseries.Options{}, func(s *promseries.Sample) error {
						got = append(got, sampleLine(labels.New(s.Labels...), s))
						return nil
					}); err != nil {
						errs <- err.Error()
						return
					}
					sort.Strings(got)
					if d := diff(want, got); d != "" {
						errs <- d
						return
					}
				}
				errs <- ""
			}()
		}
		for g := 0; g < 4; g++ {
			if e := <-errs; e != "" {
				t.Fatalf("cache size %d: %s", size, e)
			}
		}
	}
}
