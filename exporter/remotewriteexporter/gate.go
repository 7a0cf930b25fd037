package remotewriteexporter

import (
	"context"
	"sync"
	"time"
)

// gate is the backoff an endpoint's shards share. The remote-write spec says
// a sender MUST back off on retryable errors; with one backoff per shard a
// failing backend would see every shard retry on its own schedule, their
// attempts interleaved, so the retry rate grew with the shard count. Here,
// once a request fails, the whole endpoint waits, and while it is failing
// only one request at a time (a probe, from whichever shard gets there
// first) goes out; when the probe is taken, every shard sends again. Each
// shard still sends its own records in order: the gate only decides when.
type gate struct {
	mu      sync.Mutex
	tries   int       // failed rounds in a row; 0 while the endpoint is healthy
	until   time.Time // no request starts before then
	probing bool      // while failing: the probe is in flight
	changed chan struct{}
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

// broadcastLocked wakes the shards waiting in acquire; call with mu held.
func (g *gate) broadcastLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// acquire waits until a request may start. probe is true for the one
// request let through while the endpoint is failing; its outcome must be
// reported with succeeded, failed or abandoned.
func (g *gate) acquire(ctx context.Context) (probe bool, err error) {
	for {
		g.mu.Lock()
		wait := time.Until(g.until)
		ch := g.changed
		switch {
		case wait <= 0 && g.tries == 0:
			g.mu.Unlock()
			return false, nil
		case wait <= 0 && !g.probing:
			g.probing = true
			g.mu.Unlock()
			return true, nil
		}
		g.mu.Unlock()
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-ch:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return false, err
		}
	}
}

// succeeded: the backend answered (taken, or refused for good): the
// endpoint is healthy again. A wait already set stays (it is short and
// another shard's failure set it).
func (g *gate) succeeded(probe bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	if g.tries != 0 || probe {
		g.tries = 0
		g.broadcastLocked()
	}
}

// failed: the request got a retryable answer. A probe's failure, or the
// first failure while healthy, is one more failed round and the endpoint
// waits step(tries) from now; the failures of requests that were already
// in flight when the first one failed are the same round and add nothing.
// floor (Retry-After, or the auth-error interval) applies in every case:
// the backend said so.
func (g *gate) failed(probe bool, step func(tries int) time.Duration, floor time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if probe {
		g.probing = false
	}
	if probe || g.tries == 0 {
		g.tries++
		if u := now.Add(step(g.tries)); u.After(g.until) {
			g.until = u
		}
	}
	if u := now.Add(floor); floor > 0 && u.After(g.until) {
		g.until = u
	}
	g.broadcastLocked()
}

// abandoned: the request ended without an answer worth judging (shutdown).
func (g *gate) abandoned(probe bool) {
	if !probe {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.probing = false
	g.broadcastLocked()
}
