package prometheusreceiver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"go.yaml.in/yaml/v2"

	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/statusapi"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/scrapeloop"
)

// targetStatus is the receiver's statusapi.TargetSource: an adapter over
// the scrape manager's own view of its targets, read when the status page
// asks, plus the series count of each target's last scrape.
type targetStatus struct {
	scrape scrapeManager
	// Series counts come from Sluice's loop, which keeps them anyway (loop),
	// or, with Prometheus' loop, from its report samples (series).
	loop   *scrapeloop.Manager
	series *seriesCounts
	// userRules is, per job, how many of its relabel_configs are the
	// user's; applyShard appends its own after them.
	userRules map[string]int
	shard     ShardConfig
	cluster   *clusterMember // nil unless cluster::enabled
}

var (
	_ statusapi.TargetSource  = (*targetStatus)(nil)
	_ statusapi.ClusterSource = (*targetStatus)(nil)
)

// Cluster is the membership as this member sees it, with the targets each
// member owns now; nil when the receiver is not clustered.
func (s *targetStatus) Cluster() *statusapi.Cluster {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.status()
}

func (s *targetStatus) ActiveTargets() []statusapi.Target {
	lb := labels.NewBuilder(labels.EmptyLabels())
	var buf []byte
	var out []statusapi.Target
	var loopSeries map[string]int64
	if s.loop != nil {
		loopSeries = map[string]int64{}
		for _, ls := range s.loop.Status() {
			loopSeries[ls.URL] = int64(ls.Series)
		}
	}
	for job, targets := range s.scrape.TargetsActive() {
		for _, t := range targets {
			st := statusapi.Target{
				Job:                job,
				ScrapeURL:          redact.URL(t.URL().String()),
				Health:             health(t.Health()),
				Labels:             toLabels(t.Labels(lb)),
				DiscoveredLabels:   toLabels(t.DiscoveredLabels(lb)),
				LastScrape:         t.LastScrape(),
				LastScrapeDuration: t.LastScrapeDuration(),
				Series:             -1,
			}
			if err := t.LastError(); err != nil {
				st.LastError = redact.Text(err.Error())
			}
			if loopSeries != nil {
				if n, ok := loopSeries[t.URL().String()]; ok && !st.LastScrape.IsZero() {
					st.Series = n
				}
			} else {
				var key uint64
				key, buf = t.Labels(lb).HashWithoutLabels(buf)
				if n, ok := s.series.get(key); ok {
					st.Series = n
				}
			}
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Job != out[j].Job {
			return out[i].Job < out[j].Job
		}
		return out[i].ScrapeURL < out[j].ScrapeURL
	})
	return out
}

func (s *targetStatus) DroppedTargets() statusapi.Dropped {
	d := statusapi.Dropped{Counts: s.scrape.TargetsDroppedCounts()}
	lb := labels.NewBuilder(labels.EmptyLabels())
	for job, targets := range s.scrape.TargetsDropped() {
		cfg, err := s.scrape.ScrapePoolConfig(job)
		if err != nil {
			continue // the job went away since TargetsDropped
		}
		for _, t := range targets {
			disc := t.DiscoveredLabels(lb)
			dt := statusapi.DroppedTarget{Job: job, DiscoveredLabels: toLabels(disc)}
			dt.Rule, dt.Reason = whyDropped(disc, cfg.RelabelConfigs, s.userRules[job], s.shard)
			if dt.Rule >= 0 {
				if text, err := yaml.Marshal(cfg.RelabelConfigs[dt.Rule]); err == nil {
					dt.RuleText = strings.TrimSpace(string(text))
				}
			}
			d.Targets = append(d.Targets, dt)
		}
	}
	sort.SliceStable(d.Targets, func(i, j int) bool { return d.Targets[i].Job < d.Targets[j].Job })
	return d
}

