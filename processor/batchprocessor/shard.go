package batchprocessor

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// shard is one batch stream: the data of one combination of metadata
// values. Callers append to pending and cut full batches onto ready; one
// goroutine (run) exports ready batches one at a time, in order, and cuts
// pending on timeout. The data points a shard holds (pending, ready and in
// the export under way) never exceed max_pending_data_points, except for a
// single request larger than that, which is let in alone.
//
// Offsets: the shard numbers the data points it accepts 0, 1, 2, ... in
// order; pending holds [cutAt, cutAt+pendingCount). A wait_for_result caller
// knows its range and is attached to every batch that overlaps it.
type shard struct {
	p         *batchProcessor
	exportCtx context.Context
	wake      chan struct{} // tells run there is work; capacity 1

	mu           sync.Mutex
	pending      pmetric.Metrics
	pendingCount int
	cutAt        int64
	waiting      fifo[*result] // wait_for_result callers with points in pending, in order
	ready        fifo[*batch]  // cut, not yet exported, in order
	held         int           // points accepted and not yet exported, plus reservations
	blocked      []*admission
	lastCut      time.Time
	closing      bool
}

// batch is a cut batch and the callers waiting for its result.
type batch struct {
	md      pmetric.Metrics
	count   int
	trigger string
	shares  []share
}

// share is how many of a caller's data points a batch carries.
type share struct {
	r      *result
	points int
}

// result collects the outcome of one wait_for_result caller's data. Once
// created, left and errs are touched only by the shard's run goroutine;
// the caller reads errs after done is closed.
type result struct {
	start, end int64 // the caller's offsets [start, end)
	left       int   // points not yet exported
	errs       []error
	done       chan struct{}
}

// admission is a caller waiting for room in the shard, first come first in.
type admission struct {
	n        int
	ready    chan struct{} // closed when admitted or refused
	admitted bool          // room for n is reserved in held
	err      error         // refused (shutdown)
}

func newShard(p *batchProcessor, exportCtx context.Context) *shard {
	return &shard{p: p, exportCtx: exportCtx, wake: make(chan struct{}, 1), pending: pmetric.NewMetrics()}
}

func (s *shard) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shard) heldPoints() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// consume takes md's n data points into pending; see ConsumeMetrics.
func (s *shard) consume(ctx context.Context, md pmetric.Metrics, n int) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errShutdown
	}
	if n == 0 {
		// Nothing a backend could store; the collector's batch processor
		// drops such requests too.
		s.mu.Unlock()
		return nil
	}
	if err := s.admit(ctx, n); err != nil {
		s.mu.Unlock()
		return err
	}
	var r *result
	if s.p.waitForResult {
		start := s.cutAt + int64(s.pendingCount)
		r = &result{start: start, end: start + int64(n), left: n, done: make(chan struct{})}
		s.waiting.push(r)
	}
	md.ResourceMetrics().MoveAndAppendTo(s.pending.ResourceMetrics())
	s.pendingCount += n
	// With timeout 0 run cuts as soon as it is idle; when closing (a caller
	// admitted before Shutdown) it flushes at once.
	cut := s.p.timeout == 0 || s.closing
	for s.pendingCount > 0 && s.pendingCount >= s.p.sendBatchSize {
		s.cutLocked(triggerSize)
		cut = true
	}
	s.mu.Unlock()
	if cut {
		s.signal()
	}
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		return errors.Join(r.errs...)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// admit reserves room for n points, waiting (with s.mu released) behind
// earlier waiters while the shard is full. It returns with s.mu held.
func (s *shard) admit(ctx context.Context, n int) error {
	if len(s.blocked) == 0 && s.fits(n) {
		s.held += n
		return nil
	}
	a := &admission{n: n, ready: make(chan struct{})}
	s.blocked = append(s.blocked, a)
	s.mu.Unlock()
	select {
	case <-a.ready:
	case <-ctx.Done():
	}
	s.mu.Lock()
	switch {
	case a.err != nil:
		return a.err
	case a.admitted && ctx.Err() == nil:
		return nil
	case a.admitted:
		// Admitted as the context ended: give the room back, so that an
		// error always means the data was not taken.
		s.held -= n
	default:
		s.blocked = slices.DeleteFunc(s.blocked, func(b *admission) bool { return b == a })
	}
	s.admitWaitersLocked()
	s.signal() // run may be waiting for held to reach 0 to finish a shutdown
	return ctx.Err()
}

// fits tells whether n more points stay within the bound; a request larger
// than the bound fits an empty shard.
func (s *shard) fits(n int) bool {
	return s.held == 0 || s.held+n <= s.p.maxPending
}

