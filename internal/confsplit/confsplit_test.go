package confsplit

import (
	"testing"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"
)

func TestSplit(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"endpoint":              "127.0.0.1:9090", // squashed into ServerConfig from confignet
		"max_request_body_size": 10,
		"path":                  "/push",
		"pathh":                 "/typo",
	})
	inner, rest := Split(conf, confighttp.ServerConfig{})
	if got := inner.AllKeys(); len(got) != 2 || !inner.IsSet("endpoint") || !inner.IsSet("max_request_body_size") {
		t.Fatalf("server block keys: %v", got)
	}
	if got := rest.AllKeys(); len(got) != 2 || !rest.IsSet("path") || !rest.IsSet("pathh") {
		t.Fatalf("own keys: %v", got)
	}
}