// whyDropped runs the job's relabel rules one by one over the labels
// discovery gave, as Prometheus does when it builds the target, and says
// which rule dropped it. users is how many of the rules are the user's
// (the rest are the shard rules Sluice appends for shard).
func whyDropped(discovered labels.Labels, rules []*relabel.Config, users int, shard ShardConfig) (int, string) {
	lb := labels.NewBuilder(discovered)
	for i, rule := range rules {
		if !relabel.ProcessBuilder(lb, rule) {
			if i >= users {
				return i, fmt.Sprintf("another shard's target (this is shard index %d of count %d)", shard.Index, shard.Count)
			}
			return i, fmt.Sprintf("relabel_configs[%d] (action: %s) dropped it", i, rule.Action)
		}
	}
	if lb.Get(model.AddressLabel) == "" {
		return -1, "no __address__ left after relabelling"
	}
	return -1, "every rule keeps it now: it was dropped under an earlier configuration or discovery state"
}

func health(h scrape.TargetHealth) string {
	switch h {
	case scrape.HealthGood:
		return statusapi.HealthUp
	case scrape.HealthBad:
		return statusapi.HealthDown
	}
	return statusapi.HealthUnknown
}

// toLabels copies ls; values of __param_ labels (the scrape URL's query,
// where tokens live) are redacted as the URL's are.
func toLabels(ls labels.Labels) []statusapi.Label {
	out := make([]statusapi.Label, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		v := l.Value
		if strings.HasPrefix(l.Name, model.ParamLabelPrefix) {
			v = redact.Mark
		}
		out = append(out, statusapi.Label{Name: l.Name, Value: v})
	})
	return out
}

// seriesCounts holds, per target (by the hash of its labels), how many
// series its last scrape produced. It is filled from the scrape loop's own
// report sample scrape_samples_post_metric_relabeling, so it costs one
// name comparison per appended sample and a map write per scrape.
type seriesCounts struct {
	mu        sync.Mutex
	n         map[uint64]seriesCount
	lastPrune time.Time
}

type seriesCount struct {
	n  int64
	at time.Time
}

// forgetAfter is how long a target that stopped reporting is remembered:
// targets churn (pods come and go) and nothing else removes them.
const forgetAfter = time.Hour

func newSeriesCounts() *seriesCounts {
	return &seriesCounts{n: map[uint64]seriesCount{}, lastPrune: time.Now()}
}

func (c *seriesCounts) get(key uint64) (int64, bool) {
	if c == nil {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.n[key]
	return v.n, ok
}

func (c *seriesCounts) set(key uint64, n int64) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[key] = seriesCount{n: n, at: now}
	if now.Sub(c.lastPrune) < time.Minute {
		return
	}
	c.lastPrune = now
	for k, v := range c.n {
		if now.Sub(v.at) > forgetAfter {
			delete(c.n, k)
		}
	}
}

// countingAppendable wraps the receiver's appendable to note each
// target's series count on its way through.
type countingAppendable struct {
	inner  storage.AppendableV2
	counts *seriesCounts
}

func (c countingAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &countingAppender{AppenderV2: c.inner.AppenderV2(ctx), counts: c.counts}
}

type countingAppender struct {
	storage.AppenderV2
	counts *seriesCounts
	buf    []byte
	key    uint64
	n      int64
	seen   bool
}

// reportSeries is the report sample Prometheus appends after each scrape
// with the number of series that are left after metric relabelling.
const reportSeries = "scrape_samples_post_metric_relabeling"

func (a *countingAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	if ls.Get(model.MetricNameLabel) == reportSeries {
		// The report sample carries exactly the target's labels.
		a.key, a.buf = ls.HashWithoutLabels(a.buf)
		a.n, a.seen = int64(v), true
	}
	return a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
}

func (a *countingAppender) Commit() error {
	err := a.AppenderV2.Commit()
	if a.seen {
		a.counts.set(a.key, a.n)
	}
	return err
}
