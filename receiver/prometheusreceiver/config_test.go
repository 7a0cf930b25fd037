package prometheusreceiver

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/sluicehq/sluice/internal/comptest"
)

// loadConfig reads one receiver entry of testdata/config.yaml the way the
// collector does: unmarshal, then validate.
func loadConfig(t *testing.T, id string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	return cfg, comptest.LoadConfig(t, component.MustNewIDWithName("prometheus", strings.TrimPrefix(id, "prometheus/")).String(), cfg)
}

func TestConfigValid(t *testing.T) {
	cfg, err := loadConfig(t, "prometheus/valid")
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.PrometheusConfig.Prometheus()
	if got := time.Duration(pc.GlobalConfig.ScrapeInterval); got != 30*time.Second {
		t.Errorf("global scrape_interval = %s, want 30s", got)
	}
	sc := pc.ScrapeConfigs[0]
	// Prometheus' loader filled the defaults from global.
	if sc.JobName != "node" || time.Duration(sc.ScrapeInterval) != 30*time.Second || sc.MetricsPath != "/metrics" {
		t.Errorf("scrape config = %s interval %s path %s", sc.JobName, time.Duration(sc.ScrapeInterval), sc.MetricsPath)
	}
	if len(sc.RelabelConfigs) != 1 || sc.RelabelConfigs[0].TargetLabel != "host" || sc.RelabelConfigs[0].Replacement != "$1" {
		t.Errorf("relabel configs = %+v", sc.RelabelConfigs)
	}
	if cfg.Shard != (ShardConfig{Count: 3, Index: 2}) {
		t.Errorf("shard = %+v", cfg.Shard)
	}
}

// Every config a user can get wrong fails with a message naming what to fix.
func TestConfigErrors(t *testing.T) {
	cases := map[string][]string{
		"prometheus/rule_files":      {`"rule_files" is not taken by the prometheus receiver`, "does not evaluate rules"},
		"prometheus/remote_write":    {`"remote_write" is not taken`, "use the remote_write exporter"},
		"prometheus/external_labels": {`"global::external_labels" is not taken`, "set external_labels on the remote_write exporter"},
		"prometheus/bad_regex":       {"Prometheus config", "error parsing regexp", "node_(cpu"},
		"prometheus/misspelt":        {"Prometheus config", "field scrape_intervall not found"},
		"prometheus/empty":           {"no scrape_configs and no scrape_config_files"},
		"prometheus/bad_shard":       {"shard::index must be in [0, shard::count-1] = [0, 2], got 3"},
		"prometheus/bad_loop":        {`scrape_loop must be "prometheus" or "sluice", got "vmagent"`},
		"prometheus/bad_cluster": {
			"cluster::enabled and shard::count are exclusive",
			`cluster::enabled needs scrape_loop "sluice"`,
			`cluster::listen_address: "7946" is not host:port`,
			`cluster::advertise_address: "sluice-0:7946": the host must be an IP address`,
			`cluster::peers[0]: "sluice-headless" is not host:port`,
			"cluster::handover_delay must be > 0, got 0s",
			"cluster::failure_timeout (1s) must be at least cluster::probe_interval (2s)",
			"cluster::tls::key_file is required",
			"cluster::tls::ca_file is required",
			"cluster::tls::insecure and cluster::tls::insecure_skip_verify are not taken",
		},
	}
	for id, wants := range cases {
		t.Run(id, func(t *testing.T) {
			_, err := loadConfig(t, id)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestConfigScrapeLoop(t *testing.T) {
	if got := createDefaultConfig().(*Config).ScrapeLoop; got != LoopSluice {
		t.Errorf("default scrape_loop = %q, want %q", got, LoopSluice)
	}
	cfg, err := loadConfig(t, "prometheus/prometheus_loop")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScrapeLoop != LoopPrometheus {
		t.Errorf("scrape_loop = %q, want %q", cfg.ScrapeLoop, LoopPrometheus)
	}
}

func TestConfigMissing(t *testing.T) {
	if err := confmap.Validate(createDefaultConfig()); err == nil || !strings.Contains(err.Error(), "config::scrape_configs") {
		t.Fatalf("empty config: %v", err)
	}
}

func TestConfigCluster(t *testing.T) {
	def := createDefaultConfig().(*Config).Cluster
	if def.Enabled || def.TLS != nil || def.ListenAddress != "0.0.0.0:7946" || def.JoinTimeout != 10*time.Second ||
		def.ProbeInterval != time.Second || def.FailureTimeout != 3*time.Second || def.HandoverDelay != 2*time.Second {
		t.Errorf("default cluster = %+v", def)
	}
	cfg, err := loadConfig(t, "prometheus/cluster")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if !c.Enabled || c.NodeName != "sluice-0" || c.ListenAddress != "127.0.0.1:7946" || c.AdvertiseAddress != "10.0.0.5:7946" ||
		len(c.Peers) != 2 || c.FailureTimeout != 5*time.Second || c.HandoverDelay != 2*time.Second ||
		c.TLS == nil || c.TLS.CAFile != "/etc/sluice/cluster/ca.crt" || c.TLS.ServerName != "sluice-cluster" {
		t.Errorf("cluster = %+v", c)
	}
}
