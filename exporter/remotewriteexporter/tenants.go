package remotewriteexporter

// Tenant pass-through (tenants::metadata_keys). A gateway in front of Mimir or
// Cortex takes pushes of many tenants; each push's tenant header (from its
// client metadata, which include_metadata on the receiver and metadata_keys
// on the batch processor keep with the data) must reach the backend with
// that push's samples and no other's. So each tenant has queues of its own,
// a full copy of the exporter's layout (every endpoint, every shard):
//
//	<queue dir>/<exporter id>/shards-N/...              data without a tenant (as before)
//	<queue dir>/<exporter id>/tenants/<id>/tenant.json  the tenant's headers
//	<queue dir>/<exporter id>/tenants/<id>/shards-N/... its queues
//
// The tenant is written to disk before its queues exist, so after a crash
// queued data is sent with the headers it came with, whatever the config
// says by then. Each tenant's endpoints have their own backoff gate, so a
// backend refusing one tenant (503, 429, 401) holds back only that tenant's
// shards. The records themselves are the same as without tenants: queues of
// earlier versions open unchanged and are sent without tenant headers.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/exporter/remotewriteexporter/internal/metadata"
	"github.com/sluicehq/sluice/internal/diskqueue"
)

// tenant is the queues of one tenant: the data whose client metadata had
// these values for the tenant keys.
type tenant struct {
	id        string      // its directory under tenants/
	key       string      // identity, see tenantKey
	headers   http.Header // canonical name → values, as sent
	label     string      // for logs and the status page
	dir       string
	endpoints []*endpoint
	queues    []*diskqueue.Queue // endpoint i, shard j at i*shards+j, as rwExporter.queues
}

// tenancy is the exporter's tenants.
type tenancy struct {
	keys []string // canonical header names of tenants::metadata_keys, sorted
	max  int      // tenants::max_tenants, 0: no limit

	mu      sync.RWMutex
	byKey   map[string]*tenant
	closed  bool // Shutdown began: no tenant is created any more
	sendCtx context.Context

	untagged rateLog // data without any tenant key
	reg      metric.Registration
}

func (tn *tenancy) init(cfg *TenantsConfig) {
	for _, k := range cfg.MetadataKeys {
		tn.keys = append(tn.keys, http.CanonicalHeaderKey(k))
	}
	sort.Strings(tn.keys)
	tn.max = cfg.MaxTenants
	tn.byKey = map[string]*tenant{}
}

