package prometheusreceiver

import (
	"context"
	"time"

	"github.com/prometheus/prometheus/scrape"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/redact"
)

// healthWatch logs a target's health when it changes (its URL redacted:
// params and userinfo may hold credentials) — once when it goes
// down (with the URL and Prometheus' error), once when it comes back — so a
// failing target is visible without a log line per scrape.
type healthWatch struct {
	logger *zap.Logger
	last   map[string]scrape.TargetHealth
}

func (h *healthWatch) check(active map[string][]*scrape.Target) {
	seen := make(map[string]bool, len(h.last))
	for job, targets := range active {
		for _, t := range targets {
			url := t.URL().String()
			seen[url] = true
			health := t.Health()
			if health == scrape.HealthUnknown || h.last[url] == health {
				continue
			}
			if health == scrape.HealthBad {
				errText := ""
				if err := t.LastError(); err != nil {
					errText = err.Error()
				}
				h.logger.Warn("scrape target down", zap.String("target", redact.URL(url)), zap.String("job", job), zap.String("error", redact.Text(errText)))
			} else if h.last[url] == scrape.HealthBad {
				h.logger.Info("scrape target up again", zap.String("target", redact.URL(url)), zap.String("job", job))
			}
			h.last[url] = health
		}
	}
	for url := range h.last {
		if !seen[url] {
			delete(h.last, url) // gone from discovery: forget it
		}
	}
}

// watchTargets looks at the targets every interval until ctx ends: logs
// health changes and hands the targets to the telemetry.
func (r *scrapeReceiver) watchTargets(ctx context.Context, every time.Duration) {
	h := &healthWatch{logger: r.set.Logger, last: map[string]scrape.TargetHealth{}}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			active := r.scrape.TargetsActive()
			h.check(active)
			r.jobs.update(active)
			r.tel.observeTargets(r.jobNames, targetsFacts(active), r.scrape.TargetsDroppedCounts())
			if r.cluster != nil {
				r.cluster.observe(r.loop.TargetKeys())
			}
		}
	}
}
