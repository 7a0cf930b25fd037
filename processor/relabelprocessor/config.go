package relabelprocessor

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
	"go.yaml.in/yaml/v2"
)

// Config is the relabel processor's configuration.
type Config struct {
	// MetricRelabelConfigs are Prometheus relabel rules, exactly as under
	// metric_relabel_configs in prometheus.yml. Kept as read; compiled with
	// Prometheus' own loader by Validate and when the processor starts.
	MetricRelabelConfigs []map[string]any `mapstructure:"metric_relabel_configs"`
	// MaxCacheSize bounds the cache of rule results, keyed on a data point's
	// labels; 0 turns the cache off.
	MaxCacheSize int `mapstructure:"max_cache_size"`
	// AddMetricSuffixes and ResourceToTelemetryConversion render names and
	// labels as the remote_write exporter does with the same keys: set them
	// alike on both so rules see what is sent.
	AddMetricSuffixes             bool          `mapstructure:"add_metric_suffixes"`
	ResourceToTelemetryConversion EnabledConfig `mapstructure:"resource_to_telemetry_conversion"`
}

// EnabledConfig is a block with one key, enabled.
type EnabledConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

func createDefaultConfig() *Config {
	return &Config{MaxCacheSize: 100_000}
}

// Validate compiles every rule, so a bad rule fails `sluice validate`.
func (c *Config) Validate() error {
	var errs []error
	if len(c.MetricRelabelConfigs) == 0 {
		errs = append(errs, errors.New("metric_relabel_configs is empty: give at least one rule"))
	}
	if c.MaxCacheSize < 0 {
		errs = append(errs, fmt.Errorf("max_cache_size must be >= 0, got %d", c.MaxCacheSize))
	}
	if _, err := compileRules(c.MetricRelabelConfigs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ruleKeys are the keys of a Prometheus relabel config.
var ruleKeys = map[string]bool{
	"source_labels": true, "separator": true, "regex": true, "modulus": true,
	"target_label": true, "replacement": true, "action": true,
}

// compileRules turns the rules as read into Prometheus relabel configs, with
// Prometheus' defaults and checks; every error names the rule and key.
func compileRules(raw []map[string]any) ([]*relabel.Config, error) {
	rules := make([]*relabel.Config, 0, len(raw))
	var errs []error
	for i, r := range raw {
		rule, err := compileRule(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("metric_relabel_configs[%d]%w", i, err))
			continue
		}
		rules = append(rules, rule)
	}
	return rules, errors.Join(errs...)
}

// keyError is an error about one key of a rule: "::key: message".
type keyError struct{ key, msg string }

func (e keyError) Error() string {
	if e.key == "" {
		return ": " + e.msg
	}
	return "::" + e.key + ": " + e.msg
}

func compileRule(r map[string]any) (*relabel.Config, error) {
	var unknown []string
	for k := range r {
		if !ruleKeys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, keyError{unknown[0], "unknown key (a rule takes source_labels, separator, regex, modulus, target_label, replacement, action)"}
	}
	if re, ok := r["regex"].(string); ok {
		if _, err := relabel.NewRegexp(re); err != nil {
			return nil, keyError{"regex", err.Error()}
		}
	}
	if a, ok := r["action"].(string); ok {
		var act relabel.Action
		if err := yaml.Unmarshal([]byte(fmt.Sprintf("%q", a)), &act); err != nil {
			return nil, keyError{"action", fmt.Sprintf("unknown action %q (replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase)", a)}
		}
	}
	out, err := yaml.Marshal(r)
	if err != nil {
		return nil, keyError{"", err.Error()}
	}
	rule := &relabel.Config{}
	if err := yaml.UnmarshalStrict(out, rule); err != nil {
		return nil, keyError{"", strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if err := rule.Validate(model.UTF8Validation); err != nil {
		return nil, keyError{"", err.Error()}
	}
	return rule, nil
}
