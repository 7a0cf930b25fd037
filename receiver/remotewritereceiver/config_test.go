package remotewritereceiver

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/receiver/remotewritereceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig()
	return cfg, comptest.LoadConfig(t, component.NewIDWithName(metadata.Type, name).String(), cfg)
}

func TestConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	if err != nil || cfg.ServerConfig.NetAddr.Endpoint != DefaultEndpoint || cfg.Path != "/api/v1/write" || cfg.PipelineTimeout != DefaultPipelineTimeout {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = loadConfig(t, "custom")
	if err != nil || cfg.ServerConfig.NetAddr.Endpoint != "0.0.0.0:19291" || cfg.Path != "/receive" ||
		cfg.ServerConfig.MaxRequestBodySize != 1<<20 || !cfg.ServerConfig.Auth.HasValue() || cfg.PipelineTimeout != 3*time.Second {
		t.Fatalf("custom: %+v %v", cfg, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, want := range map[string]string{
		"bad_path":         `path: "receive" must start with /`,
		"misspelt":         "has invalid keys: pathh",
		"negative_timeout": "pipeline_timeout: -1s is negative",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
		})
	}
}
