package remotewriteexporter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/diskqueue"
	"github.com/sluicehq/sluice/internal/promseries"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/statusapi"
)

// rwExporter is the remote_write exporter: ConsumeMetrics translates,
// shards and encodes into the disk queues; one sender per shard delivers.
type rwExporter struct {
	cfg       *Config
	set       exporter.Settings
	logger    *zap.Logger
	userAgent string
	walkOpts  promseries.Options
	external  []labels.Label // sorted

	client   *http.Client
	tel      *telemetry
	deltaLog health // says, at most once a minute, that delta points are refused
	// queueHealth reports senders that cannot read their queue.
	queueHealth queueHealth

	dir       string   // <queue.directory>/<exporter id>
	lock      *os.File // flock on dir
	endpoints []*endpoint
	queues    []*diskqueue.Queue // every endpoint's shards: endpoint i, shard j at i*shards+j
	tenants   tenancy            // tenants::, see tenants.go

	mu       sync.RWMutex // held for reading by ConsumeMetrics
	stopping atomic.Bool
	pool     sync.Pool // *encoder
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	unregister func() // removes the status page's queue source
}

func newExporter(cfg *Config, set exporter.Settings) *rwExporter {
	e := &rwExporter{
		cfg:       cfg,
		set:       set,
		logger:    set.Logger,
		userAgent: "sluice/" + set.BuildInfo.Version,
		walkOpts: promseries.Options{
			AddMetricSuffixes: cfg.AddMetricSuffixes,
			ResourceToLabels:  cfg.ResourceToTelemetryConversion.Enabled,
		},
	}
	if set.BuildInfo.Version == "" {
		e.userAgent = "sluice"
	}
	for name, value := range cfg.ExternalLabels {
		e.external = append(e.external, labels.Label{Name: name, Value: value})
	}
	sort.Slice(e.external, func(i, j int) bool { return e.external[i].Name < e.external[j].Name })
	e.deltaLog.logger = set.Logger
	e.queueHealth.logger = set.Logger
	e.tenants.init(&cfg.Tenants)
	for _, url := range cfg.urls() {
		ep := &endpoint{url: url, name: redact.URL(url), seed: xxhash.Sum64String(url), gate: newGate(), recheck: v2Recheck, v1Until: new(atomic.Int64)}
		ep.health.logger, ep.health.endpoint = set.Logger, ep.name
		e.endpoints = append(e.endpoints, ep)
	}
	return e
}

func (e *rwExporter) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// v2Recheck is how long a fallback from 2.0 to 1.0 lasts before 2.0 is
// tried again (one request tells).
const v2Recheck = 10 * time.Minute

// unsafePath keeps an exporter id usable as a directory name.
var unsafePath = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func (e *rwExporter) Start(ctx context.Context, host component.Host) error {
	var err error
	if e.client, err = e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings); err != nil {
		return fmt.Errorf("remote_write: HTTP client: %w", err)
	}
	e.client.CheckRedirect = noRedirects
	e.queueHealth.setHost(host)
	e.dir = filepath.Join(e.cfg.Queue.Directory, unsafePath.ReplaceAllString(e.set.ID.String(), "_"))
	if err := e.openQueues(); err != nil {
		e.closeQueues()
		return err
	}
	if err := e.openTenants(); err != nil {
		e.closeQueues()
		return err
	}
	if e.tel, err = newTelemetry(e.set.ID, e.set.TelemetrySettings, func() int { return e.cfg.Shards }, e.allQueues); err != nil {
		e.closeQueues()
		return fmt.Errorf("remote_write: telemetry: %w", err)
	}
	if err := e.registerTenantTelemetry(); err != nil {
		e.closeQueues()
		return fmt.Errorf("remote_write: telemetry: %w", err)
	}
	sendCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.unregister = statusapi.RegisterQueues(host, e.set.ID, e)
	for _, ep := range e.endpoints {
		e.startSenders(sendCtx, ep)
	}
	e.startTenants(sendCtx)
	return nil
}

// startSenders starts ep's delivery: first the earlier shard layouts
// drain, one after another, oldest first; then one sender per shard of the
// current layout. A series' older samples are in an older layout, so
// nothing of a series is sent before what it queued earlier.
func (e *rwExporter) startSenders(sendCtx context.Context, ep *endpoint) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if !e.drainOld(sendCtx, ep) {
			return // shutting down: what is left stays on disk for the next start
		}
		var wg sync.WaitGroup
		for i, q := range ep.shards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.sendLoop(sendCtx, ep, q, i, false)
			}()
		}
		wg.Wait()
	}()
}

