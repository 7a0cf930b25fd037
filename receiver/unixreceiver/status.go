package unixreceiver

import (
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/statusapi"
)

// hostTarget shows the host on the status page as one target, beside the
// prometheus receiver's: the host is what this receiver scrapes, and a
// user looking for "what is collected, and is it working" expects it there.
type hostTarget struct {
	mu sync.Mutex
	t  statusapi.Target
}

func newHostTarget(cfg *Config, instance string) *hostTarget {
	return &hostTarget{t: statusapi.Target{
		Job: cfg.Job, ScrapeURL: "file://" + cfg.ProcfsPath, Health: statusapi.HealthUnknown, Series: -1,
		Labels: []statusapi.Label{{Name: "instance", Value: instance}, {Name: "job", Value: cfg.Job}},
	}}
}

// collected records one collection: up when anything was read (node_exporter
// answers with what its other collectors read when one fails, and says which
// failed), down when nothing was; err names the collectors that failed.
func (h *hostTarget) collected(start time.Time, points int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.t.LastScrape, h.t.LastScrapeDuration = start, time.Since(start)
	h.t.Series = int64(points)
	h.t.Health = statusapi.HealthUp
	if points == 0 {
		h.t.Health = statusapi.HealthDown
	}
	h.t.LastError = ""
	if err != nil {
		h.t.LastError = err.Error()
	}
}

func (h *hostTarget) ActiveTargets() []statusapi.Target {
	h.mu.Lock()
	defer h.mu.Unlock()
	return []statusapi.Target{h.t}
}

func (h *hostTarget) DroppedTargets() statusapi.Dropped {
	return statusapi.Dropped{Targets: []statusapi.DroppedTarget{}, Counts: map[string]int{}}
}
