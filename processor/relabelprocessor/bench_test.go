package relabelprocessor

import (
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/internal/promseries"
)

const benchPoints = 1000

// benchInput is one scrape as the prometheus receiver hands it on: one
// target, 100 gauge families of 10 series with four labels each.
func benchInput() pmetric.Metrics {
	b := promseries.NewBuilder("scrape")
	for f := 0; f < benchPoints/10; f++ {
		name := fmt.Sprintf("app_metric_%d", f)
		if f%10 == 0 {
			name = fmt.Sprintf("go_metric_%d", f)
		}
		b.SetMetadata(name, promseries.Metadata{Type: model.MetricTypeGauge})
		for s := 0; s < 10; s++ {
			b.Add(labels.FromStrings("__name__", name, "job", "node", "instance", "10.0.0.1:9100",
				"device", fmt.Sprintf("sd%c", 'a'+s), "mode", []string{"user", "system"}[s%2],
				"cpu", fmt.Sprint(s), "pod", "web-7d9f"), 1_700_000_000_000, float64(s), 0)
		}
	}
	return b.Metrics()
}

var benchRules = map[string]string{
	"keep_drop_3": `[
		{source_labels: [__name__], regex: 'go_.*', action: drop},
		{source_labels: [mode], regex: 'idle', action: drop},
		{source_labels: [job], regex: 'node|api', action: keep}]`,
	"mixed_10": `[
		{source_labels: [__name__], regex: 'go_.*', action: drop},
		{source_labels: [instance], regex: '([^:]+):.*', target_label: host},
		{source_labels: [device], regex: 'sd[a-c]', target_label: disk_class, replacement: fast},
		{regex: 'pod', action: labeldrop},
		{source_labels: [mode], target_label: mode, action: uppercase},
		{source_labels: [cpu], modulus: 4, target_label: cpu_group, action: hashmod},
		{source_labels: [mode], regex: 'IDLE', action: drop},
		{regex: '(device)', replacement: 'disk_$1', action: labelmap},
		{source_labels: [job], regex: 'node', action: keep},
		{target_label: cluster, replacement: eu-1}]`,
}

// BenchmarkRelabel reports ns per data point: "hit" relabels a scrape whose
// label sets are all in the cache (every scrape after the first), "miss"
// runs the rules on every point (cache off).
func BenchmarkRelabel(b *testing.B) {
	src := benchInput()
	for _, name := range []string{"keep_drop_3", "mixed_10"} {
		for _, mode := range []string{"hit", "miss"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				cfg := createDefaultConfig()
				cfg.MetricRelabelConfigs = rulesFrom(b, benchRules[name])
				if mode == "miss" {
					cfg.MaxCacheSize = 0
				}
				p := newTestProcessor(b, cfg)
				md := pmetric.NewMetrics()
				src.CopyTo(md)
				process(b, p, md) // fills the cache
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					md := pmetric.NewMetrics()
					src.CopyTo(md)
					b.StartTimer()
					process(b, p, md)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchPoints, "ns/point")
			})
		}
	}
}
