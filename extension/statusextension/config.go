package statusextension

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"

	"github.com/sluicehq/sluice/internal/confsplit"
)

// Config is the HTTP server of the status page: the core server block
// (endpoint, TLS, auth, CORS, ...), squashed so that `endpoint` sits at the
// top as in the other collector extensions.
type Config struct {
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
}

var _ component.Config = (*Config)(nil)

// Unmarshal reads the server block with its own unmarshaller, which skips
// unknown keys (see internal/confsplit); the extension has no keys of its
// own, so any other key is a mistake and the strict unmarshal names it.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	server, rest := confsplit.Split(conf, c.ServerConfig)
	if err := c.ServerConfig.Unmarshal(server); err != nil {
		return err
	}
	return rest.Unmarshal(&struct{}{})
}

// Validate checks the config without changing it.
func (c *Config) Validate() error {
	if c.ServerConfig.NetAddr.Endpoint == "" {
		return errors.New("endpoint must not be empty (for example 127.0.0.1:8889)")
	}
	return nil
}
