// Package statusapi is the contract between Sluice's components and the
// `status` extension: a component that has something to show (scrape
// targets, queues) finds the extension among the host's extensions at
// Start and registers a source with it; the extension asks the sources
// when a page is requested. Nothing is pushed and nothing is kept by the
// extension, so a component costs nothing extra while no one looks.
//
// The types are plain data, ready for JSON: the extension renders them as
// they are, and the sources are small adapters over what the components
// already track.
package statusapi

import (
	"time"

	"go.opentelemetry.io/collector/component"
)

// Label is one label of a target, in the order the source gives (sorted).
type Label struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Health of a scrape target, as Prometheus names it.
const (
	HealthUp      = "up"
	HealthDown    = "down"
	HealthUnknown = "unknown"
)

// Target is one active scrape target: what Prometheus' /targets shows.
type Target struct {
	Job string `json:"job"`
	// ScrapeURL has its userinfo and query values redacted.
	ScrapeURL string `json:"scrape_url"`
	Health    string `json:"health"`
	// Labels are the target's labels after relabelling (what its series
	// carry); DiscoveredLabels are those service discovery gave, before.
	Labels             []Label       `json:"labels"`
	DiscoveredLabels   []Label       `json:"discovered_labels"`
	LastScrape         time.Time     `json:"last_scrape"`
	LastScrapeDuration time.Duration `json:"last_scrape_duration_ns"`
	LastError          string        `json:"last_error,omitempty"`
	// Series is the number of series the last scrape produced (after
	// metric_relabel_configs); -1 when not known yet.
	Series int64 `json:"series"`
}

// DroppedTarget is a discovered target that target relabelling dropped.
type DroppedTarget struct {
	Job              string  `json:"job"`
	DiscoveredLabels []Label `json:"discovered_labels"`
	// Rule is the index in the job's relabel_configs of the first rule
	// that dropped the target; -1 when no single rule did (Reason says why).
	Rule int `json:"rule"`
	// RuleText is that rule, as YAML.
	RuleText string `json:"rule_text,omitempty"`
	Reason   string `json:"reason"`
}

// Dropped is a source's dropped targets: at most what the job's
// keep_dropped_targets keeps, and the count of all of them per job.
type Dropped struct {
	Targets []DroppedTarget `json:"targets"`
	Counts  map[string]int  `json:"counts"`
}

// TargetSource is implemented by receivers that scrape targets.
type TargetSource interface {
	ActiveTargets() []Target
	DroppedTargets() Dropped
}

// ClusterMember is one member of a scraping cluster as one member sees it.
type ClusterMember struct {
	Name string `json:"name"`
	// State is joining (owns nothing yet), active or leaving.
	State string `json:"state"`
	// Targets is how many targets the member owns now.
	Targets int64 `json:"targets"`
	Self    bool  `json:"self"`
}

// Cluster is a clustered receiver's membership.
type Cluster struct {
	Member  string          `json:"member"` // this member's name
	Members []ClusterMember `json:"members"`
}

// ClusterSource is implemented by a TargetSource whose receiver may be
// clustered; Cluster returns nil when it is not.
type ClusterSource interface {
	Cluster() *Cluster
}

// Endpoint is one backend a remote_write exporter sends to.
type Endpoint struct {
	// URL has its userinfo and query values redacted.
	URL    string `json:"url"`
	Shards int    `json:"shards"`
	// QueueBytes and QueueRecords are the backlog: queued, not yet
	// acknowledged by the backend. DiskBytes is what the queue holds on
	// disk, which includes acknowledged parts of segments not yet deleted.
	QueueBytes   int64   `json:"queue_bytes"`
	QueueRecords int64   `json:"queue_records"`
	DiskBytes    int64   `json:"disk_bytes"`
	QueueMax     int64   `json:"queue_max_bytes"`
	OldestAge    float64 `json:"oldest_age_seconds"` // 0 when the queue is empty
	InFlight     int64   `json:"in_flight"`
	Failing      bool    `json:"failing"`
	LastError    string  `json:"last_error,omitempty"`
	// LastErrorTime is when LastError happened; zero when there was none.
	LastErrorTime time.Time `json:"last_error_time"`
	// SendRate is samples (and histograms) per second the backend accepted,
	// over the last minute.
	SendRate float64 `json:"send_rate"`
	// Sent is the samples and histograms accepted since start.
	Sent int64 `json:"sent"`
}

// QueueSource is implemented by exporters that queue data for backends.
type QueueSource interface {
	Endpoints() []Endpoint
}

// Registry is implemented by the status extension. Each Register call
// returns the function that removes the source again (call it at Shutdown).
type Registry interface {
	RegisterTargetSource(id component.ID, src TargetSource) (unregister func())
	RegisterQueueSource(id component.ID, src QueueSource) (unregister func())
}

// RegisterTargets registers src with every status extension of host and
// returns the function that unregisters it from all of them. Without a
// status extension it does nothing.
func RegisterTargets(host component.Host, id component.ID, src TargetSource) (unregister func()) {
	return each(host, func(r Registry) func() { return r.RegisterTargetSource(id, src) })
}

// RegisterQueues is RegisterTargets for a QueueSource.
func RegisterQueues(host component.Host, id component.ID, src QueueSource) (unregister func()) {
	return each(host, func(r Registry) func() { return r.RegisterQueueSource(id, src) })
}

// Present says whether host runs a status extension: a source that costs
// something to keep (the series counts) is only kept then.
func Present(host component.Host) bool {
	for _, ext := range host.GetExtensions() {
		if _, ok := ext.(Registry); ok {
			return true
		}
	}
	return false
}

func each(host component.Host, register func(Registry) func()) func() {
	var undo []func()
	for _, ext := range host.GetExtensions() {
		if r, ok := ext.(Registry); ok {
			undo = append(undo, register(r))
		}
	}
	return func() {
		for _, u := range undo {
			u()
		}
	}
}
