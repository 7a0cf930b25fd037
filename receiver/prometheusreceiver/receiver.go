package prometheusreceiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"k8s.io/klog/v2"

	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/statusapi"
	"github.com/sluicehq/sluice/internal/zapslog"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/scrapeloop"

	// Every service discovery mechanism Prometheus ships registers itself.
	_ "github.com/prometheus/prometheus/discovery/install"
)

// scrapeManager is what the receiver needs of a scrape loop; Prometheus'
// scrape.Manager and Sluice's scrapeloop.Manager both are one (scrape_loop
// picks). TargetsActive and TargetsDropped give the same *scrape.Target
// values either way, for the health log, telemetry and status page.
type scrapeManager interface {
	Run(tsets <-chan map[string][]*targetgroup.Group) error
	Stop()
	TargetsActive() map[string][]*scrape.Target
	TargetsDropped() map[string][]*scrape.Target
	TargetsDroppedCounts() map[string]int
	ScrapePoolConfig(job string) (*promconfig.ScrapeConfig, error)
}

// scrapeReceiver runs Prometheus' own discovery manager and a scrape loop
// (Prometheus' or ours), with an appender that hands each scrape to the
// pipeline.
type scrapeReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   consumer.Metrics
	logger *slog.Logger

	tel      *telemetry
	jobs     *targetJobs
	jobNames []string // of the scrape configs, for the telemetry

	cancel    context.CancelFunc
	discovery *discovery.Manager
	scrape    scrapeManager
	// loop is the scrape manager when scrape_loop is sluice (nil otherwise):
	// its Status gives the status page per-target series counts.
	loop *scrapeloop.Manager
	// cluster is the membership when cluster::enabled (nil otherwise).
	cluster *clusterMember
	wg      sync.WaitGroup

	unregister func() // removes the status page's target source
}

func newScrapeReceiver(set receiver.Settings, cfg *Config, next consumer.Metrics) (*scrapeReceiver, error) {
	tel, err := newTelemetry(set)
	if err != nil {
		return nil, err
	}
	jobs := &targetJobs{}
	jobs.update(nil)
	return &scrapeReceiver{
		cfg: cfg, set: set, next: next, logger: slog.New(redact.Handler(zapslog.New(set.Logger).Handler())),
		tel: tel, jobs: jobs,
	}, nil
}

var klogOnce sync.Once

