package prometheusreceiver

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	promconfig "github.com/prometheus/prometheus/config"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v2"
)

// Config is the `prometheus` receiver's configuration.
type Config struct {
	// PrometheusConfig is Prometheus' own configuration format, limited to the
	// sections about scraping: global, scrape_configs, scrape_config_files.
	PrometheusConfig *PromConfig `mapstructure:"config"`
	// Shard splits the targets among replicas: each scrapes only the targets
	// whose labels (after relabeling) hash to its index.
	Shard ShardConfig `mapstructure:"shard"`
	// Cluster shares the targets among replicas by gossip membership, with
	// handover on a rescale and takeover when a member dies (cluster.go).
	Cluster ClusterConfig `mapstructure:"cluster"`
	// StartTimestamps reads created timestamps (OpenMetrics _created lines,
	// the protobuf format's created fields) into the start time of counters,
	// histograms and summaries. Off by default, as in Prometheus (where it is
	// a feature flag): on OpenMetrics text without _created lines,
	// Prometheus' parser looks ahead through the rest of each family for
	// every sample, which cost 3.7 times the CPU of a scrape in bench W1.
	StartTimestamps bool `mapstructure:"start_timestamps"`
	// ScrapeLoop picks the loop that scrapes the targets: "sluice" (ours,
	// internal/scrapeloop, the default: Prometheus' discovery, relabelling,
	// HTTP client and parsers, with a compact per-target state) or
	// "prometheus" (Prometheus' scrape.Manager and its scrape cache). Both
	// stay in the tree while the first proves itself against the second.
	ScrapeLoop string `mapstructure:"scrape_loop"`
}

// The values of scrape_loop.
const (
	LoopPrometheus = "prometheus"
	LoopSluice     = "sluice"
)

// ShardConfig is `shard: {count: N, index: I}`; count 0 means no sharding.
type ShardConfig struct {
	Count int `mapstructure:"count"`
	Index int `mapstructure:"index"`
}

// PromConfig holds the Prometheus configuration, loaded and checked by
// Prometheus' own loader. It is unexported so the collector's validator does
// not walk into Prometheus' structs (their checks need Prometheus' context).
type PromConfig struct {
	loaded *promconfig.Config
}

// Prometheus returns the loaded configuration (nil when none was given).
func (c *PromConfig) Prometheus() *promconfig.Config {
	if c == nil {
		return nil
	}
	return c.loaded
}

// otherSections are the top-level keys of prometheus.yml the receiver does
// not take, each with the Sluice part that does its job.
var otherSections = map[string]string{
	"rule_files":   "Sluice does not evaluate rules; keep them in Prometheus, Mimir or a ruler that reads the backend",
	"alerting":     "Sluice does not send alerts; configure Alertmanager where the rules run",
	"remote_write": "use the remote_write exporter (exporters: remote_write: endpoint: ...) in the pipeline",
	"remote_read":  "Sluice does not serve or read queries",
	"storage":      "the remote_write exporter's queue: block sets what Sluice keeps on disk",
	"tracing":      "set service::telemetry::traces for Sluice's own traces",
	"otlp":         "use the otlp receiver for OTLP input",
	"runtime":      "Sluice's Go runtime is set by the collector (GOMEMLIMIT, memory_limiter)",
}

var allowedSections = map[string]bool{"global": true, "scrape_configs": true, "scrape_config_files": true}

// Unmarshal reads the `config:` block with Prometheus' own loader, so every
// default, check and compiled regex is exactly Prometheus'.
func (c *PromConfig) Unmarshal(conf *confmap.Conf) error {
	raw := conf.ToStringMap()
	var bad []string
	for k := range raw {
		if allowedSections[k] {
			continue
		}
		if why, ok := otherSections[k]; ok {
			bad = append(bad, fmt.Sprintf("%q is not taken by the prometheus receiver: %s", k, why))
		} else {
			bad = append(bad, fmt.Sprintf("%q is not a section of prometheus.yml that the prometheus receiver takes (global, scrape_configs, scrape_config_files)", k))
		}
	}
	if g, ok := raw["global"].(map[string]any); ok {
		if _, ok := g["external_labels"]; ok {
			bad = append(bad, `"global::external_labels" is not taken by the prometheus receiver: Prometheus adds external labels when it sends, so set external_labels on the remote_write exporter`)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return errors.New(strings.Join(bad, "; "))
	}
	out, err := yaml.Marshal(raw)
	if err != nil {
		return fmt.Errorf("re-encoding the Prometheus config: %w", err)
	}
	pc, err := promconfig.Load(string(out), slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("Prometheus config: %w", err)
	}
	// Load the scrape_config_files now, so a broken one fails validation.
	if _, err := pc.GetScrapeConfigs(); err != nil {
		return fmt.Errorf("Prometheus config: %w", err)
	}
	c.loaded = pc
	return nil
}

// Validate checks what Prometheus' loader does not: that there is something
// to scrape, the shard and the cluster settings.
func (c *Config) Validate() error {
	var errs []error
	if pc := c.PrometheusConfig.Prometheus(); pc == nil {
		errs = append(errs, errors.New("config: the Prometheus configuration (config::scrape_configs) is missing"))
	} else if len(pc.ScrapeConfigs) == 0 && len(pc.ScrapeConfigFiles) == 0 {
		errs = append(errs, errors.New("config: no scrape_configs and no scrape_config_files: nothing to scrape"))
	}
	if c.ScrapeLoop != LoopPrometheus && c.ScrapeLoop != LoopSluice {
		errs = append(errs, fmt.Errorf("scrape_loop must be %q or %q, got %q", LoopPrometheus, LoopSluice, c.ScrapeLoop))
	}
	switch {
	case c.Shard.Count < 0:
		errs = append(errs, fmt.Errorf("shard::count must be >= 0, got %d", c.Shard.Count))
	case c.Shard.Count > 0 && (c.Shard.Index < 0 || c.Shard.Index >= c.Shard.Count):
		errs = append(errs, fmt.Errorf("shard::index must be in [0, shard::count-1] = [0, %d], got %d", c.Shard.Count-1, c.Shard.Index))
	case c.Shard.Count == 0 && c.Shard.Index != 0:
		errs = append(errs, fmt.Errorf("shard::index is %d but shard::count is not set", c.Shard.Index))
	}
	errs = append(errs, c.Cluster.validate(c)...)
	return errors.Join(errs...)
}
