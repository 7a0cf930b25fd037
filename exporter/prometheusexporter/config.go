package prometheusexporter

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"

	"github.com/sluicehq/sluice/internal/confsplit"
)

// Config is the `prometheus` exporter's configuration.
type Config struct {
	// ServerConfig is the collector's HTTP server block: endpoint, tls,
	// auth, cors, ...
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// Settings are the exporter's own keys.
	Settings `mapstructure:",squash"`
}

// Settings are the keys of the exporter beside the HTTP server's.
type Settings struct {
	// MetricExpiration drops a series that has not been received for this
	// long, so a target or application that went away leaves /metrics.
	MetricExpiration time.Duration `mapstructure:"metric_expiration"`
	// SendTimestamps exposes each sample with its own timestamp (the
	// scrape time, for Prometheus data), as Prometheus' /federate does.
	SendTimestamps bool `mapstructure:"send_timestamps"`
	// AddMetricSuffixes appends unit and _total suffixes to OTLP-native
	// metric names, as the remote_write exporter's key of that name does;
	// Prometheus data keeps its names whatever this says.
	AddMetricSuffixes bool `mapstructure:"add_metric_suffixes"`
	// ResourceToTelemetryConversion turns every resource attribute of
	// OTLP-native data into a label (job and instance always are).
	ResourceToTelemetryConversion EnabledConfig `mapstructure:"resource_to_telemetry_conversion"`
	// TargetInfo exposes one target_info series per resource with its
	// attributes as labels.
	TargetInfo EnabledConfig `mapstructure:"target_info"`
}

// EnabledConfig is a block with one key, enabled.
type EnabledConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

// Defaults.
const (
	// defaultEndpoint is loopback only: what the pipeline carries is not
	// for everyone on the network unless the config says so.
	defaultEndpoint         = "127.0.0.1:9464"
	defaultMetricExpiration = 5 * time.Minute
)

func createDefaultConfig() *Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = defaultEndpoint
	return &Config{ServerConfig: srv, Settings: Settings{
		MetricExpiration: defaultMetricExpiration,
		SendTimestamps:   true,
	}}
}

// Unmarshal reads the server block with its own unmarshaller and the rest
// strictly: a squashed block with its own Unmarshal would otherwise make the
// collector accept any unknown key of the whole config (internal/confsplit).
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
		errs = append(errs, errors.New("endpoint: required, e.g. 127.0.0.1:9464 (host:port to serve /metrics on)"))
	}
	if c.MetricExpiration <= 0 {
		errs = append(errs, fmt.Errorf("metric_expiration: must be positive (how long a series stays after it was last received), got %s", c.MetricExpiration))
	}
	return errors.Join(errs...)
}