func (r *scrapeReceiver) Start(_ context.Context, host component.Host) error {
	pc := r.cfg.PrometheusConfig.Prometheus()
	scfgs, err := pc.GetScrapeConfigs()
	if err != nil {
		return fmt.Errorf("loading scrape configs: %w", err)
	}
	status := &targetStatus{shard: r.cfg.Shard, userRules: make(map[string]int, len(scfgs))}
	for _, sc := range scfgs {
		status.userRules[sc.JobName] = len(sc.RelabelConfigs)
	}
	applyShard(scfgs, r.cfg.Shard)
	// kubernetes_sd_configs' client-go logs through klog, which would write
	// its own format to stderr: into the collector's log instead, as
	// Prometheus does. klog is process-wide and its setter is not safe for
	// concurrent use: the first receiver to start sets it, once.
	klogOnce.Do(func() { klog.SetSlogLogger(r.logger.With("component", "k8s_client_runtime")) })

	// Prometheus' libraries register their own metrics; a private registry
	// per receiver keeps two receivers from colliding.
	reg := prometheus.NewRegistry()
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		return fmt.Errorf("service discovery metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.discovery = discovery.NewManager(ctx, r.logger, reg, sdMetrics)
	if r.discovery == nil {
		cancel()
		return errors.New("creating the discovery manager failed")
	}
	sdConfigs := make(map[string]discovery.Configs, len(scfgs))
	for _, sc := range scfgs {
		sdConfigs[sc.JobName] = sc.ServiceDiscoveryConfigs
		r.jobNames = append(r.jobNames, sc.JobName)
	}
	r.tel.observeTargets(r.jobNames, nil, nil)
	if err := r.discovery.ApplyConfig(sdConfigs); err != nil {
		cancel()
		return fmt.Errorf("applying service discovery configs: %w", err)
	}

	var app storage.AppendableV2 = &appendable{next: r.next, scope: metadata.ScopeName, tel: r.tel, jobs: r.jobs}
	if statusapi.Present(host) && r.cfg.ScrapeLoop != LoopSluice {
		// Series counts are kept only for a status page to show; Sluice's
		// loop keeps them itself (targetStatus.loop).
		status.series = newSeriesCounts()
		app = countingAppendable{inner: app, counts: status.series}
	}
	if r.cfg.ScrapeLoop == LoopSluice {
		opts := scrapeloop.Options{
			ParseST:                 r.cfg.StartTimestamps,
			DiscoveryReloadInterval: time.Second,
		}
		if r.cfg.Cluster.Enabled {
			// Joined (or join_timeout passed) before Start returns: the
			// health check is not ready before.
			r.cluster, err = startCluster(r.cfg.Cluster, r.set.Logger, r.tel, shortestInterval(scfgs))
			if err != nil {
				cancel()
				return err
			}
			opts.Gate = r.cluster
			opts.OnReload = func() { r.cluster.setKeys(r.loop.TargetKeys()) }
		}
		r.loop, err = scrapeloop.NewManager(opts, r.logger, app, scfgs)
		if err != nil {
			if r.cluster != nil {
				_ = r.cluster.node.Shutdown()
			}
			cancel()
			return fmt.Errorf("creating the scrape loops: %w", err)
		}
		r.scrape = r.loop
	} else {
		opts := &scrape.Options{
			// Targets are picked up at once rather than after the default 5 s.
			DiscoveryReloadInterval:  model.Duration(time.Second),
			DiscoveryReloadOnStartup: true,
			// Created timestamps become start times when asked (see Config).
			ParseST: r.cfg.StartTimestamps,
			// The family, type, help and unit of every sample reach the
			// appender (without it, every series is of unknown type).
			AppendMetadata: true,
			// The appender's context then names the target it scrapes, which
			// the telemetry reads.
			PassMetadataInContext: true,
		}
		m, err := scrape.NewManager(opts, r.logger, nil, nil, app, reg)
		if err != nil {
			cancel()
			return fmt.Errorf("creating the scrape manager: %w", err)
		}
		// ApplyConfig takes the whole config; hand it the scrape configs with
		// our shard rules appended.
		applied := *pc
		applied.ScrapeConfigs, applied.ScrapeConfigFiles = scfgs, nil
		if err := m.ApplyConfig(&applied); err != nil {
			cancel()
			return fmt.Errorf("applying scrape configs: %w", err)
		}
		r.scrape = m
	}
	status.scrape, status.loop, status.cluster = r.scrape, r.loop, r.cluster
	r.unregister = statusapi.RegisterTargets(host, r.set.ID, status)
	r.wg.Add(3)
	go func() {
		defer r.wg.Done()
		r.watchTargets(ctx, time.Second)
	}()
	go func() {
		defer r.wg.Done()
		if err := r.discovery.Run(); err != nil && !errors.Is(err, context.Canceled) {
			r.set.Logger.Error("service discovery stopped")
		}
	}()
	go func() {
		defer r.wg.Done()
		if err := r.scrape.Run(r.discovery.SyncCh()); err != nil {
			r.set.Logger.Error("scrape manager stopped")
		}
	}()
	return nil
}

// Shutdown stops scraping. Neither loop writes stale markers for its
// targets on the way out: Prometheus presumes a restart that goes on where
// it stopped (see TestShutdownWritesNoStaleMarkers). A cluster member first
// hands its targets over, scraping them until the others take over.
func (r *scrapeReceiver) Shutdown(ctx context.Context) error {
	defer r.tel.shutdown()
	if r.cancel == nil {
		return nil
	}
	if r.cluster != nil {
		r.cluster.leave(ctx)
	}
	if r.unregister != nil {
		r.unregister()
	}
	r.scrape.Stop()
	if r.cluster != nil {
		r.cluster.drain(ctx)
	}
	r.cancel()
	r.wg.Wait()
	r.cancel = nil // a second Shutdown has nothing to stop
	return nil
}
