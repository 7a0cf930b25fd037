package remotewriteexporter

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/diskqueue"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/statusapi"
)

// endpointStat is what the status page shows of an endpoint beyond its
// queues: requests in flight, the last failure and the send rate. The
// senders update it once per request, never per sample.
type endpointStat struct {
	inFlight atomic.Int64

	mu        sync.Mutex
	failing   bool
	lastErr   string
	lastErrAt time.Time
	sent      int64
	rate      rateWindow
}

// failed records a failure that is retried: the endpoint is failing until
// a request goes through.
func (s *endpointStat) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = true
	s.setErr(err)
}

// rejected records a failure that drops the request: the last error, but
// not a failing endpoint (the next request may well go through).
func (s *endpointStat) rejected(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setErr(err)
}

func (s *endpointStat) setErr(err error) {
	s.lastErr, s.lastErrAt = "unknown error", time.Now()
	if err != nil {
		s.lastErr = redact.Text(err.Error())
	}
}

func (s *endpointStat) delivered(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = false
	s.sent += n
	s.rate.add(time.Now(), n)
}

// rateWindow counts in 10 s buckets over the last minute, so the rate
// neither jumps with each request nor lags for long.
type rateWindow struct {
	buckets [rateBuckets]int64
	start   [rateBuckets]int64 // bucket start, Unix seconds / rateBucket
}

const (
	rateBuckets = 7 // six whole buckets and the one filling
	rateBucket  = 10 * time.Second
)

func (w *rateWindow) add(now time.Time, n int64) {
	b := now.UnixNano() / int64(rateBucket)
	i := b % rateBuckets
	if w.start[i] != b {
		w.start[i], w.buckets[i] = b, 0
	}
	w.buckets[i] += n
}

// perSecond is the rate over the six whole buckets before now's.
func (w *rateWindow) perSecond(now time.Time) float64 {
	cur := now.UnixNano() / int64(rateBucket)
	var sum int64
	for i := range w.buckets {
		if b := w.start[i]; b < cur && b >= cur-(rateBuckets-1) {
			sum += w.buckets[i]
		}
	}
	return float64(sum) / ((rateBuckets - 1) * rateBucket).Seconds()
}

// Endpoints is the exporter's statusapi.QueueSource.
func (e *rwExporter) Endpoints() []statusapi.Endpoint {
	e.mu.RLock()
	defer e.mu.RUnlock()
	now := time.Now()
	out := make([]statusapi.Endpoint, 0, len(e.endpoints))
	for _, ep := range append(e.endpoints[:len(e.endpoints):len(e.endpoints)], e.tenantEndpoints()...) {
		st := statusapi.Endpoint{URL: ep.name, Shards: len(ep.shards), QueueMax: e.cfg.Queue.MaxSize, InFlight: ep.stat.inFlight.Load()}
		var oldest time.Time
		queues := append([]*diskqueue.Queue(nil), ep.shards...)
		for _, l := range ep.old {
			queues = append(queues, l.queues...)
		}
		for _, q := range queues {
			s := q.Stats()
			st.QueueBytes += s.PendingBytes
			st.DiskBytes += s.Bytes
			st.QueueRecords += s.Records
			if !s.Oldest.IsZero() && (oldest.IsZero() || s.Oldest.Before(oldest)) {
				oldest = s.Oldest
			}
		}
		if !oldest.IsZero() {
			st.OldestAge = now.Sub(oldest).Seconds()
		}
		ep.stat.mu.Lock()
		st.Failing, st.LastError, st.LastErrorTime = ep.stat.failing, ep.stat.lastErr, ep.stat.lastErrAt
		st.Sent, st.SendRate = ep.stat.sent, ep.stat.rate.perSecond(now)
		ep.stat.mu.Unlock()
		out = append(out, st)
	}
	return out
}
