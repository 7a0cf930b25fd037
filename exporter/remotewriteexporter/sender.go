package remotewriteexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/diskqueue"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/rwproto"
)

// Headers of the remote-write protocol.
const (
	headerVersion           = "X-Prometheus-Remote-Write-Version"
	headerSamplesWritten    = rwproto.HeaderSamplesWritten
	headerHistogramsWritten = rwproto.HeaderHistogramsWritten
	headerExemplarsWritten  = rwproto.HeaderExemplarsWritten
)

// outcome is what became of one attempt.
type outcome int

const (
	delivered outcome = iota
	retry             // 5xx, 429, network error, timeout: try again after a backoff
	rejected          // another 4xx, or a 3xx: drop, counted by status code
	authRetry         // 401 or 403 with retry_on_auth_error: try again after its interval
	fallBack          // the backend does not take 2.0: resend as 1.0
)

// attempt is the result of one HTTP request.
type attempt struct {
	outcome    outcome
	status     int           // 0 for a network error
	retryAfter time.Duration // from Retry-After, when given
	written    *recordHeader // 2.0: what the written headers said, when present
	err        error
}

// reason names the attempt's failure in telemetry: http_<code>, or
// network_error for no answer at all.
func (a attempt) reason() string {
	if a.status == 0 {
		return "network_error"
	}
	return "http_" + strconv.Itoa(a.status)
}

// sendLoop delivers the records of one shard's queue in order, one request
// in flight, until ctx ends or the queue is closed. With untilEmpty (an
// earlier shard layout draining before the current one sends) it also
// stops once nothing is left to read, and then empty is true. A queue that
// fails to read or acknowledge (a disk error) is retried with backoff,
// logged and reported in the component's status: the sender never gives up
// on its shard while the exporter runs.
func (e *rwExporter) sendLoop(ctx context.Context, ep *endpoint, q *diskqueue.Queue, shard int, untilEmpty bool) (empty bool) {
	failures := 0
	retryQueue := func(op string, err error) bool {
		if ctx.Err() != nil || errors.Is(err, diskqueue.ErrClosed) {
			return false
		}
		e.tel.queueErrors.Add(ctx, 1, e.tel.with(attribute.String("op", op)))
		e.queueHealth.failed(ep.name, shard, op, err, failures == 0)
		wait := e.backoff(failures)
		failures++
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
			return true
		}
	}
	worked := func() {
		if failures > 0 {
			failures = 0
			e.queueHealth.recovered(ep.name, shard)
		}
	}
	// Failures the queue survives on its own (a failed fsync or rotation, a
	// segment removed behind its back) are logged here, at most every 10 s.
	var ioSeen int64
	var ioLogged time.Time
	ioCheck := func() {
		n, last := q.IOErrors()
		if n > ioSeen && time.Since(ioLogged) >= 10*time.Second {
			e.logger.Warn("Disk queue I/O trouble; the queue went on", zap.String("endpoint", ep.name),
				zap.Int("shard", shard), zap.Int64("errors", n-ioSeen), errField(last))
			ioSeen, ioLogged = n, time.Now()
		}
	}
	for {
		if untilEmpty && q.Stats().Records == 0 {
			return true
		}
		rec, err := e.next(ctx, q, untilEmpty)
		if errors.Is(err, errNothingLeft) {
			return true
		}
		if err != nil {
			if !retryQueue("read", err) {
				return false
			}
			continue
		}
		if !e.deliver(ctx, ep, rec.Payload) {
			return false // not acknowledged: sent again after a restart
		}
		for {
			if err = q.Ack(rec.End); err == nil {
				break
			}
			if !retryQueue("acknowledge", err) {
				return false
			}
		}
		worked()
		ioCheck()
	}
}

// drainIdle is how long a draining sender waits for a record before it
// takes the queue as empty: nothing appends to an earlier layout, so a
// Next that waits has nothing left to give.
const drainIdle = time.Second

var errNothingLeft = errors.New("nothing left to read")

func (e *rwExporter) next(ctx context.Context, q *diskqueue.Queue, untilEmpty bool) (diskqueue.Record, error) {
	if !untilEmpty {
		return q.Next(ctx)
	}
	nctx, cancel := context.WithTimeout(ctx, drainIdle)
	defer cancel()
	rec, err := q.Next(nctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return rec, errNothingLeft
	}
	return rec, err
}