// drainOld sends everything ep's earlier layouts hold, a layout's shards in
// parallel (each series is in one of them), and removes each layout once
// every one of its queues is empty. It returns false when ctx ended (or
// the queues were closed) first; the layout being drained is then kept.
func (e *rwExporter) drainOld(ctx context.Context, ep *endpoint) bool {
	for {
		e.mu.RLock()
		if len(ep.old) == 0 {
			e.mu.RUnlock()
			return true
		}
		l := ep.old[0]
		e.mu.RUnlock()
		empty := make([]bool, len(l.queues))
		var wg sync.WaitGroup
		for i, q := range l.queues {
			wg.Add(1)
			go func() {
				defer wg.Done()
				empty[i] = e.sendLoop(ctx, ep, q, i, true)
			}()
		}
		wg.Wait()
		for _, ok := range empty {
			if !ok {
				return false
			}
		}
		e.removeLayout(ep, l)
	}
}

// layoutDir is where a shard layout of ep keeps its queues: one directory
// per shard under shards-<count>.
func (ep *endpoint) layoutDir(count int) string {
	return filepath.Join(ep.dir, "shards-"+strconv.Itoa(count))
}

func (e *rwExporter) queueOptions(dir string, shards int) diskqueue.Options {
	o := diskqueue.Options{Dir: dir, MaxBytes: e.cfg.Queue.MaxSize / int64(shards)}
	switch e.cfg.Queue.Sync {
	case "always":
		o.Sync = diskqueue.SyncAlways
	case "never":
		o.Sync = diskqueue.SyncNever
	default:
		o.Sync, o.SyncInterval = diskqueue.SyncInterval, e.cfg.Queue.SyncInterval
	}
	if e.cfg.Queue.FullPolicy == "block" {
		o.Full = diskqueue.Block
	}
	return o
}

// openQueues takes the lock of the exporter's directory and opens every
// endpoint's queues.
func (e *rwExporter) openQueues() error {
	if err := os.MkdirAll(e.dir, 0o750); err != nil {
		return fmt.Errorf("remote_write: queue::directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(e.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return fmt.Errorf("remote_write: queue::directory: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("remote_write: queue::directory: %s is in use by another process (%w); give each Sluice its own directory", e.dir, err)
	}
	e.lock = lock
	for _, ep := range e.endpoints {
		// One endpoint keeps its queues in the exporter's directory (as
		// before endpoints came); several each have a directory of their own.
		ep.dir = e.dir
		if len(e.endpoints) > 1 {
			ep.dir = filepath.Join(e.dir, endpointDir(ep.url))
		}
		if err := e.openEndpoint(ep); err != nil {
			return err
		}
		e.queues = append(e.queues, ep.shards...)
	}
	return nil
}

// openEndpoint opens ep's shard queues and any earlier layout's that still
// hold data.
func (e *rwExporter) openEndpoint(ep *endpoint) error {
	if err := os.MkdirAll(ep.dir, 0o750); err != nil {
		return fmt.Errorf("remote_write: queue::directory: %w", err)
	}
	entries, err := os.ReadDir(ep.dir)
	if err != nil {
		return fmt.Errorf("remote_write: queue::directory: %w", err)
	}
	for _, ent := range entries {
		n, ok := strings.CutPrefix(ent.Name(), "shards-")
		count, err := strconv.Atoi(n)
		if !ok || err != nil || !ent.IsDir() || count == e.cfg.Shards || count < 1 {
			continue
		}
		l := &layout{count: count, dir: ep.layoutDir(count)}
		ep.old = append(ep.old, l) // before opening: closed with the others on an error
		for i := 0; i < count; i++ {
			q, err := diskqueue.Open(e.queueOptions(filepath.Join(l.dir, strconv.Itoa(i)), count))
			if err != nil {
				return fmt.Errorf("remote_write: opening the queue of an earlier layout (%d shards): %w", count, err)
			}
			l.queues = append(l.queues, q)
		}
		e.logger.Info("Queue holds data of an earlier shard count; it is sent first to keep series in order",
			zap.String("endpoint", ep.name), zap.Int("earlier_shards", count), zap.Int("shards", e.cfg.Shards))
	}
	// Oldest first: a layout written while an older one was still draining
	// holds only data queued after everything in the older one.
	sort.SliceStable(ep.old, func(i, j int) bool { return ep.old[i].oldest().Before(ep.old[j].oldest()) })
	for i := 0; i < e.cfg.Shards; i++ {
		q, err := diskqueue.Open(e.queueOptions(filepath.Join(ep.layoutDir(e.cfg.Shards), strconv.Itoa(i)), e.cfg.Shards))
		if err != nil {
			return fmt.Errorf("remote_write: opening the queue: %w", err)
		}
		if st := q.Stats(); st.RepairedBytes > 0 || st.CorruptRecs > 0 {
			e.logger.Warn("Queue repaired at start", zap.String("endpoint", ep.name), zap.Int("shard", i),
				zap.Int64("torn_bytes_cut", st.RepairedBytes), zap.Int64("corrupt_ranges", st.CorruptRecs),
				zap.Int64("corrupt_bytes", st.CorruptBytes), zap.Int64("records_kept", st.Records))
		}
		ep.shards = append(ep.shards, q)
	}
	return nil
}

// removeLayout deletes an earlier layout of ep that drained.
func (e *rwExporter) removeLayout(ep *endpoint, l *layout) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var left int64
	for _, q := range l.queues {
		left += q.Stats().Records
		_ = q.Close()
	}
	ep.old = ep.old[1:]
	if left > 0 {
		// Next had nothing more to give, so nothing more can be sent.
		e.logger.Warn("Earlier shard layout counts records it cannot read; removing it",
			zap.String("endpoint", ep.name), zap.Int("earlier_shards", l.count), zap.Int64("records", left))
	}
	if err := os.RemoveAll(l.dir); err != nil {
		e.logger.Warn("Could not remove a drained shard layout", zap.String("dir", l.dir), errField(err))
		return
	}
	e.logger.Info("Earlier shard layout drained", zap.String("endpoint", ep.name), zap.Int("earlier_shards", l.count))
}

