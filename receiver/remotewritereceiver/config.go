package remotewritereceiver

import (
	"errors"
	"fmt"
	"strings"
	"time"

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
	// PipelineTimeout bounds how long a push waits for the pipeline to
	// take its data (a full queue with full_policy: block, a batch
	// processor pushing back) before it is answered 503, so the sender
	// retries instead of timing out. 0 waits as long as the sender does.
	PipelineTimeout time.Duration `mapstructure:"pipeline_timeout"`
}

// DefaultPipelineTimeout is well inside the senders' own timeouts
// (Prometheus' remote_timeout is 30 s, vmagent's send timeout 1 min).
const DefaultPipelineTimeout = 10 * time.Second

// DefaultEndpoint is where the receiver listens unless told otherwise:
// Prometheus' own remote-write port, on loopback.
const DefaultEndpoint = "localhost:9090"

func createDefaultConfig() *Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = DefaultEndpoint
	return &Config{ServerConfig: server, Settings: Settings{Path: "/api/v1/write", PipelineTimeout: DefaultPipelineTimeout}}
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
	if c.PipelineTimeout < 0 {
		errs = append(errs, fmt.Errorf("pipeline_timeout: %s is negative; give 0 to wait as long as the sender does", c.PipelineTimeout))
	}
	return errors.Join(errs...)
}
