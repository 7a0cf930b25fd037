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
	if cfg.LabelLimit != DefaultLabelLimit || cfg.MaxRequestMemory != DefaultMaxRequestMemory || cfg.MaxConcurrentRequests != DefaultMaxConcurrentRequests ||
		cfg.ServerConfig.ReadTimeout != DefaultReadTimeout || cfg.ServerConfig.ReadHeaderTimeout != DefaultReadHeaderTimeout {
		t.Fatalf("default limits: %+v, server %+v", cfg.Limits, cfg.ServerConfig)
	}
	cfg, err = loadConfig(t, "custom")
	if err != nil || cfg.ServerConfig.NetAddr.Endpoint != "0.0.0.0:19291" || cfg.Path != "/receive" ||
		cfg.ServerConfig.MaxRequestBodySize != 1<<20 || !cfg.ServerConfig.Auth.HasValue() || cfg.PipelineTimeout != 3*time.Second {
		t.Fatalf("custom: %+v %v", cfg, err)
	}
	want := createDefaultConfig().Limits
	want.LabelLimit, want.LabelValueLengthLimit, want.MaxConcurrentRequests = 64, 4096, 32
	if cfg.Limits != want || cfg.ServerConfig.ReadTimeout != 5*time.Second || cfg.ServerConfig.ReadHeaderTimeout != DefaultReadHeaderTimeout {
		t.Fatalf("custom limits: %+v, read timeouts %s %s", cfg.Limits, cfg.ServerConfig.ReadTimeout, cfg.ServerConfig.ReadHeaderTimeout)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, want := range map[string]string{
		"bad_path":         `path: "receive" must start with /`,
		"misspelt":         "has invalid keys: pathh",
		"negative_timeout": "pipeline_timeout: -1s is negative",
		"negative_limit":   "max_series_per_request: -1 is negative; give 0 for no limit",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
		})
	}
}
