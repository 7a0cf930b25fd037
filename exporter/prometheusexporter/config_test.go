package prometheusexporter

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/sluicehq/sluice/exporter/prometheusexporter/internal/metadata"
	"github.com/sluicehq/sluice/internal/comptest"
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
	if cfg.ServerConfig.NetAddr.Endpoint != "127.0.0.1:9464" || cfg.MetricExpiration != 5*time.Minute || !cfg.SendTimestamps ||
		cfg.AddMetricSuffixes || cfg.TargetInfo.Enabled || cfg.ResourceToTelemetryConversion.Enabled {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, err = loadConfig(t, "custom")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerConfig.NetAddr.Endpoint != "0.0.0.0:19464" || !cfg.ServerConfig.TLS.HasValue() || cfg.ServerConfig.TLS.Get().CertFile != "/etc/sluice/tls.crt" ||
		!cfg.ServerConfig.Auth.HasValue() || cfg.ServerConfig.Auth.Get().Config.AuthenticatorID.String() != "basicauth/scrapers" {
		t.Fatalf("custom server block: %+v", cfg.ServerConfig)
	}
	want := Settings{MetricExpiration: 10 * time.Minute, AddMetricSuffixes: true,
		ResourceToTelemetryConversion: EnabledConfig{true}, TargetInfo: EnabledConfig{true}}
	if cfg.Settings != want {
		t.Fatalf("custom settings: %+v, want %+v", cfg.Settings, want)
	}
}

// Each mistake a user can make, with the message they read.
func TestConfigErrors(t *testing.T) {
	for name, want := range map[string]string{
		"no_endpoint":     "endpoint: required, e.g. 127.0.0.1:9464",
		"zero_expiration": "metric_expiration: must be positive (how long a series stays after it was last received), got 0s",
		"misspelt":        "has invalid keys: metric_expirattion",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
		})
	}
}

func TestValidateDoesNotMutate(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MetricExpiration = -time.Second
	before := *cfg
	_ = cfg.Validate()
	if cfg.Settings != before.Settings || cfg.ServerConfig.NetAddr != before.ServerConfig.NetAddr {
		t.Fatal("Validate changed the config")
	}
}
