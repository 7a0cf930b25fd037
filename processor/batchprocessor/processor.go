package batchprocessor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"
)

var (
	errShutdown   = errors.New("batch processor: shut down, data refused")
	errNotStarted = errors.New("batch processor: not started, data refused")
)

// batchProcessor routes each request to the shard of its metadata values
// (the only one without metadata_keys); the shards do the batching.
type batchProcessor struct {
	next   consumer.Metrics
	logger *zap.Logger
	tel    *telemetry

	timeout       time.Duration
	sendBatchSize int
	maxBatchSize  int // 0: no limit
	maxPending    int
	waitForResult bool
	keys          []string // metadata_keys, lower-cased and sorted
	limit         int      // metadata_cardinality_limit, 0: none

	// single is the one shard when there are no metadata_keys, set by
	// Start: the common case takes no lock here.
	single atomic.Pointer[shard]

	mu      sync.RWMutex
	shards  map[string]*shard
	started bool
	closed  bool

	exporters sync.WaitGroup // one goroutine per shard

	// exportCtx is the parent of every shard's export context; Shutdown
	// cancels it once it stops waiting, so an export blocked downstream
	// (a full queue with full_policy: block) returns an error instead of
	// holding the collector's shutdown for ever.
	exportCtx     context.Context
	cancelExports context.CancelFunc
	// shutdownBound is how long Shutdown waits for exports when its
	// context has no deadline (the collector's service gives none).
	shutdownBound time.Duration
}

// defaultShutdownBound: exports still running this long after Shutdown
// began are cancelled.
const defaultShutdownBound = 30 * time.Second

// exportGrace is how long cancelled exports get to return before Shutdown
// gives up on them.
const exportGrace = 5 * time.Second

func newBatchProcessor(set processor.Settings, cfg *Config, next consumer.Metrics) (*batchProcessor, error) {
	keys := make([]string, len(cfg.MetadataKeys))
	for i, k := range cfg.MetadataKeys {
		keys[i] = strings.ToLower(k)
	}
	sort.Strings(keys)
	p := &batchProcessor{
		next:          next,
		logger:        set.Logger,
		timeout:       cfg.Timeout,
		sendBatchSize: int(cfg.SendBatchSize),
		maxBatchSize:  int(cfg.SendBatchMaxSize),
		maxPending:    cfg.maxPending(),
		waitForResult: cfg.WaitForResult,
		keys:          keys,
		limit:         int(cfg.MetadataCardinalityLimit),
		shards:        map[string]*shard{},
		shutdownBound: defaultShutdownBound,
	}
	p.exportCtx, p.cancelExports = context.WithCancel(context.Background())
	tel, err := newTelemetry(set.ID, set.TelemetrySettings, p.held)
	if err != nil {
		return nil, fmt.Errorf("batch processor telemetry: %w", err)
	}
	p.tel = tel
	return p, nil
}

// Capabilities: the data points are moved, not copied, into batches.
func (p *batchProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

func (p *batchProcessor) Start(context.Context, component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return nil
	}
	p.started = true
	if len(p.keys) == 0 {
		s := p.startShardLocked("", nil)
		p.single.Store(s)
	}
	return nil
}

// ConsumeMetrics moves md's data points into its shard's pending batch. It
// blocks while the shard holds max_pending_data_points, and with
// wait_for_result until the data has been exported.
func (p *batchProcessor) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	s, err := p.shardFor(ctx)
	if err != nil {
		return err
	}
	return s.consume(ctx, md, md.DataPointCount())
}

func (p *batchProcessor) shardFor(ctx context.Context) (*shard, error) {
	if len(p.keys) == 0 {
		if s := p.single.Load(); s != nil {
			return s, nil
		}
		p.mu.RLock()
		defer p.mu.RUnlock()
		if p.closed {
			return nil, errShutdown
		}
		return nil, errNotStarted
	}
	info := client.FromContext(ctx)
	key := p.shardKey(info.Metadata)
	p.mu.RLock()
	s := p.shards[key]
	p.mu.RUnlock()
	if s != nil {
		return s, nil
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, errShutdown
	case !p.started:
		return nil, errNotStarted
	}
	if s := p.shards[key]; s != nil {
		return s, nil
	}
	if p.limit > 0 && len(p.shards) >= p.limit {
		return nil, consumererror.NewPermanent(fmt.Errorf(
			"batch processor: metadata_cardinality_limit (%d) reached: refusing data with a new combination of metadata_keys values", p.limit))
	}
	values := make(map[string][]string, len(p.keys))
	for _, k := range p.keys {
		values[k] = info.Metadata.Get(k)
	}
	return p.startShardLocked(key, values), nil
}

// shardKey encodes the values of the metadata keys unambiguously: a key
// that is unset and a key set to "" are different combinations, as in the
// collector's batch processor.
func (p *batchProcessor) shardKey(md client.Metadata) string {
	var b []byte
	for _, k := range p.keys {
		vs := md.Get(k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return string(b)
}

// startShardLocked creates the shard of one metadata combination and starts
// its exporter. The exported context carries just these metadata values.
func (p *batchProcessor) startShardLocked(key string, values map[string][]string) *shard {
	ctx := client.NewContext(p.exportCtx, client.Info{Metadata: client.NewMetadata(values)})
	s := newShard(p, ctx)
	p.shards[key] = s
	p.exporters.Add(1)
	go func() {
		defer p.exporters.Done()
		s.run()
	}()
	return s
}

// Shutdown refuses new data, exports everything accepted and waits for it
// until ctx ends or, when ctx has no deadline, shutdownBound has passed.
// Then it cancels the exports still running: a batch whose export fails
// that way is reported as failed to its wait_for_result callers, not as
// delivered, and Shutdown returns an error saying how much was not exported.
func (p *batchProcessor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	shards := make([]*shard, 0, len(p.shards))
	for _, s := range p.shards {
		shards = append(shards, s)
	}
	p.mu.Unlock()
	for _, s := range shards {
		s.close()
	}
	done := make(chan struct{})
	go func() {
		p.exporters.Wait()
		close(done)
	}()
	var bound <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(p.shutdownBound)
		defer t.Stop()
		bound = t.C
	}
	var why error
	select {
	case <-done:
		p.cancelExports()
		p.tel.shutdown()
		return nil
	case <-ctx.Done():
		why = ctx.Err()
	case <-bound:
		why = fmt.Errorf("exports still running after %s", p.shutdownBound)
	}
	points, _ := p.held()
	p.cancelExports()
	grace := time.NewTimer(exportGrace)
	defer grace.Stop()
	select {
	case <-done:
		p.tel.shutdown()
	case <-grace.C:
	}
	return fmt.Errorf("batch processor: shutdown gave up with %d data points not yet exported (cancelled): %w", points, why)
}

// held sums the data points held and counts the shards, for telemetry.
func (p *batchProcessor) held() (points, shards int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, s := range p.shards {
		points += s.heldPoints()
	}
	return points, len(p.shards)
}