func (e *rwExporter) allQueues() []*diskqueue.Queue {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := append([]*diskqueue.Queue(nil), e.queues...)
	for _, ep := range e.endpoints {
		for _, l := range ep.old {
			out = append(out, l.queues...)
		}
	}
	return append(out, e.tenantQueues()...)
}

func (e *rwExporter) closeQueues() {
	for _, q := range e.allQueues() {
		_ = q.Close()
	}
	if e.lock != nil {
		_ = e.lock.Close()
	}
}

// Shutdown stops taking data, stops the senders (a request in flight is
// abandoned and sent again after the restart) and closes the queues, which
// syncs them.
func (e *rwExporter) Shutdown(ctx context.Context) error {
	e.stopping.Store(true)
	e.closeTenants()
	if e.unregister != nil {
		e.unregister()
	}
	if e.cancel != nil {
		e.cancel()
	}
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("remote_write: senders did not stop in time: %w", ctx.Err())
	}
	e.closeQueues() // also wakes ConsumeMetrics calls blocked on a full queue
	e.mu.Lock()     // wait for ConsumeMetrics calls to leave
	e.mu.Unlock()
	if e.tel != nil {
		e.tel.shutdown()
	}
	e.unregisterTenantTelemetry()
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	return err
}

// encoder is the per-call state of ConsumeMetrics: a request builder per
// shard and scratch space.
type encoder struct {
	b      []*builder
	ls     []labels.Label // the sample's series labels, with the external labels
	merged []labels.Label // scratch for ls when there are external labels
	rec    []byte
	delta  recordHeader
	hbuf   []byte // the bytes seriesHash hashes

	// queues is where this call's requests go: the exporter's, or its tenant's.
	queues []*diskqueue.Queue
}

func (e *rwExporter) getEncoder() *encoder {
	enc, _ := e.pool.Get().(*encoder)
	if enc == nil {
		enc = &encoder{}
		for range e.queues {
			enc.b = append(enc.b, newBuilder(false))
		}
	}
	for i, b := range enc.b {
		ep := e.endpoints[i/e.cfg.Shards]
		b.reset(e.cfg.ProtobufMessage == MessageV2 && !ep.isV1())
	}
	enc.delta = recordHeader{}
	return enc
}

