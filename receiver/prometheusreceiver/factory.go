package prometheusreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
)

// NewFactory returns the factory of the `prometheus` receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithMetrics(createMetrics, metadata.MetricsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		ScrapeLoop: LoopSluice,
		Cluster: ClusterConfig{
			ListenAddress: "0.0.0.0:7946",
			JoinTimeout:   10 * time.Second,
			// Lost targets resume within about probe_interval +
			// failure_timeout + one scrape interval of a member's death.
			ProbeInterval:  time.Second,
			FailureTimeout: 3 * time.Second,
			HandoverDelay:  2 * time.Second,
		},
	}
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return newScrapeReceiver(set, cfg.(*Config), next)
}