// deliver sends one queued request until the backend takes it or it is
// given up (dropped and counted). It returns false only when ctx ended
// first, and then the record stays in the queue.
func (e *rwExporter) deliver(ctx context.Context, ep *endpoint, payload []byte) bool {
	h, body, err := parseRecord(payload)
	if err != nil {
		e.tel.drop(ctx, h, reasonUndecodable)
		e.logger.Error("Dropping a queued request this version cannot read", errField(err))
		return true
	}
	for try := 0; ; try++ {
		if e.cfg.MaxSampleAge > 0 {
			cutoff := time.Now().Add(-e.cfg.MaxSampleAge).UnixMilli()
			if h.maxT < cutoff {
				e.tel.drop(ctx, h, reasonTooOld)
				return true
			}
			if h.minT < cutoff {
				var ok bool
				if h, body, ok = e.rewrite(ctx, h, body, false, cutoff); !ok {
					return true
				}
			}
		}
		if h.message == 2 && ep.isV1() {
			var ok bool
			if h, body, ok = e.rewrite(ctx, h, body, true, 0); !ok {
				return true
			}
		}
		probe, err := ep.gate.acquire(ctx)
		if err != nil {
			return false
		}
		if try > 0 {
			e.tel.count(ctx, e.tel.retried, h)
		}
		ep.stat.inFlight.Add(1)
		a := e.send(ctx, ep, h, body)
		ep.stat.inFlight.Add(-1)
		if a.outcome == retry && ctx.Err() != nil {
			ep.gate.abandoned(probe) // shutting down: not the backend's failure
			return false
		}
		switch a.outcome {
		case delivered:
			ep.gate.succeeded(probe)
			e.delivered(ctx, ep, h, a)
			return true
		case fallBack:
			ep.gate.succeeded(probe)
			ep.fellBack(ctx, e, a.status)
		case rejected:
			ep.gate.succeeded(probe)
			e.tel.drop(ctx, h, a.reason())
			ep.health.rejected(a.status, a.err)
			ep.stat.rejected(a.err)
			return true
		case retry:
			e.tel.count(ctx, e.tel.failed, h, attribute.String("reason", a.reason()))
			ep.health.failing(a.status, a.err)
			ep.stat.failed(a.err)
			ep.gate.failed(probe, func(tries int) time.Duration { return e.backoff(tries - 1) }, a.retryAfter)
		case authRetry:
			e.tel.count(ctx, e.tel.failed, h, attribute.String("reason", a.reason()))
			every := e.cfg.RetryOnAuthError.Interval
			ep.health.authRefused(a.status, a.err, every)
			ep.stat.failed(a.err)
			ep.gate.failed(probe, func(int) time.Duration { return every }, max(every, a.retryAfter))
		}
	}
}

// delivered counts what the backend took, and what its written headers
// say it did not store.
func (e *rwExporter) delivered(ctx context.Context, ep *endpoint, h recordHeader, a attempt) {
	if a.written != nil {
		w := *a.written
		short := recordHeader{samples: h.samples - w.samples, histograms: h.histograms - w.histograms, exemplars: h.exemplars - w.exemplars}
		short.samples, short.histograms, short.exemplars = max(short.samples, 0), max(short.histograms, 0), max(short.exemplars, 0)
		if short.samples+short.histograms+short.exemplars > 0 {
			e.tel.drop(ctx, short, reasonNotWritten)
			e.logger.Warn("The backend answered 2xx but wrote less than it was sent",
				zap.Int64("samples_sent", h.samples), zap.Int64("samples_written", w.samples),
				zap.Int64("histograms_sent", h.histograms), zap.Int64("histograms_written", w.histograms))
		}
		h.samples, h.histograms, h.exemplars = h.samples-short.samples, h.histograms-short.histograms, h.exemplars-short.exemplars
	}
	e.tel.count(ctx, e.tel.sent, h)
	ep.health.ok()
	ep.stat.delivered(h.samples + h.histograms)
	if u := ep.v1Until.Load(); h.message == 2 && u != 0 && ep.v1Until.CompareAndSwap(u, 0) {
		e.logger.Info("The backend takes remote write 2.0 again", zap.String("endpoint", ep.name))
	}
}

// rewrite decodes a queued request to send it as 1.0 or without samples
// older than cutoff; ok is false when nothing is left to send.
func (e *rwExporter) rewrite(ctx context.Context, h recordHeader, body []byte, asV1 bool, cutoff int64) (recordHeader, []byte, bool) {
	d, err := decodeBody(h, body)
	if err == nil && asV1 && d.v2 != nil {
		d.v1, err = toV1(d.v2)
		d.v2 = nil
	}
	if err != nil {
		e.tel.drop(ctx, h, reasonUndecodable)
		e.logger.Error("Dropping a queued request that does not decode", errField(err))
		return h, nil, false
	}
	if cutoff > 0 {
		s, hi, ex := d.dropOlder(cutoff)
		e.tel.drop(ctx, recordHeader{samples: s, histograms: hi, exemplars: ex}, reasonTooOld)
	}
	nh, nb, err := d.encode()
	if err != nil {
		e.tel.drop(ctx, h, reasonUndecodable)
		e.logger.Error("Dropping a queued request that does not encode again", errField(err))
		return h, nil, false
	}
	if nh.samples+nh.histograms == 0 {
		return nh, nil, false
	}
	return nh, nb, true
}

