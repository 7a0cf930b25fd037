package remotewriteexporter

import (
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/sluicehq/sluice/internal/diskqueue"
)

// endpoint is one backend (or gateway) the exporter sends to: its queues,
// one per shard, and what it has learnt of the backend.
type endpoint struct {
	url    string
	seed   uint64 // hash of url: its place in rendezvous hashing
	dir    string
	shards []*diskqueue.Queue
	old    []*diskqueue.Queue // an earlier shard layout, draining first
	health health
	v1Only atomic.Bool // the backend refused 2.0
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
