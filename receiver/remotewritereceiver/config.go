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
	// Limits bound what one push may hold and how many are worked on at
	// once, so that hostile or broken senders cannot exhaust a gateway.
	Limits `mapstructure:",squash"`
}

// Limits are what one push may hold and how many pushes are read and decoded
// at once; 0 turns a limit off. A push over a limit is refused as a whole
// (the pipeline never sees it) and counted by the key it broke.
type Limits struct {
	// LabelLimit is the most labels (with __name__) a series may have.
	LabelLimit int `mapstructure:"label_limit"`
	// LabelNameLengthLimit and LabelValueLengthLimit bound one label's
	// name and value, in bytes.
	LabelNameLengthLimit  int `mapstructure:"label_name_length_limit"`
	LabelValueLengthLimit int `mapstructure:"label_value_length_limit"`
	// MaxSeriesPerRequest is the most series one push may carry.
	MaxSeriesPerRequest int `mapstructure:"max_series_per_request"`
	// MaxDecompressedBodySize bounds a body once snappy is undone; the
	// size snappy announces is checked before any memory is taken.
	MaxDecompressedBodySize int64 `mapstructure:"max_decompressed_body_size"`
	// MaxRequestMemory bounds what a push is estimated to take once decoded
	// (see limits.go): a few bytes on the wire can be kilobytes of pdata
	// (a sample repeats all of its series' labels, a native histogram's
	// sparse buckets are written densely).
	MaxRequestMemory int64 `mapstructure:"max_request_memory"`
	// MaxConcurrentRequests bounds the pushes being read, decoded and
	// handed to the pipeline at once; more are answered 503 with
	// Retry-After. Together with the limits above it bounds the memory
	// the receiver can take.
	MaxConcurrentRequests int `mapstructure:"max_concurrent_requests"`
}

// DefaultPipelineTimeout is well inside the senders' own timeouts
// (Prometheus' remote_timeout is 30 s, vmagent's send timeout 1 min).
const DefaultPipelineTimeout = 10 * time.Second

// DefaultEndpoint is where the receiver listens unless told otherwise:
// Prometheus' own remote-write port, on loopback.
const DefaultEndpoint = "localhost:9090"

// Default limits: well above what real senders push (Prometheus sends at
// most 2,000 samples per request by default, vmagent blocks of 8 MiB
// decompressed and 10,000 rows; Mimir refuses series of more than 30 labels,
// names over 1 KiB and values over 2 KiB, VictoriaMetrics more than 40
// labels), since a push over one is lost to its sender as a whole; and low
// enough that DefaultMaxConcurrentRequests pushes at the limits fit a 1 GiB
// gateway (limits_test.go measures it).
const (
	DefaultLabelLimit              = 128
	DefaultLabelNameLengthLimit    = 1 << 10
	DefaultLabelValueLengthLimit   = 64 << 10
	DefaultMaxSeriesPerRequest     = 50_000
	DefaultMaxDecompressedBodySize = 32 << 20
	DefaultMaxRequestMemory        = 32 << 20
	DefaultMaxConcurrentRequests   = 8
)

// Server timeouts: confighttp leaves the body without a read timeout and
// gives a minute for the headers, so a client trickling its request holds a
// connection, and a slot of max_concurrent_requests, for as long as it
// likes. A push of a few MiB takes well under a second on any real link;
// 30 s is Prometheus' own remote_timeout, after which it gives up anyway.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
)

func createDefaultConfig() *Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = DefaultEndpoint
	server.ReadHeaderTimeout = DefaultReadHeaderTimeout
	server.ReadTimeout = DefaultReadTimeout
	return &Config{ServerConfig: server, Settings: Settings{
		Path:            "/api/v1/write",
		PipelineTimeout: DefaultPipelineTimeout,
		Limits: Limits{
			LabelLimit:              DefaultLabelLimit,
			LabelNameLengthLimit:    DefaultLabelNameLengthLimit,
			LabelValueLengthLimit:   DefaultLabelValueLengthLimit,
			MaxSeriesPerRequest:     DefaultMaxSeriesPerRequest,
			MaxDecompressedBodySize: DefaultMaxDecompressedBodySize,
			MaxRequestMemory:        DefaultMaxRequestMemory,
			MaxConcurrentRequests:   DefaultMaxConcurrentRequests,
		},
	}}
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
	for _, l := range []struct {
		key string
		v   int64
	}{
		{"label_limit", int64(c.LabelLimit)}, {"label_name_length_limit", int64(c.LabelNameLengthLimit)},
		{"label_value_length_limit", int64(c.LabelValueLengthLimit)}, {"max_series_per_request", int64(c.MaxSeriesPerRequest)},
		{"max_decompressed_body_size", c.MaxDecompressedBodySize}, {"max_request_memory", c.MaxRequestMemory},
		{"max_concurrent_requests", int64(c.MaxConcurrentRequests)},
	} {
		if l.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative; give 0 for no limit", l.key, l.v))
		}
	}
	return errors.Join(errs...)
}
