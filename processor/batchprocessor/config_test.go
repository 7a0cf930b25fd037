package batchprocessor

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/processor/batchprocessor/internal/metadata"
)

// loadConfig reads one processor entry of testdata/config.yaml the way the
// collector does: unmarshal over the defaults, then validate.
func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig()
	return cfg, comptest.LoadConfig(t, component.NewIDWithName(metadata.Type, name).String(), cfg)
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "defaults")
	require.NoError(t, err)
	require.Equal(t, &Config{
		Timeout:                  200 * time.Millisecond,
		SendBatchSize:            8192,
		MetadataCardinalityLimit: 1000,
	}, cfg)
	require.Equal(t, 81920, cfg.maxPending())
}

func TestConfigCustom(t *testing.T) {
	cfg, err := loadConfig(t, "custom")
	require.NoError(t, err)
	require.Equal(t, &Config{
		Timeout:                  time.Second,
		SendBatchSize:            1000,
		SendBatchMaxSize:         2000,
		MetadataKeys:             []string{"X-Scope-OrgID"},
		MetadataCardinalityLimit: 50,
		WaitForResult:            true,
		MaxPendingDataPoints:     5000,
	}, cfg)
	require.Equal(t, 5000, cfg.maxPending())
}

// Every config a user can get wrong fails with a message naming the key.
func TestConfigErrors(t *testing.T) {
	for name, want := range map[string]string{
		"max_below_size":     "send_batch_max_size: must be 0 (no limit) or >= send_batch_size (1000), got 500",
		"negative_timeout":   "timeout: must be >= 0, got -1s",
		"duplicate_key":      `metadata_keys: "Tenant" is listed twice (keys are case-insensitive)`,
		"empty_key":          "metadata_keys: empty key",
		"pending_below_size": "max_pending_data_points: must be 0 (10 batches) or >= send_batch_size (1000), got 999",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.EqualError(t, err, want)
		})
	}
	// Errors of the unmarshaller name the key too.
	for name, want := range map[string]string{
		"negative_size": "send_batch_size",
		"misspelt":      "send_batch_sise",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.Error(t, err)
			require.True(t, strings.Contains(err.Error(), want), "error %q lacks %q", err, want)
		})
	}
}

// max_pending_data_points: 0 is ten of the largest batch.
func TestConfigMaxPendingDerived(t *testing.T) {
	for _, tc := range []struct {
		size, max, pending uint32
		want               int
	}{
		{size: 8192, want: 81920},
		{size: 100, max: 1000, want: 10000},
		{size: 0, max: 0, want: 81920},
		{size: 0, max: 500, want: 5000},
		{size: 100, pending: 150, want: 150},
	} {
		cfg := &Config{SendBatchSize: tc.size, SendBatchMaxSize: tc.max, MaxPendingDataPoints: tc.pending}
		require.Equal(t, tc.want, cfg.maxPending(), "%+v", tc)
	}
}

// The README's example configures valid processors.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "## Example")
	require.True(t, ok)
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	require.True(t, ok)
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(block), &doc))
	procs, err := confmap.NewFromStringMap(doc).Sub("processors")
	require.NoError(t, err)
	for _, id := range []string{"batch", "batch/tenants"} {
		sub, err := procs.Sub(id)
		require.NoError(t, err)
		cfg := createDefaultConfig()
		require.NoError(t, sub.Unmarshal(cfg), id)
		require.NoError(t, confmap.Validate(cfg), id)
	}
}