// tenantKey is the identity of a set of tenant headers: names sorted, each
// value length-prefixed, so no two sets share one.
func tenantKey(h http.Header) string {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	sort.Strings(names)
	var b []byte
	for _, n := range names {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
		b = binary.AppendUvarint(b, uint64(len(h[n])))
		for _, v := range h[n] {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return string(b)
}

// secretish says whether a header's values must not appear in logs, on the
// status page or in directory names (a gateway may pass credentials
// through per tenant).
func secretish(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "token", "secret", "cookie", "key", "pass"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// tenantLabel renders headers as name=value,... for people to read.
func tenantLabel(h http.Header) string {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		v := strings.Join(h[n], ",")
		if secretish(n) {
			v = "<redacted>"
		}
		parts = append(parts, n+"="+v)
	}
	return strings.Join(parts, " ")
}

// tenantID names a new tenant's directory: readable, and a hash of its
// identity so that no two tenants share one.
func tenantID(key, label string) string {
	name := strings.Trim(unsafePath.ReplaceAllString(label, "_"), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("tenant-%s-%016x", name, xxhash.Sum64String(key))
}

// tenantHeaders are the tenant headers of a request's client metadata; nil
// when it has none of the keys (or only empty values).
func (tn *tenancy) tenantHeaders(ctx context.Context) http.Header {
	md := client.FromContext(ctx).Metadata
	var h http.Header
	for _, k := range tn.keys {
		var vs []string
		for _, v := range md.Get(k) {
			if v != "" {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			if h == nil {
				h = http.Header{}
			}
			h[k] = vs
		}
	}
	return h
}

// queuesFor is where ctx's data goes: without tenant keys (or for data
// without a tenant) the exporter's own queues, else its tenant's.
func (e *rwExporter) queuesFor(ctx context.Context) ([]*diskqueue.Queue, error) {
	if len(e.tenants.keys) == 0 {
		return e.queues, nil
	}
	t, err := e.tenantFor(ctx)
	if err != nil || t == nil {
		return e.queues, err
	}
	return t.queues, nil
}

// tenantFor returns the tenant of ctx's data, creating it (directory,
// queues, senders) on first sight; nil for data without tenant headers,
// which goes to the exporter's own queues. Called with e.mu held for reading.
func (e *rwExporter) tenantFor(ctx context.Context) (*tenant, error) {
	tn := &e.tenants
	h := tn.tenantHeaders(ctx)
	if h == nil {
		tn.untagged.warn(e.logger, "Data without tenant metadata: queued and sent without tenant headers. "+
			"Is include_metadata set on the receiver, and are the keys in the batch processor's metadata_keys?",
			zap.Strings("tenant_keys", tn.keys))
		return nil, nil
	}
	key := tenantKey(h)
	tn.mu.RLock()
	t := tn.byKey[key]
	tn.mu.RUnlock()
	if t != nil {
		return t, nil
	}
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if t := tn.byKey[key]; t != nil {
		return t, nil
	}
	if tn.closed {
		return nil, errShuttingDown
	}
	label := tenantLabel(h)
	if tn.max > 0 && len(tn.byKey) >= tn.max {
		return nil, consumererror.NewPermanent(fmt.Errorf(
			"remote_write: tenants::max_tenants (%d) reached: refusing the data of a new tenant (%s)", tn.max, label))
	}
	t = &tenant{key: key, headers: h, label: label, id: tenantID(key, label)}
	t.dir = filepath.Join(e.dir, tenantsDir, t.id)
	if err := e.createTenant(t); err != nil {
		return nil, fmt.Errorf("remote_write: tenant %s: %w", label, err)
	}
	tn.byKey[key] = t
	e.startTenant(t)
	e.logger.Info("New tenant: queued and sent apart", zap.String("tenant", label), zap.String("dir", t.dir))
	return t, nil
}

// openTenantQueues makes the tenant's copy of every endpoint, with the
// tenant's headers and a backoff gate of its own, and opens its queues
// (and earlier shard layouts) as openEndpoint does the exporter's.
func (e *rwExporter) openTenantQueues(t *tenant) error {
	for _, base := range e.endpoints {
		ep := &endpoint{url: base.url, name: base.name + " [" + t.label + "]", seed: base.seed,
			gate: newGate(), recheck: base.recheck, v1Until: base.v1Until, headers: t.headers}
		ep.health.logger, ep.health.endpoint = e.logger, ep.name
		ep.dir = t.dir
		if len(e.endpoints) > 1 {
			ep.dir = filepath.Join(t.dir, endpointDir(ep.url))
		}
		t.endpoints = append(t.endpoints, ep) // before opening: closed with the others on an error
		if err := e.openEndpoint(ep); err != nil {
			return err
		}
		t.queues = append(t.queues, ep.shards...)
	}
	return nil
}

// close closes every queue of t, earlier layouts included.
func (t *tenant) close() {
	for _, ep := range t.endpoints {
		closeAll(ep.shards)
		for _, l := range ep.old {
			closeAll(l.queues)
		}
	}
}

func closeAll(qs []*diskqueue.Queue) {
	for _, q := range qs {
		_ = q.Close()
	}
}

// startTenants starts the senders of the tenants reopened at Start; later
// tenants start as they are made.
func (e *rwExporter) startTenants(sendCtx context.Context) {
	tn := &e.tenants
	tn.mu.Lock()
	defer tn.mu.Unlock()
	tn.sendCtx = sendCtx
	for _, t := range tn.byKey {
		e.startTenant(t)
	}
}

// startTenant starts t's senders; tn.mu is held, so Shutdown (which marks
// tn closed under it before waiting for the senders) sees every one.
func (e *rwExporter) startTenant(t *tenant) {
	for _, ep := range t.endpoints {
		e.startSenders(e.tenants.sendCtx, ep)
	}
}

// closeTenants stops making tenants: from now on the set of senders is fixed.
func (e *rwExporter) closeTenants() {
	e.tenants.mu.Lock()
	e.tenants.closed = true
	e.tenants.mu.Unlock()
}

// tenantList is every tenant, in directory order, for telemetry and status.
func (e *rwExporter) tenantList() []*tenant {
	e.tenants.mu.RLock()
	defer e.tenants.mu.RUnlock()
	out := make([]*tenant, 0, len(e.tenants.byKey))
	for _, t := range e.tenants.byKey {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// tenantQueues is every queue of every tenant, earlier layouts included.
func (e *rwExporter) tenantQueues() []*diskqueue.Queue {
	var out []*diskqueue.Queue
	for _, ep := range e.tenantEndpoints() {
		out = append(out, ep.shards...)
		for _, l := range ep.old {
			out = append(out, l.queues...)
		}
	}
	return out
}

// tenantEndpoints is every tenant's endpoint copies.
func (e *rwExporter) tenantEndpoints() []*endpoint {
	var out []*endpoint
	for _, t := range e.tenantList() {
		out = append(out, t.endpoints...)
	}
	return out
}

// rateLog logs a warning at most once per rateLogEvery.
type rateLog struct {
	mu   sync.Mutex
	last time.Time
}

const rateLogEvery = 5 * time.Minute

func (r *rateLog) warn(l *zap.Logger, msg string, fields ...zap.Field) {
	r.mu.Lock()
	if !r.last.IsZero() && time.Since(r.last) < rateLogEvery {
		r.mu.Unlock()
		return
	}
	r.last = time.Now()
	r.mu.Unlock()
	l.Warn(msg, fields...)
}

// registerTenantTelemetry reports the number of tenants with queues.
func (e *rwExporter) registerTenantTelemetry() error {
	m := e.set.TelemetrySettings.MeterProvider.Meter(metadata.ScopeName)
	g, err := m.Int64ObservableGauge("otelcol_remote_write_tenants", metric.WithUnit("{tenant}"),
		metric.WithDescription("Tenants with queues of their own (tenants::metadata_keys), also those reopened at start with data."))
	if err != nil {
		return err
	}
	own := metric.WithAttributes(attribute.String("exporter", e.set.ID.String()))
	e.tenants.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		e.tenants.mu.RLock()
		n := len(e.tenants.byKey)
		e.tenants.mu.RUnlock()
		o.ObserveInt64(g, int64(n), own)
		return nil
	}, g)
	return err
}

func (e *rwExporter) unregisterTenantTelemetry() {
	if e.tenants.reg != nil {
		_ = e.tenants.reg.Unregister()
	}
}