// backoff is the wait before attempt try+1: exponential from
// initial_interval up to max_interval, with jitter over its upper half so
// that shards and replicas do not retry in lockstep.
func (e *rwExporter) backoff(try int) time.Duration {
	r := e.cfg.RetryOnFailure
	d := float64(r.InitialInterval)
	for i := 0; i < try && d < float64(r.MaxInterval); i++ {
		d *= r.Multiplier
	}
	d = min(d, float64(r.MaxInterval))
	return time.Duration(d/2 + rand.Float64()*d/2)
}

// send makes one request.
func (e *rwExporter) send(ctx context.Context, ep *endpoint, h recordHeader, body []byte) attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(body))
	if err != nil {
		return attempt{outcome: rejected, err: err}
	}
	req.Header.Set("Content-Encoding", "snappy")
	if h.message == 2 {
		req.Header.Set("Content-Type", "application/x-protobuf;proto="+MessageV2)
		req.Header.Set(headerVersion, "2.0.0")
	} else {
		req.Header.Set("Content-Type", "application/x-protobuf;proto="+MessageV1)
		req.Header.Set(headerVersion, "0.1.0")
	}
	req.Header.Set("User-Agent", e.userAgent)
	for name, values := range ep.headers { // a tenant's; validation keeps them off the ones above
		req.Header[name] = values
	}
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		e.tel.duration.Record(ctx, time.Since(start).Seconds(), e.tel.with(attribute.String("status", "error")))
		return attempt{outcome: retry, err: err}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	resp.Body.Close()
	e.tel.duration.Record(ctx, time.Since(start).Seconds(), e.tel.with(attribute.String("status", strconv.Itoa(resp.StatusCode))))
	a := attempt{status: resp.StatusCode}
	code := resp.StatusCode
	switch {
	case code/100 == 2:
		a.outcome = delivered
		if h.message == 2 {
			w, found := writtenHeaders(resp.Header)
			if !found && h.samples+h.histograms+h.exemplars > 0 {
				// The 2.0 specification: a receiver that took a 2.0 request
				// answers with the written headers. Without them this is
				// a 1.0 receiver that did not check the Content-Type, and
				// may have stored nothing: send it again as 1.0.
				a.outcome = fallBack
			} else if found {
				a.written = &w
			}
		}
	case code == http.StatusUnsupportedMediaType && h.message == 2:
		a.outcome = fallBack
	case code == http.StatusTooManyRequests || code/100 == 5:
		a.outcome = retry
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		a.err = fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(msg))
	case (code == http.StatusUnauthorized || code == http.StatusForbidden) && e.cfg.RetryOnAuthError.Enabled:
		a.outcome = authRetry
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		a.err = fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(msg))
	case code/100 == 3:
		// The client does not follow redirects (see noRedirects): followed,
		// a 302 or 303 turns the POST into a bodiless GET whose 200 would
		// count as delivered, and the credentials would go to another host.
		a.outcome = rejected
		a.err = fmt.Errorf("HTTP %d: the endpoint redirects (to %q); redirects are not followed: configure the final URL", code, redact.URL(resp.Header.Get("Location")))
	default:
		a.outcome = rejected
		a.err = fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(msg))
	}
	return a
}

// writtenHeaders reads the 2.0 written headers; found is false when none
// is present.
func writtenHeaders(hd http.Header) (recordHeader, bool) {
	var w recordHeader
	found := false
	for _, f := range []struct {
		name string
		dst  *int64
	}{{headerSamplesWritten, &w.samples}, {headerHistogramsWritten, &w.histograms}, {headerExemplarsWritten, &w.exemplars}} {
		if v := hd.Get(f.name); v != "" {
			found = true
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				*f.dst = n
			}
		}
	}
	return w, found
}

// maxRetryAfter caps Retry-After so that one bad answer cannot park an
// endpoint for a day.
const maxRetryAfter = 5 * time.Minute

// parseRetryAfter reads Retry-After as seconds or an HTTP date, relative to
// now; 0 when absent, unreadable or in the past. It is capped at
// maxRetryAfter, also for values whose nanoseconds would not fit a
// time.Duration (which would otherwise wrap round to a negative wait).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case s <= 0: // negative, or out of range below
			return 0
		case s >= int64(maxRetryAfter/time.Second):
			return maxRetryAfter
		}
		return time.Duration(s) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	// Sub saturates instead of wrapping for dates centuries away.
	return min(max(t.Sub(now), 0), maxRetryAfter)
}

// noRedirects is the HTTP client's CheckRedirect: a 3xx comes back as it
// is, and send counts it as an error.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

var errShuttingDown = errors.New("remote_write exporter is shutting down")
