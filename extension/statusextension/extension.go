package statusextension

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/statusapi"
)

// status is the extension: an HTTP server and the sources components
// registered with it.
type status struct {
	cfg *Config
	set extension.Settings

	mu        sync.Mutex
	targets   map[*registration]statusapi.TargetSource
	queues    map[*registration]statusapi.QueueSource
	pipelines []Pipeline

	server *http.Server
	done   chan struct{}
}

// registration is one Register call; a pointer per call, so a component
// that registers twice under one id (a restart within a reload) removes
// only its own.
type registration struct{ id component.ID }

var (
	_ extension.Extension                         = (*status)(nil)
	_ statusapi.Registry                          = (*status)(nil)
	_ extensioncapabilities.ConfigSnapshotWatcher = (*status)(nil)
)

func newStatus(cfg *Config, set extension.Settings) *status {
	return &status{
		cfg:     cfg,
		set:     set,
		targets: map[*registration]statusapi.TargetSource{},
		queues:  map[*registration]statusapi.QueueSource{},
	}
}

func (s *status) Start(ctx context.Context, host component.Host) error {
	// Listen now, so that a port in use fails the start with its reason.
	ln, err := s.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return err
	}
	s.server, err = s.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), s.set.TelemetrySettings, s.routes())
	if err != nil {
		ln.Close()
		return err
	}
	s.set.Logger.Info("Status page listening", zap.String("url", "http://"+ln.Addr().String()+"/"))
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (s *status) Shutdown(ctx context.Context) error {
	if s.server == nil {
		return nil
	}
	// Requests being answered finish; if the context ends first they are
	// cut off, so that shutting down never waits on a slow browser.
	err := s.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = s.server.Close()
	}
	<-s.done
	return err
}

// NotifyConfigSnapshot takes the pipelines from the collector's effective
// config. The collector calls it after Start, before the pipelines start;
// a reload builds a new service, and with it a new extension.
func (s *status) NotifyConfigSnapshot(_ context.Context, snap extensioncapabilities.ConfigSnapshot) error {
	p, err := parsePipelines(snap.Effective())
	if err != nil {
		s.set.Logger.Warn("Status page: cannot read the pipelines from the config", zap.Error(err))
		return nil // the rest of the page still works
	}
	s.mu.Lock()
	s.pipelines = p
	s.mu.Unlock()
	return nil
}

func (s *status) RegisterTargetSource(id component.ID, src statusapi.TargetSource) func() {
	return register(s, s.targets, id, src)
}

func (s *status) RegisterQueueSource(id component.ID, src statusapi.QueueSource) func() {
	return register(s, s.queues, id, src)
}

func register[S any](s *status, m map[*registration]S, id component.ID, src S) func() {
	r := &registration{id: id}
	s.mu.Lock()
	m[r] = src
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(m, r)
		s.mu.Unlock()
	}
}

// sourced is a source with the id of the component it belongs to.
type sourced[S any] struct {
	id  component.ID
	src S
}

// sources returns the registered sources sorted by component id; they are
// asked outside the lock, as asking may take a while.
func sources[S any](s *status, m map[*registration]S) []sourced[S] {
	s.mu.Lock()
	out := make([]sourced[S], 0, len(m))
	for r, src := range m {
		out = append(out, sourced[S]{id: r.id, src: src})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id.String() < out[j].id.String() })
	return out
}
