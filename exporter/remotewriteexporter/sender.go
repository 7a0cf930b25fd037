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
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/diskqueue"
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
	rejected          // another 4xx: drop, counted by status code
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

// sendLoop delivers the records of one shard's queue in order, one request
// in flight, until ctx ends. With untilEmpty it stops once the queue is
// empty (an old shard layout draining before the new one starts).
func (e *rwExporter) sendLoop(ctx context.Context, ep *endpoint, q *diskqueue.Queue, untilEmpty bool) error {
	for {
		if untilEmpty && q.Stats().Records == 0 {
			return nil
		}
		rec, err := q.Next(ctx)
		if err != nil {
			return err
		}
		if !e.deliver(ctx, ep, rec.Payload) {
			return ctx.Err() // not acknowledged: sent again after a restart
		}
		if err := q.Ack(rec.End); err != nil {
			return err
		}
	}
}

// deliver sends one queued request until the backend takes it or it is
// given up (dropped and counted). It returns false only when ctx ended
// first, and then the record stays in the queue.
func (e *rwExporter) deliver(ctx context.Context, ep *endpoint, payload []byte) bool {
	h, body, err := parseRecord(payload)
	if err != nil {
		e.tel.drop(ctx, h, reasonUndecodable)
		e.logger.Error("Dropping a queued request this version cannot read", zap.Error(err))
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
		if h.message == 2 && ep.v1Only.Load() {
			var ok bool
			if h, body, ok = e.rewrite(ctx, h, body, true, 0); !ok {
				return true
			}
		}
		if try > 0 {
			e.tel.count(ctx, e.tel.retried, h)
		}
		a := e.send(ctx, ep, h, body)
		switch a.outcome {
		case delivered:
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
			return true
		case fallBack:
			if ep.v1Only.CompareAndSwap(false, true) {
				e.tel.fallbacks.Add(ctx, 1, e.tel.with())
				e.logger.Warn("The backend does not take remote write 2.0; sending 1.0 from now on",
					zap.Int("status", a.status), zap.String("endpoint", ep.url))
			}
			continue
		case rejected:
			e.tel.drop(ctx, h, "http_"+strconv.Itoa(a.status))
			ep.health.rejected(a.status, a.err)
			return true
		case retry:
			e.tel.count(ctx, e.tel.failed, h)
			ep.health.failing(a.status, a.err)
			wait := e.backoff(try)
			if a.retryAfter > 0 {
				wait = a.retryAfter
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(wait):
			}
		}
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
		e.logger.Error("Dropping a queued request that does not decode", zap.Error(err))
		return h, nil, false
	}
	if cutoff > 0 {
		s, hi, ex := d.dropOlder(cutoff)
		e.tel.drop(ctx, recordHeader{samples: s, histograms: hi, exemplars: ex}, reasonTooOld)
	}
	nh, nb, err := d.encode()
	if err != nil {
		e.tel.drop(ctx, h, reasonUndecodable)
		e.logger.Error("Dropping a queued request that does not encode again", zap.Error(err))
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
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
		a.err = fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(msg))
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

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when
// absent or unreadable. It is capped at 5 minutes so that one bad answer
// cannot park a shard for a day.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), 5*time.Minute)
}

var errShuttingDown = errors.New("remote_write exporter is shutting down")