// ConsumeMetrics returns nil only once every series of md is in the queue
// (synced as queue::sync says).
func (e *rwExporter) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.stopping.Load() {
		return errShuttingDown
	}
	queues, err := e.queuesFor(ctx) // the exporter's, or its tenant's (tenants.go)
	if err != nil {
		return err
	}
	enc := e.getEncoder()
	enc.queues = queues
	defer e.pool.Put(enc)
	add := func(s *promseries.Sample) error {
		if s.Delta {
			if s.H != nil {
				enc.delta.histograms++
			} else {
				enc.delta.samples++
			}
			return nil
		}
		enc.ls = s.Labels
		if len(e.external) > 0 {
			enc.merged = mergeLabels(enc.merged[:0], s.Labels, e.external)
			enc.ls = enc.merged
		}
		var h uint64
		h, enc.hbuf = seriesHash(enc.hbuf[:0], enc.ls)
		shard := int(h % uint64(e.cfg.Shards))
		if len(e.endpoints) == 1 || e.cfg.Balance == BalanceSeries {
			return e.add(ctx, enc, e.endpointOf(h)*e.cfg.Shards+shard, s)
		}
		for i := range e.endpoints { // replicate
			if err := e.add(ctx, enc, i*e.cfg.Shards+shard, s); err != nil {
				return err
			}
		}
		return nil
	}
	dropped, err := promseries.Walk(md, e.walkOpts, add)
	if err == nil && e.cfg.TargetInfo.Enabled {
		err = targetInfo(md, add)
	}
	for shard := range enc.b {
		if err != nil {
			break
		}
		if enc.b[shard].entries > 0 {
			err = e.flush(ctx, enc, shard)
		}
	}
	if e.tel != nil {
		for reason, n := range dropped {
			e.tel.drop(ctx, recordHeader{samples: int64(n)}, reason)
		}
		if enc.delta.samples+enc.delta.histograms > 0 {
			e.tel.drop(ctx, enc.delta, reasonDelta)
			e.deltaLog.deltaRefused(enc.delta)
		}
	}
	if err != nil {
		if errors.Is(err, diskqueue.ErrClosed) {
			return errShuttingDown
		}
		return fmt.Errorf("remote_write: queueing: %w", err)
	}
	return nil
}

// add puts a sample into the request being built for queue q, queueing
// the request once it is full.
func (e *rwExporter) add(ctx context.Context, enc *encoder, q int, s *promseries.Sample) error {
	b := enc.b[q]
	b.add(s, enc.ls)
	if b.entries >= e.cfg.MaxSamplesPerSend {
		return e.flush(ctx, enc, q)
	}
	return nil
}

func (e *rwExporter) flush(ctx context.Context, enc *encoder, q int) error {
	b := enc.b[q]
	enc.rec = b.finish(enc.rec[:0])
	b.reset(b.v2)
	return enc.queues[q].Append(ctx, enc.rec)
}

// seriesHash hashes the series' labels: the same series, the same shard
// (and endpoint), so its samples leave in order. The hash is xxhash of each
// name and value followed by 0xff, which queues on disk were sharded by:
// it must not change. It returns buf, grown, for the next call.
func seriesHash(buf []byte, ls []labels.Label) (uint64, []byte) {
	for _, l := range ls {
		buf = append(buf, l.Name...)
		buf = append(buf, 0xff)
		buf = append(buf, l.Value...)
		buf = append(buf, 0xff)
	}
	return xxhash.Sum64(buf), buf
}

// mergeLabels appends the series labels and the external labels it does
// not have, in name order.
func mergeLabels(dst, ls, ext []labels.Label) []labels.Label {
	i := 0
	for _, l := range ls {
		for i < len(ext) && ext[i].Name < l.Name {
			dst = append(dst, ext[i])
			i++
		}
		if i < len(ext) && ext[i].Name == l.Name {
			i++ // the series' own label wins, as in Prometheus
		}
		dst = append(dst, l)
	}
	return append(dst, ext[i:]...)
}

// targetInfo adds the target_info series of md's resources.
func targetInfo(md pmetric.Metrics, add func(*promseries.Sample) error) error {
	return promseries.TargetInfo(md, add)
}
