package remotewriteexporter

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
)

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no endpoint", func(c *Config) { c.ClientConfig.Endpoint = "" }, "endpoint: required"},
		{"bad endpoint", func(c *Config) { c.ClientConfig.Endpoint = "prometheus:9090" }, `endpoint: "prometheus:9090" is not an http or https URL`},
		{"reserved header", func(c *Config) {
			c.ClientConfig.Headers = configopaque.MapList{{Name: "content-type", Value: "x"}}
		}, "headers: Content-Type is set by the exporter"},
		{"compression", func(c *Config) { c.ClientConfig.Compression = "gzip" }, "compression: remote write bodies are always snappy-compressed"},
		{"message", func(c *Config) { c.ProtobufMessage = "v2" }, `protobuf_message: "v2" is neither`},
		{"external label name", func(c *Config) { c.ExternalLabels = map[string]string{"__x": "y"} }, `external_labels: "__x"`},
		{"external label value", func(c *Config) { c.ExternalLabels = map[string]string{"cluster": ""} }, `external_labels: "cluster" has an empty value`},
		{"shards", func(c *Config) { c.Shards = 0 }, "shards: must be between 1 and 256"},
		{"batch", func(c *Config) { c.MaxSamplesPerSend = 0 }, "max_samples_per_send: must be at least 1"},
		{"retry", func(c *Config) { c.RetryOnFailure.MaxInterval = 1 }, "retry_on_failure::max_interval"},
		{"auth retry interval", func(c *Config) { c.RetryOnAuthError.Interval = 0 },
			"retry_on_auth_error::interval: must be positive when retry_on_auth_error::enabled is true, got 0s"},
		{"queue dir", func(c *Config) { c.Queue.Directory = "" }, "queue::directory: required"},
		{"queue size", func(c *Config) { c.Queue.MaxSize = 1000 }, "queue::max_size: 1000 bytes is too small for 4 shards"},
		{"sync", func(c *Config) { c.Queue.Sync = "sometimes" }, `queue::sync: "sometimes" is not one of always, interval, never`},
		{"full policy", func(c *Config) { c.Queue.FullPolicy = "drop_newest" }, `queue::full_policy: "drop_newest" is not one of drop_oldest, block`},
		{"timeout", func(c *Config) { c.ClientConfig.Timeout = 0 }, "timeout: must be positive"},
		{"endpoint and endpoints", func(c *Config) { c.Endpoints = []string{"http://a:9090/api/v1/write"} },
			"endpoint and endpoints exclude each other: list every endpoint under endpoints"},
		{"endpoints URL", func(c *Config) {
			c.ClientConfig.Endpoint, c.Endpoints = "", []string{"http://a:9090/w", "gateway-1:9090"}
		},
			`endpoints[1]: "gateway-1:9090" is not an http or https URL`},
		{"endpoints twice", func(c *Config) {
			c.ClientConfig.Endpoint, c.Endpoints = "", []string{"http://a:9090/w", "http://a:9090/w"}
		},
			`endpoints[1]: "http://a:9090/w" is listed twice`},
		{"no endpoint", func(c *Config) { c.ClientConfig.Endpoint = "" }, "endpoint: required"},
		{"balance", func(c *Config) { c.Balance = "round_robin" }, `balance: "round_robin" is not "series" or "replicate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.ClientConfig.Endpoint = "http://127.0.0.1:9090/api/v1/write"
			if err := cfg.Validate(); err != nil {
				t.Fatalf("the base config is invalid: %v", err)
			}
			tc.mut(cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigFromYAMLKeys(t *testing.T) {
	cfg := createDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{
		"endpoint":                         "https://mimir.example/api/v1/push",
		"headers":                          map[string]any{"X-Scope-OrgID": "team-a"},
		"protobuf_message":                 MessageV2,
		"external_labels":                  map[string]any{"cluster": "eu-1"},
		"resource_to_telemetry_conversion": map[string]any{"enabled": true},
		"target_info":                      map[string]any{"enabled": true},
		"max_sample_age":                   "2h",
		"shards":                           8,
		"retry_on_auth_error":              map[string]any{"enabled": false, "interval": "5m"},
		"queue":                            map[string]any{"directory": "/data", "max_size": 2 << 30, "sync": "always", "full_policy": "block"},
	}).Unmarshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	if v, _ := cfg.ClientConfig.Headers.Get("X-Scope-OrgID"); v != "team-a" || cfg.Shards != 8 || cfg.Queue.FullPolicy != "block" || !cfg.TargetInfo.Enabled || cfg.MaxSampleAge.Hours() != 2 ||
		cfg.RetryOnAuthError.Enabled || cfg.RetryOnAuthError.Interval.Minutes() != 5 {
		t.Fatalf("config not read as written: %+v", cfg)
	}
	bad := createDefaultConfig()
	err = confmap.NewFromStringMap(map[string]any{"queue": map[string]any{"dir": "/x"}}).Unmarshal(bad)
	if err == nil || !strings.Contains(err.Error(), "dir") {
		t.Fatalf("unknown key: err %v, want it named", err)
	}
}
