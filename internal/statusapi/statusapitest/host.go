// Package statusapitest gives components' tests a host whose one extension
// keeps the sources registered with it, as the status extension does.
package statusapitest

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"

	"github.com/sluicehq/sluice/internal/statusapi"
)

// Host is a component.Host with a status registry as its one extension.
type Host struct {
	mu      sync.Mutex
	targets map[component.ID]statusapi.TargetSource
	queues  map[component.ID]statusapi.QueueSource
}

// NewHost returns a host with nothing registered.
func NewHost() *Host {
	return &Host{targets: map[component.ID]statusapi.TargetSource{}, queues: map[component.ID]statusapi.QueueSource{}}
}

func (h *Host) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{component.MustNewID("status"): h}
}
func (h *Host) Start(context.Context, component.Host) error { return nil }
func (h *Host) Shutdown(context.Context) error              { return nil }

func (h *Host) RegisterTargetSource(id component.ID, src statusapi.TargetSource) func() {
	return register(&h.mu, h.targets, id, src)
}

func (h *Host) RegisterQueueSource(id component.ID, src statusapi.QueueSource) func() {
	return register(&h.mu, h.queues, id, src)
}

func register[S any](mu *sync.Mutex, m map[component.ID]S, id component.ID, src S) func() {
	mu.Lock()
	defer mu.Unlock()
	m[id] = src
	return func() {
		mu.Lock()
		defer mu.Unlock()
		delete(m, id)
	}
}

// TargetSource is the one target source registered (a test runs one
// receiver); nil when there is none.
func (h *Host) TargetSource() statusapi.TargetSource {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, src := range h.targets {
		return src
	}
	return nil
}
