package unixreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/sluicehq/sluice/receiver/unixreceiver/internal/metadata"
)

// NewFactory returns the factory of the `unix` receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, func() component.Config { return createDefaultConfig() },
		receiver.WithMetrics(createMetrics, metadata.MetricsStability))
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := newReceiver(cfg.(*Config), set, next)
	if err != nil {
		return nil, err
	}
	return r, nil
}