// admitWaitersLocked lets blocked callers in, in arrival order, while they fit.
func (s *shard) admitWaitersLocked() {
	for len(s.blocked) > 0 && s.fits(s.blocked[0].n) {
		a := s.blocked[0]
		s.blocked[0] = nil
		s.blocked = s.blocked[1:]
		s.held += a.n
		a.admitted = true
		close(a.ready)
	}
}

// cutLocked moves the oldest pending points, at most send_batch_max_size,
// into a batch at the end of ready, with the callers it carries points of.
func (s *shard) cutLocked(trigger string) {
	k := s.pendingCount
	if limit := s.p.maxBatchSize; limit > 0 && k > limit {
		k = limit
	}
	b := &batch{count: k, trigger: trigger}
	if k == s.pendingCount {
		b.md = s.pending
		s.pending = pmetric.NewMetrics()
		// Room for as many resources as this batch had: the next one
		// fills it without growing the slice step by step.
		s.pending.ResourceMetrics().EnsureCapacity(b.md.ResourceMetrics().Len())
	} else {
		b.md = splitMetrics(s.pending, k)
	}
	start, end := s.cutAt, s.cutAt+int64(k)
	for s.waiting.len() > 0 {
		r := s.waiting.peek()
		b.shares = append(b.shares, share{r: r, points: int(min(r.end, end) - max(r.start, start))})
		if r.end > end {
			break // the rest of its points are still pending
		}
		s.waiting.pop()
	}
	s.cutAt = end
	s.pendingCount -= k
	s.ready.push(b)
	s.lastCut = time.Now()
}

// run exports the shard's batches, one at a time and in order, until the
// shard is closed and holds nothing.
func (s *shard) run() {
	var tick <-chan time.Time
	var timer *time.Timer
	if s.p.timeout > 0 {
		timer = time.NewTimer(s.p.timeout)
		defer timer.Stop()
		tick = timer.C
	}
	for {
		b, finished := s.next()
		if finished {
			return
		}
		if b != nil {
			s.export(b)
			continue
		}
		select {
		case <-s.wake:
		case <-tick:
			s.onTimer(timer)
		}
	}
}

// next pops the oldest ready batch. With timeout 0, or when closing, it
// first cuts whatever is pending. finished is true once the shard is
// closing and holds nothing (not even an admitted caller about to append).
func (s *shard) next() (b *batch, finished bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready.len() == 0 && s.pendingCount > 0 {
		switch {
		case s.closing:
			s.cutLocked(triggerShutdown)
		case s.p.timeout == 0:
			s.cutLocked(triggerTimeout)
		}
	}
	if s.ready.len() == 0 {
		return nil, s.closing && s.held == 0
	}
	return s.ready.pop(), false
}

// onTimer sends what is pending once timeout has passed since the last
// cut, as the collector's batch processor does; a size-triggered cut in the
// meantime moves the deadline.
func (s *shard) onTimer(timer *time.Timer) {
	s.mu.Lock()
	if wait := s.p.timeout - time.Since(s.lastCut); wait > 0 {
		s.mu.Unlock()
		timer.Reset(wait)
		return
	}
	for s.pendingCount > 0 {
		s.cutLocked(triggerTimeout)
	}
	s.lastCut = time.Now()
	s.mu.Unlock()
	timer.Reset(s.p.timeout)
}

// export hands one batch to the next component, then frees its room and
// tells its wait_for_result callers.
func (s *shard) export(b *batch) {
	err := s.p.next.ConsumeMetrics(s.exportCtx, b.md)
	s.p.tel.sent(b.count, b.trigger, err)
	if err != nil && !s.p.waitForResult {
		s.p.logger.Warn("Next component refused a batch; its data is lost", zap.Int("data_points", b.count), zap.Error(err))
	}
	s.mu.Lock()
	s.held -= b.count
	s.admitWaitersLocked()
	s.mu.Unlock()
	for _, sh := range b.shares {
		sh.r.finish(sh.points, err)
	}
}

// finish records the export of points of the caller's data.
func (r *result) finish(points int, err error) {
	if err != nil && !containsErr(r.errs, err) {
		r.errs = append(r.errs, err)
	}
	r.left -= points
	if r.left == 0 {
		close(r.done)
	}
}

// containsErr compares with == only errors whose type allows it (== on an
// uncomparable dynamic type panics).
func containsErr(errs []error, err error) bool {
	if !reflect.TypeOf(err).Comparable() {
		return false
	}
	for _, e := range errs {
		if reflect.TypeOf(e) == reflect.TypeOf(err) && e == err {
			return true
		}
	}
	return false
}

// close refuses new data and callers still waiting for room; run exports
// what was accepted and returns.
func (s *shard) close() {
	s.mu.Lock()
	s.closing = true
	for _, a := range s.blocked {
		a.err = errShutdown
		close(a.ready)
	}
	s.blocked = nil
	s.mu.Unlock()
	s.signal()
}
