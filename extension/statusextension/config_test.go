package statusextension

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"

	"github.com/sluicehq/sluice/extension/statusextension/internal/metadata"
	"github.com/sluicehq/sluice/internal/comptest"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	return cfg, comptest.LoadConfig(t, component.NewIDWithName(metadata.Type, name).String(), cfg)
}

func TestConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	if err != nil || cfg.ServerConfig.NetAddr.Endpoint != "127.0.0.1:8889" {
		t.Fatalf("defaults: endpoint %q, %v", cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	cfg, err = loadConfig(t, "custom")
	if err != nil || cfg.ServerConfig.NetAddr.Endpoint != "0.0.0.0:18889" || !cfg.ServerConfig.TLS.HasValue() || cfg.ServerConfig.TLS.Get().CertFile != "/etc/sluice/tls.crt" {
		t.Fatalf("custom: %+v, %v", cfg.ServerConfig, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, want := range map[string]string{
		"no_endpoint": "endpoint must not be empty",
		"misspelt":    "has invalid keys: endpointt",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
		})
	}
}
