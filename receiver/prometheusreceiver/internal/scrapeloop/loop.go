package scrapeloop

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
)

// body is a scrape's exposition as read, with its content type.
type body struct {
	body        []byte
	contentType string
}

// packedBody is the body of the last append pass, kept between scrapes for
// the stale markers of the next one, s2 block-compressed: a text exposition
// packs to about a fifth of its size, and it is unpacked only when a marker
// is due.
type packedBody struct {
	packed      []byte
	size        int // unpacked
	contentType string
}

// loop scrapes one target every interval until stopped.
type loop struct {
	target     *scrape.Target
	appendable storage.AppendableV2
	log        *slog.Logger
	fetch      *fetcher
	buffers    *bodyBuffers
	lastSize   int // of the last body, to size the next buffer

	interval, timeout time.Duration
	offsetSeed        uint64
	targetHash        uint64 // the target's identity, as Prometheus hashes it

	honorTimestamps          bool
	trackTimestampsStaleness bool
	sampleLimit, bucketLimit int
	maxSchema                int32
	parseST                  bool
	extraMetrics             bool
	parserOpts               textparse.ParserOptions
	labels                   labeler
	report                   reportSeries

	// Between scrapes: the compact series state, the metadata, and the
	// body of the last append pass (where stale markers find their labels).
	state      seriesState
	successful int
	meta       *metaStore
	iter       uint64
	prev       packedBody
	exemplars  []exemplar.Exemplar
	series     atomic.Int64 // series appended by the last scrape, for Status

	ctx       context.Context // ends with stop
	cancel    context.CancelFunc
	parentCtx context.Context // ends when the manager stops: no more writes
	appCtx    context.Context // parentCtx naming the target, for the appender (scrape.TargetFromContext)
	stopped   chan struct{}

	forcedMu            sync.Mutex
	forcedErr           error
	noEndOfRunStaleness atomic.Bool

	gate  Gate        // nil: every scrape is ours (gate.go)
	owned atomic.Bool // whether the gate gave us the last slot
}

// targetHash identifies a target as Prometheus does (all its labels, the
// reserved ones too, and its URL): the key of the pool's loops and the seed
// of its offset.
func targetHash(all labels.Labels, url string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%016d", all.Hash())
	h.Write([]byte(url))
	return h.Sum64()
}

// offset is the wait before the first scrape: a fixed point in the interval
// given by the target's hash and the scraper's seed, so a target is scraped
// at the same phase after a restart and targets spread over the interval
// (the idea of Prometheus' Target.offset; same hash, same phase).
func (l *loop) offset() time.Duration {
	iv := int64(l.interval)
	now := time.Now().UnixNano()
	next := iv - now%iv + int64((l.targetHash^l.offsetSeed)%uint64(iv))
	if next > iv {
		next -= iv
	}
	return time.Duration(next)
}

func (l *loop) setForcedError(err error) {
	l.forcedMu.Lock()
	l.forcedErr = err
	l.forcedMu.Unlock()
}

func (l *loop) forced() error {
	l.forcedMu.Lock()
	defer l.forcedMu.Unlock()
	return l.forcedErr
}

// stop ends scraping and waits until no scrape is running; stale markers
// for the target follow two intervals later unless the manager stops first.
func (l *loop) stop() {
	l.cancel()
	<-l.stopped
}

