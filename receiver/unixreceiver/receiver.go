package unixreceiver

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/promseries"
	"github.com/sluicehq/sluice/internal/zapslog"
	"github.com/sluicehq/sluice/receiver/unixreceiver/internal/metadata"
)

type unixReceiver struct {
	cfg      *Config
	set      receiver.Settings
	next     consumer.Metrics
	instance string
	g        *sharedGatherer
	b        *promseries.Builder
	cancel   context.CancelFunc
	done     sync.WaitGroup
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Metrics) *unixReceiver {
	return &unixReceiver{cfg: cfg, set: set, next: next, b: promseries.NewBuilder(metadata.ScopeName)}
}

func (r *unixReceiver) Start(_ context.Context, _ component.Host) error {
	r.instance = r.cfg.Instance
	if r.instance == "" {
		h, err := os.Hostname()
		if err != nil {
			return errors.New("instance is not set and the host name is unknown: " + err.Error())
		}
		r.instance = h
	}
	g, err := gatherer(r.cfg.flags(), len(r.cfg.SetCollectors) > 0, zapslog.New(r.set.Logger))
	if err != nil {
		return err
	}
	r.g = g
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done.Add(1)
	go r.run(ctx)
	return nil
}

func (r *unixReceiver) Shutdown(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		r.done.Wait()
	}
	return nil
}

// run collects at once, then every collection_interval.
func (r *unixReceiver) run(ctx context.Context) {
	defer r.done.Done()
	t := time.NewTicker(r.cfg.CollectionInterval)
	defer t.Stop()
	for {
		if err := r.collect(ctx); err != nil && ctx.Err() == nil {
			r.set.Logger.Warn("Host metrics not delivered", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collect reads the host once and passes the result on.
func (r *unixReceiver) collect(ctx context.Context) error {
	md, err := r.collectMetrics()
	if md.DataPointCount() == 0 {
		return err
	}
	if cerr := r.next.ConsumeMetrics(ctx, md); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// collectMetrics gathers node_exporter's metric families and builds them
// as one scrape of job/instance at the time of collection.
func (r *unixReceiver) collectMetrics() (pmetric.Metrics, error) {
	now := time.Now().UnixMilli()
	families, err := r.g.Gather()
	var lb labels.ScratchBuilder
	for _, mf := range families {
		addFamily(r.b, &lb, mf, r.cfg.Job, r.instance, now)
	}
	return r.b.Metrics(), err
}
