package scrapeloop

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/scrape"
)

// Label names Prometheus reads per target to switch histogram handling.
const (
	scrapeNativeHistogramsLabel        = "__scrape_native_histograms__"
	alwaysScrapeClassicHistogramsLabel = "__always_scrape_classic_histograms__"
	convertClassicHistogramsToNHCB     = "__convert_classic_histograms_to_nhcb__"
)

// pool runs the loops of one scrape config (job).
type pool struct {
	m       *Manager
	cfg     *config.ScrapeConfig
	client  *http.Client
	accept  string
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	running sync.WaitGroup // loop goroutines, end-of-run staleness included

	mu      sync.Mutex
	loops   map[uint64]*loop
	active  map[uint64]*scrape.Target
	dropped []*scrape.Target
	// droppedCount counts every dropped target, dropped holding at most
	// keep_dropped_targets of them.
	droppedCount int
}

func newPool(m *Manager, cfg *config.ScrapeConfig) (*pool, error) {
	client, err := config_util.NewClientFromConfig(cfg.HTTPClientConfig, cfg.JobName, m.opts.HTTPClientOptions...)
	if err != nil {
		return nil, fmt.Errorf("error creating HTTP client: %w", err)
	}
	scheme, err := config.ToEscapingScheme(cfg.MetricNameEscapingScheme, cfg.MetricNameValidationScheme)
	if err != nil {
		return nil, fmt.Errorf("invalid metric name escaping scheme, %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{
		m: m, cfg: cfg, client: client, accept: acceptHeader(cfg.ScrapeProtocols, scheme),
		log: m.log.With("scrape_pool", cfg.JobName), ctx: ctx, cancel: cancel,
		loops: map[uint64]*loop{}, active: map[uint64]*scrape.Target{},
	}, nil
}

// sync makes the running loops those of the groups' targets: new ones
// start, gone ones stop (and write their stale markers later).
func (p *pool) sync(groups []*targetgroup.Group) {
	p.mu.Lock()
	defer p.mu.Unlock()
	type found struct {
		t       *scrape.Target
		hash    uint64
		tl, tgl model.LabelSet
	}
	var all []found
	var dropped []*scrape.Target
	droppedCount := 0
	lb := labels.NewBuilder(labels.EmptyLabels())
	for _, tg := range groups {
		for i, tl := range tg.Targets {
			ls, err := scrape.PopulateLabels(lb, p.cfg, tl, tg.Labels)
			if err != nil {
				p.log.Error("Creating target failed", "err", fmt.Errorf("instance %d in group %s: %w", i, tg, err))
				continue
			}
			t := scrape.NewTarget(ls, p.cfg, tl, tg.Labels)
			public := false
			t.LabelsRange(func(labels.Label) { public = true })
			if !public {
				droppedCount++
				if p.cfg.KeepDroppedTargets == 0 || uint(len(dropped)) < p.cfg.KeepDroppedTargets {
					dropped = append(dropped, t)
				}
				continue
			}
			all = append(all, found{t, targetHash(ls, t.URL().String()), tl, tg.Labels})
		}
	}
	p.dropped, p.droppedCount = dropped, droppedCount
	seen := map[uint64]bool{}
	var started []*loop
	for _, f := range all {
		if seen[f.hash] {
			continue
		}
		seen[f.hash] = true
		if t, ok := p.active[f.hash]; ok {
			// Kept up to date for whoever shows discovered labels.
			t.SetScrapeConfig(p.cfg, f.tl, f.tgl)
			continue
		}
		l, err := p.newLoop(f.t, f.hash)
		if err != nil {
			p.log.Error("Creating target failed", "target", f.t.URL().Redacted(), "err", err)
			continue
		}
		p.active[f.hash], p.loops[f.hash] = f.t, l
		started = append(started, l)
	}
	var wg sync.WaitGroup
	for h, l := range p.loops {
		if !seen[h] {
			wg.Add(1)
			go func() { defer wg.Done(); l.stop() }()
			delete(p.loops, h)
			delete(p.active, h)
		}
	}
	var forced error
	if lim := p.cfg.TargetLimit; lim > 0 && len(p.active) > int(lim) {
		forced = fmt.Errorf("target_limit exceeded (number of targets: %d, limit: %d)", len(p.active), lim)
	}
	for _, l := range p.loops {
		l.setForcedError(forced)
	}
	for _, l := range started {
		p.running.Add(1)
		go func() { defer p.running.Done(); l.run() }()
	}
	wg.Wait()
}

func boolLabel(t *scrape.Target, name string, def bool) bool {
	if b, err := strconv.ParseBool(t.GetValue(name)); err == nil {
		return b
	}
	return def
}

// minBucketSchema is the highest schema whose buckets grow by at least
// factor (native_histogram_min_bucket_factor; schema s grows by 2^(2^-s)).
func minBucketSchema(factor float64) int32 {
	if factor <= 1 {
		factor = 1.00271 // Prometheus' default: at most schema 8
	}
	s := math.Floor(-math.Log2(math.Log2(factor)))
	return int32(max(min(s, float64(histogram.ExponentialSchemaMax)), float64(histogram.ExponentialSchemaMin)))
}

func (p *pool) newLoop(t *scrape.Target, hash uint64) (*loop, error) {
	cfg := p.cfg
	interval, timeout := time.Duration(cfg.ScrapeInterval), time.Duration(cfg.ScrapeTimeout)
	var forced error
	if iv, err := model.ParseDuration(t.GetValue(model.ScrapeIntervalLabel)); err == nil {
		interval = time.Duration(iv)
	} else {
		forced = fmt.Errorf("error parsing interval label %q: %w", t.GetValue(model.ScrapeIntervalLabel), err)
	}
	if to, err := model.ParseDuration(t.GetValue(model.ScrapeTimeoutLabel)); err == nil && forced == nil {
		timeout = time.Duration(to)
	} else if forced == nil {
		forced = fmt.Errorf("error parsing timeout label %q: %w", t.GetValue(model.ScrapeTimeoutLabel), err)
	}
	f, err := newFetcher(p.client, t.URL().String(), p.accept, cfg.EnableCompression, timeout, int64(cfg.BodySizeLimit))
	if err != nil {
		return nil, err
	}
	var public []labels.Label
	t.LabelsRange(func(l labels.Label) { public = append(public, l) })
	ctx, cancel := context.WithCancel(p.ctx)
	l := &loop{
		target: t, appendable: p.m.appendable, log: p.log.With("target", t.URL().Redacted()),
		fetch: f, buffers: &p.m.buffers,
		interval: interval, timeout: timeout, offsetSeed: p.m.offsetSeed, targetHash: hash,
		honorTimestamps:          cfg.HonorTimestamps,
		trackTimestampsStaleness: cfg.TrackTimestampsStaleness,
		sampleLimit:              int(cfg.SampleLimit),
		bucketLimit:              int(cfg.NativeHistogramBucketLimit),
		maxSchema:                minBucketSchema(cfg.NativeHistogramMinBucketFactor),
		parseST:                  p.m.opts.ParseST,
		extraMetrics:             cfg.ExtraScrapeMetricsEnabled(),
		parserOpts: textparse.ParserOptions{
			IgnoreNativeHistograms:                  !boolLabel(t, scrapeNativeHistogramsLabel, cfg.ScrapeNativeHistogramsEnabled()),
			ConvertClassicHistogramsToNHCB:          boolLabel(t, convertClassicHistogramsToNHCB, cfg.ConvertClassicHistogramsToNHCBEnabled()),
			KeepClassicOnClassicAndNativeHistograms: boolLabel(t, alwaysScrapeClassicHistogramsLabel, cfg.AlwaysScrapeClassicHistogramsEnabled()),
			OpenMetricsSkipSTSeries:                 p.m.opts.ParseST,
			FallbackContentType:                     cfg.ScrapeFallbackProtocol.HeaderMediaType(),
		},
		labels: labeler{
			target: public, honor: cfg.HonorLabels, rules: cfg.MetricRelabelConfigs,
			validation: cfg.MetricNameValidationScheme,
			labelLimit: int(cfg.LabelLimit), nameLimit: int(cfg.LabelNameLengthLimit), valueLimit: int(cfg.LabelValueLengthLimit),
			lb: labels.NewBuilder(labels.EmptyLabels()),
		},
		meta:      newMetaStore(),
		ctx:       ctx,
		cancel:    cancel,
		parentCtx: p.ctx,
		appCtx:    scrape.ContextWithTarget(p.ctx, t),
		stopped:   make(chan struct{}),
		gate:      p.m.opts.Gate,
	}
	l.report = newReportSeries(&l.labels)
	l.forcedErr = forced
	t.SetMetadataStore(l.meta)
	return l, nil
}

// stop ends every loop, then the pool's context: the loops' end-of-run
// stale markers are not written (Prometheus presumes a restart that picks
// up where it stopped).
func (p *pool) stop() {
	p.mu.Lock()
	var wg sync.WaitGroup
	for h, l := range p.loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.stop() }()
		delete(p.loops, h)
		delete(p.active, h)
	}
	p.mu.Unlock()
	wg.Wait()
	p.cancel()
	p.running.Wait()
	p.client.CloseIdleConnections()
}
