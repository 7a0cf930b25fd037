package statusextension

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/sluicehq/sluice/internal/statusapi"
)

// The JSON API's answers. Each item names the component it came from.
type (
	// Target is an active scrape target of a receiver.
	Target struct {
		Receiver string `json:"receiver"`
		statusapi.Target
	}
	// DroppedTarget is a target a receiver's relabelling dropped.
	DroppedTarget struct {
		Receiver string `json:"receiver"`
		statusapi.DroppedTarget
	}
	// Endpoint is one backend of an exporter.
	Endpoint struct {
		Exporter string `json:"exporter"`
		statusapi.Endpoint
	}
	// Dropped is every receiver's dropped targets, and their counts per
	// receiver and job (also those keep_dropped_targets did not keep).
	Dropped struct {
		Targets []DroppedTarget           `json:"targets"`
		Counts  map[string]map[string]int `json:"counts"`
	}
	// Cluster is a clustered receiver's membership.
	Cluster struct {
		Receiver string `json:"receiver"`
		statusapi.Cluster
	}
	// Snapshot is everything the status page shows, at one time.
	Snapshot struct {
		Time      time.Time  `json:"time"`
		Targets   []Target   `json:"targets"`
		Pipelines []Pipeline `json:"pipelines"`
		Endpoints []Endpoint `json:"endpoints"`
		Clusters  []Cluster  `json:"clusters"`
	}
)

// clusters is the membership of every clustered receiver.
func (s *status) clusters() []Cluster {
	out := []Cluster{}
	for _, src := range sources(s, s.targets) {
		if cs, ok := src.src.(statusapi.ClusterSource); ok {
			if c := cs.Cluster(); c != nil {
				out = append(out, Cluster{Receiver: src.id.String(), Cluster: *c})
			}
		}
	}
	return out
}

func (s *status) activeTargets() []Target {
	out := []Target{}
	for _, src := range sources(s, s.targets) {
		for _, t := range src.src.ActiveTargets() {
			out = append(out, Target{Receiver: src.id.String(), Target: t})
		}
	}
	return out
}

func (s *status) droppedTargets() Dropped {
	d := Dropped{Targets: []DroppedTarget{}, Counts: map[string]map[string]int{}}
	for _, src := range sources(s, s.targets) {
		got := src.src.DroppedTargets()
		for _, t := range got.Targets {
			d.Targets = append(d.Targets, DroppedTarget{Receiver: src.id.String(), DroppedTarget: t})
		}
		d.Counts[src.id.String()] = got.Counts
	}
	return d
}

func (s *status) endpoints() []Endpoint {
	out := []Endpoint{}
	for _, src := range sources(s, s.queues) {
		for _, ep := range src.src.Endpoints() {
			out = append(out, Endpoint{Exporter: src.id.String(), Endpoint: ep})
		}
	}
	return out
}

func (s *status) configuredPipelines() []Pipeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Pipeline{}, s.pipelines...)
}

func (s *status) snapshot() Snapshot {
	return Snapshot{
		Time:      time.Now(),
		Targets:   s.activeTargets(),
		Pipelines: s.configuredPipelines(),
		Endpoints: s.endpoints(),
		Clusters:  s.clusters(),
	}
}

// jsonHandler answers with what get returns, as indented JSON.
func jsonHandler[T any](get func() T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(get())
	}
}