func (l *loop) run() {
	var last time.Time
	ticker := time.NewTicker(l.interval)
	defer func() {
		close(l.stopped)
		if l.parentCtx.Err() == nil && !l.noEndOfRunStaleness.Load() {
			l.endOfRunStaleness(last, ticker)
		}
		ticker.Stop()
	}()
	select {
	case <-time.After(l.offset()):
	case <-l.ctx.Done():
		return
	}
	ticker.Reset(l.interval)
	aligned := time.Now().Round(0)
	for {
		select {
		case <-l.ctx.Done():
			return
		default:
		}
		// Scrape times snap to the ticker's phase when the timer fired a
		// little late (Prometheus' timestamp alignment: smaller TSDB chunks
		// there, equal spacing for every reader here).
		now := time.Now().Round(0)
		if scrape.AlignScrapeTimestamps {
			tolerance := min(l.interval/100, scrape.ScrapeTimestampTolerance)
			for now.Sub(aligned) >= l.interval {
				aligned = aligned.Add(l.interval)
			}
			if now.Sub(aligned) <= tolerance {
				now = aligned
			}
		}
		if l.gated(now) {
			last = time.Time{} // not ours: no end-of-run staleness either
		} else {
			last = l.scrapeAndReport(now)
		}
		select {
		case <-l.ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// scrapeAndReport scrapes once and sends the scrape, its stale markers and
// report series as one batch (one Commit); it returns when it started.
func (l *loop) scrapeAndReport(appendTime time.Time) time.Time {
	start := time.Now()
	defTime := appendTime.UnixMilli()
	app := l.appendable.AppenderV2(l.appCtx)
	var (
		res       passResult
		scrapeErr error
		bytesRead int
		cur       body
	)
	if scrapeErr = l.forced(); scrapeErr == nil {
		cur, bytesRead, scrapeErr = l.get()
	}
	if scrapeErr == nil {
		var appErr error
		res, appErr = l.appendBody(app, cur.body, cur.contentType, defTime)
		if appErr != nil {
			// Nothing of a failed pass is kept but its stale markers.
			l.log.Debug("Append failed", "err", appErr)
			_ = app.Rollback()
			app = l.appendable.AppenderV2(l.appCtx)
			scrapeErr = appErr
		}
		l.staleMarkers(app, defTime)
		l.state.done(appErr == nil, &l.successful)
		if appErr == nil {
			l.meta.flush(l.iter)
		}
		l.keep(cur.body, cur.contentType)
	} else {
		l.log.Debug("Scrape failed", "err", scrapeErr)
		l.staleMarkers(app, defTime)
		l.state.forget()
		l.keep(nil, "")
		if errors.Is(scrapeErr, errBodySizeLimit) {
			bytesRead = -1
		}
	}
	l.iter++
	l.series.Store(int64(l.state.count(fTracked)))
	dur := time.Since(start)
	l.target.Report(appendTime, dur, scrapeErr)
	l.report.add(app, defTime, dur, res, bytesRead, scrapeErr, l)
	if err := app.Commit(); err != nil {
		l.log.Error("Scrape commit failed", "err", err)
	}
	// Only now: until the commit, what was appended may still point into it.
	l.buffers.put(cur.body)
	return start
}

// get scrapes the target into a buffer from the pool.
func (l *loop) get() (body, int, error) {
	ctx, cancel := context.WithTimeout(l.parentCtx, l.timeout)
	defer cancel()
	b, ctype, err := l.fetch.fetch(ctx, l.buffers.get(l.lastSize))
	if err != nil {
		l.buffers.put(b)
		return body{}, 0, err
	}
	if len(b) > 0 {
		l.lastSize = len(b)
	}
	return body{body: b, contentType: ctype}, len(b), nil
}

// keep makes b (nil: none) the body the next stale markers are read from,
// packed into the previous one's room.
func (l *loop) keep(b []byte, contentType string) {
	if len(b) == 0 {
		l.prev = packedBody{packed: l.prev.packed[:0]}
		return
	}
	// s2 writes into dst only if it has room for the worst case; the packed
	// form is then copied out at its own size, so what stays between
	// scrapes is the packed size.
	scratch := l.buffers.get(s2.MaxEncodedLen(len(b)))
	enc := s2.Encode(scratch[:cap(scratch)], b)
	l.prev = packedBody{packed: append(l.prev.packed[:0], enc...), size: len(b), contentType: contentType}
	l.buffers.put(scratch)
}

// unpackPrev returns the previous body, unpacked into a buffer of the pool
// (hand it back with buffers.put), or nil when there is none.
func (l *loop) unpackPrev() []byte {
	if l.prev.size == 0 {
		return nil
	}
	buf := l.buffers.get(l.prev.size)
	out, err := s2.Decode(buf[:cap(buf)], l.prev.packed)
	if err != nil { // cannot happen: it was packed here
		l.log.Error("Unpacking the previous scrape failed; its stale markers are not written", "err", err)
		l.buffers.put(buf)
		return nil
	}
	return out
}

// endOfRunStaleness writes stale markers for every series of a target that
// went away, as Prometheus does: at the time its next scrape would have
// been, once two intervals have passed (and a tenth), so that a target
// that came back under a new loop has already written newer samples.
func (l *loop) endOfRunStaleness(last time.Time, ticker *time.Ticker) {
	if last.IsZero() {
		return
	}
	var staleTime time.Time
	for i := 0; i < 2; i++ {
		select {
		case <-l.parentCtx.Done():
			return
		case <-ticker.C:
			if i == 0 {
				staleTime = time.Now()
			}
		}
	}
	select {
	case <-l.parentCtx.Done():
		return
	case <-time.After(l.interval / 10):
	}
	if l.noEndOfRunStaleness.Load() {
		return
	}
	app := l.appendable.AppenderV2(l.appCtx)
	ts := staleTime.UnixMilli()
	l.staleMarkers(app, ts)
	l.state.forget()
	l.keep(nil, "")
	l.report.stale(app, ts, l.extraMetrics)
	if err := app.Commit(); err != nil {
		l.log.Warn("Stale commit failed", "err", err)
	}
}
