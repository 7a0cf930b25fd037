package relabelprocessor

import (
	"testing"

	"go.opentelemetry.io/collector/component"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/processor/relabelprocessor/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig()
	return cfg, comptest.LoadConfig(t, component.NewIDWithName(metadata.Type, name).String(), cfg)
}

func TestConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.MetricRelabelConfigs) != 2 || cfg.MaxCacheSize != 5000 || !cfg.AddMetricSuffixes || !cfg.ResourceToTelemetryConversion.Enabled {
		t.Fatalf("read %+v", cfg)
	}
	rules, err := compileRules(cfg.MetricRelabelConfigs)
	if err != nil || rules[1].Action != "replace" || rules[1].Replacement != "$1" || rules[1].Separator != ";" {
		t.Fatalf("Prometheus' defaults not applied: %+v %v", rules[1], err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, want := range map[string]string{
		"bad_regex":       "metric_relabel_configs[0]::regex: error parsing regexp: missing closing ): `^(?s:go_(.*)$`",
		"no_target":       "metric_relabel_configs[1]: relabel configuration for replace action requires 'target_label' value",
		"unknown_key":     "metric_relabel_configs[0]::source_label: unknown key (a rule takes source_labels, separator, regex, modulus, target_label, replacement, action)",
		"unknown_action":  `metric_relabel_configs[0]::action: unknown action "delete" (replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase)`,
		"hashmod":         "metric_relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus",
		"labeldrop_extra": "metric_relabel_configs[0]: labeldrop action requires only 'regex', and no other fields",
		"empty":           "metric_relabel_configs is empty: give at least one rule",
		"negative_cache":  "max_cache_size must be >= 0, got -1",
		"misspelt":        "decoding failed due to the following error(s):\n\n'relabelprocessor.Config' has invalid keys: metric_relabel_config",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}
