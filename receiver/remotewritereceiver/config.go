package remotewritereceiver

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"

	"github.com/sluicehq/sluice/internal/confsplit"
)

// Config is the receiver's configuration: the collector's HTTP server block
// (endpoint, TLS, auth, max_request_body_size, ...) and the path pushes go to.
type Config struct {
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	Settings     `mapstructure:",squash"`
}

// Settings are the receiver's own keys.
type Settings struct {
	// Path is where remote write requests are accepted.
	Path string `mapstructure:"path"`
}

// DefaultEndpoint is where the receiver listens unless told otherwise:
// Prometheus' own remote-write port, on loopback.
const DefaultEndpoint = "localhost:9090"

func createDefaultConfig() *Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = DefaultEndpoint
	return &Config{ServerConfig: server, Settings: Settings{Path: "/api/v1/write"}}
}

// Unmarshal reads the server block with its own unmarshaller and the rest
// strictly (see internal/confsplit).
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	server, own := confsplit.Split(conf, c.ServerConfig)
	if err := c.ServerConfig.Unmarshal(server); err != nil {
		return err
	}
	return own.Unmarshal(&c.Settings)
}

// Validate names the key at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.ServerConfig.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: required, e.g. 0.0.0.0:9090"))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, fmt.Errorf("path: %q must start with /", c.Path))
	}
	return errors.Join(errs...)
}
