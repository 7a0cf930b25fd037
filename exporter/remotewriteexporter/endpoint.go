package remotewriteexporter

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/diskqueue"
)

// endpoint is one backend (or gateway) the exporter sends to: its queues,
// one per shard, and what it has learnt of the backend.
type endpoint struct {
	url    string
	name   string // url without its secrets, for logs
	seed   uint64 // hash of url: its place in rendezvous hashing
	dir    string
	shards []*diskqueue.Queue
	old    []*layout // earlier shard layouts still holding data, oldest first
	health health
	gate   *gate        // the backoff every shard of the endpoint shares
	stat   endpointStat // for the status page

	// v1Until (Unix ns) is when 2.0 is tried again after the backend
	// refused it: a backend upgraded to 2.0 gets 2.0 again without a
	// restart. 0: 2.0 (as configured). Shared with the endpoint's tenant
	// copies: what the backend speaks does not depend on the tenant.
	v1Until *atomic.Int64
	recheck time.Duration // how long a fallback to 1.0 lasts
	// headers are sent with every request: a tenant's (tenants.go); nil
	// for the exporter's own endpoints.
	headers http.Header
}

// layout is an earlier shard count's queues of an endpoint, drained before
// the current layout sends so that no series goes out of order.
type layout struct {
	count  int
	dir    string
	queues []*diskqueue.Queue
}

// oldest is the append time of the oldest record the layout holds; zero
// when it is empty (it sorts first and is removed at once).
func (l *layout) oldest() time.Time {
	var t time.Time
	for _, q := range l.queues {
		if o := q.Stats().Oldest; !o.IsZero() && (t.IsZero() || o.Before(t)) {
			t = o
		}
	}
	return t
}

// isV1 says whether 2.0 requests are sent as 1.0 now.
func (ep *endpoint) isV1() bool {
	u := ep.v1Until.Load()
	return u != 0 && time.Now().UnixNano() < u
}

// fellBack records that the backend refused 2.0: 1.0 until the recheck.
func (ep *endpoint) fellBack(ctx context.Context, e *rwExporter, status int) {
	if ep.isV1() {
		return // another shard got there first
	}
	ep.v1Until.Store(time.Now().Add(ep.recheck).UnixNano())
	e.tel.fallbacks.Add(ctx, 1, e.tel.with())
	e.logger.Warn("The backend does not take remote write 2.0; sending 1.0, and trying 2.0 again after the recheck interval",
		zap.Int("status", status), zap.String("endpoint", ep.name), zap.Duration("recheck", ep.recheck))
}

// endpointOf picks the endpoint of a series with balance: series, by
// rendezvous hashing: each endpoint scores the series and the highest wins.
// A series always lands on the same endpoint, and adding or removing one
// moves only the series it wins or held, never others between the rest.
func (e *rwExporter) endpointOf(h uint64) int {
	if len(e.endpoints) == 1 {
		return 0
	}
	best, bestScore := 0, uint64(0)
	for i, ep := range e.endpoints {
		if s := mix(h ^ ep.seed); i == 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// mix is splitmix64's finalizer: every input bit moves every output bit, so
// the scores of one series on different endpoints are independent.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// endpointDir names the queue directory of an endpoint among several: its
// host and path made safe, and a hash of the whole URL so that two
// endpoints never share one.
func endpointDir(raw string) string {
	name := raw
	if u, err := url.Parse(raw); err == nil {
		name = u.Host + u.Path
	}
	name = strings.Trim(unsafePath.ReplaceAllString(name, "_"), "_")
	if len(name) > 60 {
		name = name[:60]
	}
	return fmt.Sprintf("endpoint-%s-%08x", name, uint32(xxhash.Sum64String(raw)))
}
