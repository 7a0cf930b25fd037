// Package scrapeloop is Sluice's own scrape loop, built on Prometheus'
// parts: targets come from Prometheus' discovery manager and are labelled by
// Prometheus' target relabelling (scrape.PopulateLabels); the HTTP client is
// Prometheus' (TLS, auth, proxy, oauth2 from the scrape config); bodies are
// parsed by Prometheus' exposition parsers (text, OpenMetrics, protobuf).
// What is ours is the per-target loop and what it remembers between scrapes:
// instead of Prometheus' scrape cache (a label copy and map entries per
// series), a table of series hashes and flags, and the last scrape's body,
// parsed again only when stale markers are due.
//
// It writes to a storage.AppendableV2, the same interface scrape.Manager
// writes to, so both loops feed the same appender and can be compared
// sample by sample.
package scrapeloop

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/osutil"
)

// Options are the manager's settings beyond the scrape configs.
type Options struct {
	// ParseST reads created timestamps into start times (and skips
	// OpenMetrics _created series), as scrape.Options.ParseST.
	ParseST bool
	// DiscoveryReloadInterval: target updates are applied at most this
	// often (the first one at once). Default 5 s, as Prometheus'.
	DiscoveryReloadInterval time.Duration
	// HTTPClientOptions are passed to every job's HTTP client.
	HTTPClientOptions []config_util.HTTPClientOption
	// Gate, when set, decides at each scheduled scrape whether this
	// process scrapes the target (gate.go); the offset seed is then the
	// same in every process, so all share each target's schedule.
	Gate Gate
	// OnReload, when set, is called after each reload of the targets
	// (TargetKeys then lists the new set).
	OnReload func()
}

// Manager runs a pool of loops per scrape config, fed by discovery.
type Manager struct {
	opts       Options
	log        *slog.Logger
	appendable storage.AppendableV2
	offsetSeed uint64
	// buffers holds read buffers between scrapes of different targets:
	// each loop keeps only its last body.
	buffers bodyBuffers

	mu      sync.Mutex
	pools   map[string]*pool
	pending map[string][]*targetgroup.Group
	trigger chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	stopped bool
}

// NewManager makes a manager for the scrape configs (as loaded by
// Prometheus' config package); nothing runs before Run.
func NewManager(opts Options, logger *slog.Logger, app storage.AppendableV2, scfgs []*config.ScrapeConfig) (*Manager, error) {
	if opts.DiscoveryReloadInterval <= 0 {
		opts.DiscoveryReloadInterval = 5 * time.Second
	}
	m := &Manager{
		opts: opts, log: logger, appendable: app,
		pools: map[string]*pool{}, trigger: make(chan struct{}, 1), done: make(chan struct{}),
	}
	// The seed spreads the targets of several scrapers over the interval
	// differently, as Prometheus' does (host name and external labels,
	// of which the receiver has none).
	host, err := osutil.GetFQDN()
	if err != nil {
		return nil, fmt.Errorf("host name for the scrape offset seed: %w", err)
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s%s", host, "{}")
	m.offsetSeed = h.Sum64()
	if opts.Gate != nil {
		m.offsetSeed = 0
	}
	for _, sc := range scfgs {
		p, err := newPool(m, sc)
		if err != nil {
			for _, p := range m.pools {
				p.cancel()
			}
			return nil, fmt.Errorf("scrape config %q: %w", sc.JobName, err)
		}
		m.pools[sc.JobName] = p
	}
	return m, nil
}

// Run applies target updates from tsets (discovery.Manager.SyncCh()) until
// Stop; updates are gathered and applied every DiscoveryReloadInterval.
func (m *Manager) Run(tsets <-chan map[string][]*targetgroup.Group) error {
	// Add under mu, ordered before Stop's Wait: a Stop racing a Run that
	// has just begun (Shutdown right after Start) finds either no reloader
	// or one it waits for.
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() { defer m.wg.Done(); m.reloader() }()
	for {
		select {
		case ts, ok := <-tsets:
			if !ok {
				return nil
			}
			m.mu.Lock()
			m.pending = ts
			m.mu.Unlock()
			select {
			case m.trigger <- struct{}{}:
			default:
			}
		case <-m.done:
			return nil
		}
	}
}

func (m *Manager) reloader() {
	select {
	case <-m.done:
		return
	case <-m.trigger:
		m.reload()
	}
	tick := time.NewTicker(m.opts.DiscoveryReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-tick.C:
			select {
			case <-m.trigger:
				m.reload()
			case <-m.done:
				return
			}
		}
	}
}

func (m *Manager) reload() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	var wg sync.WaitGroup
	for job, groups := range m.pending {
		p, ok := m.pools[job]
		if !ok {
			m.log.Error("error reloading target set", "err", "invalid config id:"+job)
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.sync(groups) }()
	}
	wg.Wait()
	if m.opts.OnReload != nil {
		m.opts.OnReload()
	}
}

// Stop ends every loop and waits for them. No stale markers are written for
// the targets (as Prometheus on shutdown).
func (m *Manager) Stop() {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	close(m.done)
	pools := m.pools
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
	m.wg.Wait()
}
