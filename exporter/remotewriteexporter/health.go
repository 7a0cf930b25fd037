package remotewriteexporter

import (
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/redact"
)

// health logs the state of delivery when it changes, not per request.
type health struct {
	logger   *zap.Logger
	endpoint string

	mu          sync.Mutex
	failingNow  bool
	lastReject  time.Time
	lastDelta   time.Time
	lastAuth    time.Time
	failingFrom time.Time
}

func (h *health) failing(status int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failingNow {
		return
	}
	h.failingNow, h.failingFrom = true, time.Now()
	h.logger.Error("Remote write failing; retrying with backoff, data waits in the queue",
		zap.String("endpoint", h.endpoint), zap.Int("status", status), errField(err))
}

func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failingNow {
		return
	}
	h.failingNow = false
	h.logger.Info("Remote write recovered", zap.String("endpoint", h.endpoint),
		zap.Duration("failed_for", time.Since(h.failingFrom).Round(time.Millisecond)))
}

func (h *health) rejected(status int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.lastReject) < 10*time.Second {
		return
	}
	h.lastReject = time.Now()
	h.logger.Error("Remote write request rejected by the backend; its data is dropped (not retried)",
		zap.String("endpoint", h.endpoint), zap.Int("status", status), errField(err))
}

func (h *health) deltaRefused(n recordHeader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.lastDelta) < time.Minute {
		return
	}
	h.lastDelta = time.Now()
	h.logger.Warn("Dropping points with delta temporality: Prometheus stores cumulative series; convert them upstream (deltatocumulative processor) or send them as cumulative",
		zap.Int64("samples", n.samples), zap.Int64("histograms", n.histograms))
}

// errField logs err with every URL in it redacted: the HTTP client's
// errors quote the endpoint, credentials and query included.
func errField(err error) zap.Field {
	if err == nil {
		return zap.Skip()
	}
	return zap.String("error", redact.Text(err.Error()))
}

// authRefused says, at most every 5 minutes, that the backend refuses the
// credentials and the data waits.
func (h *health) authRefused(status int, err error, every time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.lastAuth) < 5*time.Minute {
		return
	}
	h.lastAuth = time.Now()
	h.logger.Error("The backend refuses the credentials; the data waits in the queue and is tried again: renew the token or fix auth/headers",
		zap.String("endpoint", h.endpoint), zap.Int("status", status), zap.Duration("retry_every", every), errField(err))
}

// queueHealth tracks the senders whose queue fails to read or acknowledge
// (a disk error): it logs, at most every 10 seconds, and reports the
// component's status to the collector (componentstatus): a recoverable
// error while any sender is failing, OK once they all recovered.
type queueHealth struct {
	logger *zap.Logger

	mu      sync.Mutex
	host    component.Host
	failing int
	lastLog time.Time
}

func (q *queueHealth) setHost(host component.Host) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.host = host
}

// failed is called on each failed attempt; first is true on a sender's
// first failure since it last worked.
func (q *queueHealth) failed(endpoint string, shard int, op string, err error, first bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if first {
		q.failing++
		if q.failing == 1 && q.host != nil {
			componentstatus.ReportStatus(q.host, componentstatus.NewRecoverableErrorEvent(
				errors.Join(errors.New("remote_write: a shard cannot read its disk queue; retrying"), err)))
		}
	}
	if time.Since(q.lastLog) < 10*time.Second {
		return
	}
	q.lastLog = time.Now()
	q.logger.Error("A shard cannot "+op+" its disk queue; its sender retries with backoff, data waits",
		zap.String("endpoint", endpoint), zap.Int("shard", shard), errField(err))
}

// recovered is called once when a failing sender works again.
func (q *queueHealth) recovered(endpoint string, shard int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failing--
	q.logger.Info("The shard reads its disk queue again", zap.String("endpoint", endpoint), zap.Int("shard", shard))
	if q.failing == 0 && q.host != nil {
		componentstatus.ReportStatus(q.host, componentstatus.NewEvent(componentstatus.StatusOK))
	}
}
