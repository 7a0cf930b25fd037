package scrapeloop

import (
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
)

// TargetsActive returns the targets being scraped, by job, as
// scrape.Manager.TargetsActive does: the same *scrape.Target values, with
// health, last scrape, duration, last error and metadata kept up to date.
func (m *Manager) TargetsActive() map[string][]*scrape.Target {
	out := map[string][]*scrape.Target{}
	for job, p := range m.poolsNow() {
		p.mu.Lock()
		ts := make([]*scrape.Target, 0, len(p.active))
		for h, t := range p.active {
			if l := p.loops[h]; l == nil || l.owning() {
				ts = append(ts, t)
			}
		}
		p.mu.Unlock()
		sort.Sort(scrape.Targets(ts))
		out[job] = ts
	}
	return out
}

// TargetsDropped returns the targets target relabelling dropped, by job (at
// most keep_dropped_targets of them when set), as scrape.Manager does.
func (m *Manager) TargetsDropped() map[string][]*scrape.Target {
	out := map[string][]*scrape.Target{}
	for job, p := range m.poolsNow() {
		p.mu.Lock()
		out[job] = append([]*scrape.Target(nil), p.dropped...)
		p.mu.Unlock()
	}
	return out
}

// TargetsDroppedCounts returns how many targets target relabelling dropped,
// by job (all of them, whatever keep_dropped_targets keeps).
func (m *Manager) TargetsDroppedCounts() map[string]int {
	out := map[string]int{}
	for job, p := range m.poolsNow() {
		p.mu.Lock()
		out[job] = p.droppedCount
		p.mu.Unlock()
	}
	return out
}

// ScrapePoolConfig returns the scrape config of job, as scrape.Manager does.
func (m *Manager) ScrapePoolConfig(job string) (*config.ScrapeConfig, error) {
	p, ok := m.poolsNow()[job]
	if !ok {
		return nil, fmt.Errorf("scrape pool %q not found", job)
	}
	return p.cfg, nil
}

// Status is what the loop knows of one target, for telemetry and status
// pages.
type Status struct {
	Job                string
	URL                string // not redacted: the caller redacts what it shows
	Health             scrape.TargetHealth
	LastScrape         time.Time
	LastScrapeDuration time.Duration
	LastError          error
	Discovered         labels.Labels // before target relabelling
	Labels             labels.Labels // after: the labels added to every series
	Series             int           // series the last scrape delivered (and tracks for staleness)
}

// Status returns every active target's status, by job then URL.
func (m *Manager) Status() []Status {
	var out []Status
	lb := labels.NewBuilder(labels.EmptyLabels())
	for job, p := range m.poolsNow() {
		p.mu.Lock()
		for _, l := range p.loops {
			if !l.owning() {
				continue // another cluster member scrapes it
			}
			t := l.target
			out = append(out, Status{
				Job: job, URL: t.URL().String(), Health: t.Health(),
				LastScrape: t.LastScrape(), LastScrapeDuration: t.LastScrapeDuration(), LastError: t.LastError(),
				Discovered: t.DiscoveredLabels(lb), Labels: t.Labels(lb),
				Series: int(l.series.Load()),
			})
		}
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Job != out[j].Job {
			return out[i].Job < out[j].Job
		}
		return out[i].URL < out[j].URL
	})
	return out
}

// poolsNow returns the pools: one per scrape config, fixed at NewManager.
func (m *Manager) poolsNow() map[string]*pool { return m.pools }
