package batchprocessor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"
)

// Config is the `batch` processor's configuration. The first five keys are
// those of the collector's own batch processor, with the same meaning and
// defaults, so its configs carry over unchanged.
type Config struct {
	// Timeout is how long after the previous send whatever has accumulated
	// is sent regardless of size. 0 sends as soon as the previous export is
	// done (everything that arrived meanwhile goes together).
	Timeout time.Duration `mapstructure:"timeout"`
	// SendBatchSize is the data point count that makes a batch go out at
	// once. 0 sends every request at once (split at SendBatchMaxSize).
	SendBatchSize uint32 `mapstructure:"send_batch_size"`
	// SendBatchMaxSize caps the data points of one batch; larger ones are
	// split. 0 means no limit.
	SendBatchMaxSize uint32 `mapstructure:"send_batch_max_size"`
	// MetadataKeys are client.Info metadata keys (case-insensitive): each
	// distinct combination of their values is batched and exported apart,
	// with just these keys in the exported context.
	MetadataKeys []string `mapstructure:"metadata_keys"`
	// MetadataCardinalityLimit caps the number of distinct combinations;
	// data of a further one is refused. 0 means no limit.
	MetadataCardinalityLimit uint32 `mapstructure:"metadata_cardinality_limit"`
	// WaitForResult makes ConsumeMetrics return only once all of the
	// caller's data points have been exported, with the export's error.
	WaitForResult bool `mapstructure:"wait_for_result"`
	// MaxPendingDataPoints bounds, per metadata combination, the data
	// points accepted and not yet exported; a caller that would pass it
	// waits. 0 means ten batches: 10 × the larger of send_batch_size and
	// send_batch_max_size (81920 with the defaults).
	MaxPendingDataPoints uint32 `mapstructure:"max_pending_data_points"`
}

var _ confmap.Validator = (*Config)(nil)

// Defaults, as the collector's batch processor has them.
const (
	defaultTimeout                  = 200 * time.Millisecond
	defaultSendBatchSize            = 8192
	defaultMetadataCardinalityLimit = 1000
	// pendingBatches is how many batches max_pending_data_points: 0 allows.
	pendingBatches = 10
)

func createDefaultConfig() *Config {
	return &Config{
		Timeout:                  defaultTimeout,
		SendBatchSize:            defaultSendBatchSize,
		MetadataCardinalityLimit: defaultMetadataCardinalityLimit,
	}
}

// Validate names the key at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must be >= 0, got %s", c.Timeout))
	}
	if c.SendBatchMaxSize > 0 && c.SendBatchMaxSize < c.SendBatchSize {
		errs = append(errs, fmt.Errorf("send_batch_max_size: must be 0 (no limit) or >= send_batch_size (%d), got %d", c.SendBatchSize, c.SendBatchMaxSize))
	}
	if c.MaxPendingDataPoints > 0 && c.MaxPendingDataPoints < c.SendBatchSize {
		errs = append(errs, fmt.Errorf("max_pending_data_points: must be 0 (10 batches) or >= send_batch_size (%d), got %d", c.SendBatchSize, c.MaxPendingDataPoints))
	}
	seen := map[string]bool{}
	for _, k := range c.MetadataKeys {
		l := strings.ToLower(k)
		switch {
		case l == "":
			errs = append(errs, errors.New("metadata_keys: empty key"))
		case seen[l]:
			errs = append(errs, fmt.Errorf("metadata_keys: %q is listed twice (keys are case-insensitive)", k))
		}
		seen[l] = true
	}
	return errors.Join(errs...)
}

// maxPending is max_pending_data_points with its default resolved.
func (c *Config) maxPending() int {
	if c.MaxPendingDataPoints > 0 {
		return int(c.MaxPendingDataPoints)
	}
	size := max(c.SendBatchSize, c.SendBatchMaxSize)
	if size == 0 {
		size = defaultSendBatchSize
	}
	return pendingBatches * int(size)
}
