package remotewriteexporter

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"

	"github.com/sluicehq/sluice/internal/confsplit"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/rwproto"
)

// The two remote-write messages, named as Prometheus' own remote_write
// config names them (protobuf_message).
const (
	MessageV1 = rwproto.MessageV1
	MessageV2 = rwproto.MessageV2
)

// How several endpoints share the series.
const (
	BalanceSeries    = "series"
	BalanceReplicate = "replicate"
)

// Config is the `remote_write` exporter's configuration.
type Config struct {
	// ClientConfig is the collector's HTTP client block: endpoint, headers,
	// tls, proxy_url, timeout, auth, ...
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`
	// Settings are the exporter's own keys.
	Settings `mapstructure:",squash"`
}

// Settings are the keys of the exporter beside the HTTP client's.
type Settings struct {
	// Endpoints, instead of endpoint, sends to several backends or
	// gateways, as Balance says; each has its own queues.
	Endpoints []string `mapstructure:"endpoints"`
	// Balance is BalanceSeries (each series to one endpoint, always the
	// same) or BalanceReplicate (everything to every endpoint).
	Balance string `mapstructure:"balance"`
	// ProtobufMessage is MessageV1 (default) or MessageV2.
	ProtobufMessage string `mapstructure:"protobuf_message"`
	// ExternalLabels are added to every series that does not have the label.
	ExternalLabels map[string]string `mapstructure:"external_labels"`
	// ResourceToTelemetryConversion turns every resource attribute of
	// OTLP-native data into a label (job and instance always are).
	ResourceToTelemetryConversion EnabledConfig `mapstructure:"resource_to_telemetry_conversion"`
	// TargetInfo sends one target_info series per resource with its
	// attributes as labels.
	TargetInfo EnabledConfig `mapstructure:"target_info"`
	// AddMetricSuffixes appends unit and _total suffixes to OTLP-native metric
	// names; Prometheus data keeps its names whatever this says.
	AddMetricSuffixes bool `mapstructure:"add_metric_suffixes"`
	// MaxSamplesPerSend caps the series entries of one request.
	MaxSamplesPerSend int `mapstructure:"max_samples_per_send"`
	// MaxSampleAge, when set, drops samples older than this instead of
	// retrying them forever.
	MaxSampleAge time.Duration `mapstructure:"max_sample_age"`
	// Shards is the number of parallel senders; a series always goes
	// through the same one.
	Shards int `mapstructure:"shards"`
	// RetryOnFailure is the backoff between attempts of a request that failed
	// with 5xx, 429 or a network error. Such requests are retried until they
	// succeed (or their samples pass max_sample_age).
	RetryOnFailure RetryConfig `mapstructure:"retry_on_failure"`
	// RetryOnAuthError keeps requests answered 401 or 403 (an expired or
	// revoked credential) in the queue and tries again every interval,
	// instead of dropping them: a token that expires at night must not
	// delete the hours of data queued until someone renews it.
	RetryOnAuthError AuthRetryConfig `mapstructure:"retry_on_auth_error"`
	// Queue is the disk queue every request passes through.
	Queue QueueConfig `mapstructure:"queue"`
	// Tenants passes each push's tenant (its client metadata) through to
	// the backend as request headers, with queues of its own per tenant.
	Tenants TenantsConfig `mapstructure:"tenants"`
}

// TenantsConfig is tenant pass-through for a gateway in front of a
// multi-tenant backend (Mimir, Cortex): see tenants.go.
type TenantsConfig struct {
	// MetadataKeys are client metadata keys (case-insensitive); data whose
	// metadata has any of them is queued apart per distinct combination of
	// their values and sent with each as a request header of the same name.
	// Empty: no tenants (everything in one queue, as before).
	MetadataKeys []string `mapstructure:"metadata_keys"`
	// MaxTenants bounds the tenants with queues of their own; data of a
	// further one is refused. 0: no limit.
	MaxTenants int `mapstructure:"max_tenants"`
}

// EnabledConfig is a block with one key, enabled.
type EnabledConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

// RetryConfig is the exponential backoff with full jitter between attempts.
type RetryConfig struct {
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	MaxInterval     time.Duration `mapstructure:"max_interval"`
	Multiplier      float64       `mapstructure:"multiplier"`
}

// AuthRetryConfig is what becomes of requests answered 401 or 403.
type AuthRetryConfig struct {
	// Enabled retries them; when false they are dropped and counted like
	// any other 4xx.
	Enabled bool `mapstructure:"enabled"`
	// Interval is the wait between attempts, for the whole endpoint.
	Interval time.Duration `mapstructure:"interval"`
}

// QueueConfig is the disk queue.
type QueueConfig struct {
	// Directory holds the queue; each exporter keeps its data in a
	// subdirectory named after its id.
	Directory string `mapstructure:"directory"`
	// MaxSize bounds the queue on disk, in bytes, over all shards.
	MaxSize int64 `mapstructure:"max_size"`
	// Sync is always, interval (default) or never.
	Sync string `mapstructure:"sync"`
	// SyncInterval is how often sync: interval fsyncs.
	SyncInterval time.Duration `mapstructure:"sync_interval"`
	// FullPolicy is drop_oldest (default) or block.
	FullPolicy string `mapstructure:"full_policy"`
}

// Defaults.
const (
	defaultShards            = 4
	defaultMaxSamplesPerSend = 2000
	defaultQueueDirectory    = "/var/lib/sluice/queue"
	defaultQueueMaxSize      = 1 << 30
	defaultTimeout           = 30 * time.Second
	defaultMaxTenants        = 100
)

func createDefaultConfig() *Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = defaultTimeout
	return &Config{ClientConfig: client, Settings: Settings{
		Balance:           BalanceSeries,
		ProtobufMessage:   MessageV1,
		MaxSamplesPerSend: defaultMaxSamplesPerSend,
		Shards:            defaultShards,
		RetryOnFailure: RetryConfig{
			InitialInterval: 100 * time.Millisecond,
			MaxInterval:     10 * time.Second,
			Multiplier:      2,
		},
		RetryOnAuthError: AuthRetryConfig{Enabled: true, Interval: time.Minute},
		Queue: QueueConfig{
			Directory:    defaultQueueDirectory,
			MaxSize:      defaultQueueMaxSize,
			Sync:         "interval",
			SyncInterval: time.Second,
			FullPolicy:   "drop_oldest",
		},
		Tenants: TenantsConfig{MaxTenants: defaultMaxTenants},
	}}
}

// Unmarshal reads the client block with its own unmarshaller and the rest
// strictly. Without it, the client block's Unmarshal (squashed into this
// config) makes the collector ignore unknown keys of the whole config, so
// a misspelt queue::directory would silently fall back to the default.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	client, own := confsplit.Split(conf, c.ClientConfig)
	if err := c.ClientConfig.Unmarshal(client); err != nil {
		return err
	}
	return own.Unmarshal(&c.Settings)
}

// reservedHeaders are set by the exporter on every request; the spec
// requires them, so the headers block may not replace them.
var reservedHeaders = []string{"Content-Encoding", "Content-Type", "User-Agent", "X-Prometheus-Remote-Write-Version"}

// Validate names the key at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	isURL := func(s string) bool {
		u, err := url.Parse(s)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
	}
	switch {
	case c.ClientConfig.Endpoint != "" && len(c.Endpoints) > 0:
		bad("endpoint and endpoints exclude each other: list every endpoint under endpoints")
	case c.ClientConfig.Endpoint == "" && len(c.Endpoints) == 0:
		bad("endpoint: required, e.g. http://prometheus:9090/api/v1/write (or endpoints: a list)")
	case c.ClientConfig.Endpoint != "" && !isURL(c.ClientConfig.Endpoint):
		bad("endpoint: %q is not an http or https URL", redact.URL(c.ClientConfig.Endpoint))
	}
	seen := map[string]bool{}
	for i, u := range c.Endpoints {
		if !isURL(u) {
			bad("endpoints[%d]: %q is not an http or https URL", i, redact.URL(u))
		} else if seen[u] {
			bad("endpoints[%d]: %q is listed twice", i, redact.URL(u))
		}
		seen[u] = true
	}
	if c.Balance != BalanceSeries && c.Balance != BalanceReplicate {
		bad("balance: %q is not %q or %q", c.Balance, BalanceSeries, BalanceReplicate)
	}
	for name := range c.ClientConfig.Headers.Iter {
		for _, r := range reservedHeaders {
			if http.CanonicalHeaderKey(name) == r {
				bad("headers: %s is set by the exporter as the remote-write specification requires and cannot be overridden", r)
			}
		}
	}
	if c.ClientConfig.Compression != "" && c.ClientConfig.Compression != "none" {
		bad("compression: remote write bodies are always snappy-compressed; remove compression (got %q)", c.ClientConfig.Compression)
	}
	switch c.ProtobufMessage {
	case MessageV1, MessageV2:
	default:
		bad("protobuf_message: %q is neither %s (remote write 1.0) nor %s (2.0)", c.ProtobufMessage, MessageV1, MessageV2)
	}
	names := make([]string, 0, len(c.ExternalLabels))
	for name := range c.ExternalLabels {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !model.LegacyValidation.IsValidLabelName(name) && !model.UTF8Validation.IsValidLabelName(name) {
			bad("external_labels: %q is not a valid label name", name)
		}
		if strings.HasPrefix(name, "__") {
			bad("external_labels: %q: names starting with __ are reserved", name)
		}
		if c.ExternalLabels[name] == "" {
			bad("external_labels: %q has an empty value (an empty label is no label)", name)
		}
	}
	if c.MaxSamplesPerSend < 1 {
		bad("max_samples_per_send: must be at least 1, got %d", c.MaxSamplesPerSend)
	}
	if c.MaxSampleAge < 0 {
		bad("max_sample_age: must not be negative, got %s", c.MaxSampleAge)
	}
	if c.Shards < 1 || c.Shards > 256 {
		bad("shards: must be between 1 and 256, got %d", c.Shards)
	}
	if c.RetryOnFailure.InitialInterval <= 0 {
		bad("retry_on_failure::initial_interval: must be positive, got %s", c.RetryOnFailure.InitialInterval)
	}
	if c.RetryOnFailure.MaxInterval < c.RetryOnFailure.InitialInterval {
		bad("retry_on_failure::max_interval: must be at least initial_interval (%s), got %s", c.RetryOnFailure.InitialInterval, c.RetryOnFailure.MaxInterval)
	}
	if c.RetryOnFailure.Multiplier < 1 {
		bad("retry_on_failure::multiplier: must be at least 1, got %g", c.RetryOnFailure.Multiplier)
	}
	if c.RetryOnAuthError.Enabled && c.RetryOnAuthError.Interval <= 0 {
		bad("retry_on_auth_error::interval: must be positive when retry_on_auth_error::enabled is true, got %s", c.RetryOnAuthError.Interval)
	}
	if c.Queue.Directory == "" {
		bad("queue::directory: required (where the disk queue lives)")
	}
	if min := int64(c.Shards) * minShardBytes; c.Queue.MaxSize < min {
		bad("queue::max_size: %d bytes is too small for %d shards; give at least %d (%d MiB per shard)", c.Queue.MaxSize, c.Shards, min, minShardBytes>>20)
	}
	switch c.Queue.Sync {
	case "always", "interval", "never":
	default:
		bad("queue::sync: %q is not one of always, interval, never", c.Queue.Sync)
	}
	if c.Queue.Sync == "interval" && c.Queue.SyncInterval <= 0 {
		bad("queue::sync_interval: must be positive with sync: interval, got %s", c.Queue.SyncInterval)
	}
	switch c.Queue.FullPolicy {
	case "drop_oldest", "block":
	default:
		bad("queue::full_policy: %q is not one of drop_oldest, block", c.Queue.FullPolicy)
	}
	errs = append(errs, c.validateTenants()...)
	if c.ClientConfig.Timeout <= 0 {
		bad("timeout: must be positive (a request without a deadline can stall its shard forever), got %s", c.ClientConfig.Timeout)
	}
	return errors.Join(errs...)
}

// minShardBytes is the smallest queue a shard gets: four 1 MiB segments.
const minShardBytes = 4 << 20

// urls are the endpoints to send to: endpoints, or the one endpoint.
func (c *Config) urls() []string {
	if len(c.Endpoints) > 0 {
		return c.Endpoints
	}
	return []string{c.ClientConfig.Endpoint}
}

// validateTenants checks tenants::: every key must be a header name the
// exporter may set on its own.
func (c *Config) validateTenants() []error {
	var errs []error
	t := c.Tenants
	seen := map[string]bool{}
	for i, k := range t.MetadataKeys {
		name := http.CanonicalHeaderKey(k)
		switch {
		case k == "":
			errs = append(errs, fmt.Errorf("tenants::metadata_keys[%d]: empty key", i))
			continue
		case !validHeaderName(k):
			errs = append(errs, fmt.Errorf("tenants::metadata_keys[%d]: %q is not a valid HTTP header name (each key is sent as a header of the same name)", i, k))
			continue
		case seen[name]:
			errs = append(errs, fmt.Errorf("tenants::metadata_keys[%d]: %q is listed twice (keys are case-insensitive)", i, k))
		}
		seen[name] = true
		for _, r := range reservedHeaders {
			if name == r {
				errs = append(errs, fmt.Errorf("tenants::metadata_keys[%d]: %s is set by the exporter as the remote-write specification requires and cannot come from client metadata", i, r))
			}
		}
		for h := range c.ClientConfig.Headers.Iter {
			if http.CanonicalHeaderKey(h) == name {
				errs = append(errs, fmt.Errorf("tenants::metadata_keys[%d]: %q is also set under headers, which would replace every tenant's value; remove one", i, k))
			}
		}
	}
	if t.MaxTenants < 0 {
		errs = append(errs, fmt.Errorf("tenants::max_tenants: must be 0 (no limit) or positive, got %d", t.MaxTenants))
	}
	return errs
}

// validHeaderName says whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
