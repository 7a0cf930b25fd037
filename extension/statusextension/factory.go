package statusextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"

	"github.com/sluicehq/sluice/extension/statusextension/internal/metadata"
)

// defaultEndpoint is loopback only: the page shows target labels and
// backend URLs (redacted), which are not for everyone on the network.
const defaultEndpoint = "127.0.0.1:8889"

// NewFactory returns the factory of the `status` extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = defaultEndpoint
	return &Config{ServerConfig: srv}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newStatus(cfg.(*Config), set), nil
}
