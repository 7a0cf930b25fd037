package prometheusexporter

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/promseries"
)

// promExporter is the exporter: a store the pipeline fills and an HTTP
// server that renders it when scraped.
type promExporter struct {
	cfg      *Config
	set      exporter.Settings
	walkOpts promseries.Options
	store    *store
	now      func() time.Time

	mu        sync.Mutex
	lastSweep time.Time
	lastWarn  time.Time

	server *http.Server
	addr   net.Addr // where it listens, once started
	done   chan struct{}
}

var _ exporter.Metrics = (*promExporter)(nil)

func newExporter(cfg *Config, set exporter.Settings) *promExporter {
	return &promExporter{
		cfg: cfg,
		set: set,
		walkOpts: promseries.Options{
			AddMetricSuffixes: cfg.AddMetricSuffixes,
			ResourceToLabels:  cfg.ResourceToTelemetryConversion.Enabled,
		},
		store: newStore(cfg.MetricExpiration),
		now:   time.Now,
	}
}

func (e *promExporter) Start(ctx context.Context, host component.Host) error {
	// Listen now, so that a port in use fails the start with its reason.
	ln, err := e.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", e)
	e.server, err = e.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, mux)
	if err != nil {
		ln.Close()
		return err
	}
	e.addr = ln.Addr()
	e.set.Logger.Info("Serving metrics for Prometheus to scrape", zap.String("url", "http://"+ln.Addr().String()+"/metrics"))
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		if err := e.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (e *promExporter) Shutdown(ctx context.Context) error {
	if e.server == nil {
		return nil
	}
	// A scrape being answered finishes unless the context ends first.
	err := e.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = e.server.Close()
	}
	<-e.done
	return err
}

func (e *promExporter) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeMetrics stores the newest sample of every series of md.
func (e *promExporter) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	now := e.now()
	var delta int
	add := func(s *promseries.Sample) error {
		if s.Delta {
			// A delta is the change since the last point, not a value a
			// scraper can read on its own: like remote_write, refuse it
			// (the deltatocumulative processor makes it cumulative).
			delta++
			return nil
		}
		e.store.add(s, now)
		return nil
	}
	dropped, err := promseries.Walk(md, e.walkOpts, add)
	if err == nil && e.cfg.TargetInfo.Enabled {
		err = promseries.TargetInfo(md, add)
	}
	e.afterConsume(now, delta, dropped)
	return err
}

// afterConsume expires old series now and then, so memory stays bounded
// when nobody scrapes, and warns (once a minute) about what was refused.
func (e *promExporter) afterConsume(now time.Time, delta int, dropped promseries.Dropped) {
	e.mu.Lock()
	sweep := now.Sub(e.lastSweep) >= min(e.cfg.MetricExpiration/4, 30*time.Second)
	if sweep {
		e.lastSweep = now
	}
	warn := (delta > 0 || len(dropped) > 0) && now.Sub(e.lastWarn) >= time.Minute
	if warn {
		e.lastWarn = now
	}
	e.mu.Unlock()
	if sweep {
		e.store.expireOld(now)
	}
	if warn {
		fields := []zap.Field{zap.Int("delta_points", delta)}
		for reason, n := range dropped {
			fields = append(fields, zap.Int(reason, n))
		}
		e.set.Logger.Warn("Points not exposed: delta temporality (put the deltatocumulative processor before this exporter) or not translatable", fields...)
	}
}
