package remotewritereceiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/promseries"
	"github.com/sluicehq/sluice/internal/rwproto"
	"github.com/sluicehq/sluice/receiver/remotewritereceiver/internal/metadata"
)

type rwReceiver struct {
	cfg      *Config
	set      receiver.Settings
	next     consumer.Metrics
	tel      *telemetry
	inflight chan *slot // the slots of max_concurrent_requests not taken; nil: no limit
	server   *http.Server
	addr     string // where it listens, once started
	done     sync.WaitGroup
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Metrics) (*rwReceiver, error) {
	tel, err := newTelemetry(set)
	if err != nil {
		return nil, err
	}
	r := &rwReceiver{cfg: cfg, set: set, next: next, tel: tel}
	if cfg.MaxConcurrentRequests > 0 {
		r.inflight = make(chan *slot, cfg.MaxConcurrentRequests)
		for range cfg.MaxConcurrentRequests {
			r.inflight <- new(slot)
		}
	}
	return r, nil
}

func (r *rwReceiver) Start(ctx context.Context, host component.Host) error {
	mux := http.NewServeMux()
	mux.Handle(r.cfg.Path, r)
	// Remote write bodies are snappy blocks, which the handler undoes itself
	// (to answer 413 for a payload over the limits); every other encoding
	// is refused with 415, as the specification says.
	server := r.cfg.ServerConfig
	server.CompressionAlgorithms = []string{""}
	srv, err := server.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux,
		confighttp.WithDecoder("snappy", func(body io.ReadCloser) (io.ReadCloser, error) { return body, nil }),
		confighttp.WithErrorHandler(func(w http.ResponseWriter, req *http.Request, msg string, status int) {
			if strings.HasPrefix(msg, "unsupported Content-Encoding") {
				status = http.StatusUnsupportedMediaType
				msg += ": remote write bodies are snappy-compressed"
			}
			r.fail(req, w, status, msg)
		}))
	if err != nil {
		return err
	}
	ln, err := r.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", r.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	r.server, r.addr = srv, ln.Addr().String()
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	r.set.Logger.Info("Accepting remote write", zap.String("endpoint", r.addr), zap.String("path", r.cfg.Path))
	return nil
}

func (r *rwReceiver) Shutdown(ctx context.Context) error {
	if r.server == nil {
		return nil
	}
	err := r.server.Shutdown(ctx)
	r.done.Wait()
	return err
}

// ServeHTTP takes one push: 204 once the pipeline accepted it; 400 for a
// body that does not decode or a series over a label limit, 413 for one too
// large, 415 for an unknown message or encoding, 503 when the pipeline
// refuses or max_concurrent_requests pushes are already in (the sender
// retries).
func (r *rwReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.fail(req, w, http.StatusMethodNotAllowed, "remote write takes POST")
		return
	}
	msg, err := rwproto.Message(req.Header.Get("Content-Type"))
	if err != nil {
		r.fail(req, w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	// The slot is taken before the body is read: what bounds the memory of
	// pushes in flight is that there are at most this many, each within
	// the limits. One more is refused at once rather than queued, so that
	// waiting pushes hold neither memory nor goroutines.
	s := new(slot) // with no limit, buffers are not reused
	if r.inflight != nil {
		select {
		case s = <-r.inflight:
			defer func() { r.inflight <- s }()
		default:
			// The body is read (and thrown away) before the answer: an
			// HTTP/1.1 sender answered mid-body, whose connection is then
			// closed, sees a broken pipe instead of the 503 and its
			// Retry-After. Reading takes no memory beyond io.Copy's small
			// buffer and no slot; max_request_body_size and read_timeout
			// bound how much and how long.
			_, _ = io.Copy(io.Discard, req.Body)
			w.Header().Set("Retry-After", retryAfterBusy)
			r.refuse(req, w, overLimit("max_concurrent_requests", http.StatusServiceUnavailable,
				"max_concurrent_requests (%d) pushes are being taken already; retry later", r.cfg.MaxConcurrentRequests))
			return
		}
	}
	md, c, err := r.decodeBody(s, req, msg)
	if err != nil {
		r.refuse(req, w, err)
		return
	}
	if n := md.DataPointCount(); n > 0 {
		ctx := req.Context()
		if r.cfg.PipelineTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, r.cfg.PipelineTimeout)
			defer cancel()
		}
		// Counted in the collector's otelcol_receiver_*_metric_points.
		ctx = r.tel.obs.StartMetricsOp(ctx)
		err := r.next.ConsumeMetrics(ctx, md)
		r.tel.obs.EndMetricsOp(ctx, formatRemoteWrite, n, err)
		if err != nil {
			status := http.StatusServiceUnavailable
			if consumererror.IsPermanent(err) {
				status = http.StatusBadRequest
			}
			msg := "the pipeline refused the data: " + err.Error()
			if errors.Is(err, context.DeadlineExceeded) && req.Context().Err() == nil {
				msg = fmt.Sprintf("the pipeline did not take the data within pipeline_timeout (%s); retry later", r.cfg.PipelineTimeout)
			}
			r.fail(req, w, status, msg)
			return
		}
	}
	r.tel.accepted(req.Context(), c)
	if msg == rwproto.MessageV2 {
		w.Header().Set(rwproto.HeaderSamplesWritten, strconv.Itoa(c.samples))
		w.Header().Set(rwproto.HeaderHistogramsWritten, strconv.Itoa(c.histograms))
		w.Header().Set(rwproto.HeaderExemplarsWritten, strconv.Itoa(c.exemplars))
	}
	w.WriteHeader(http.StatusNoContent)
	r.tel.answered(req, http.StatusNoContent)
}

// retryAfterBusy is the Retry-After of a push refused for
// max_concurrent_requests, in seconds: pushes take milliseconds to decode.
const retryAfterBusy = "1"

// statusError is a refusal with its status.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func refusal(status int, msg string) error { return &statusError{status: status, msg: msg} }

// decodeBody reads, decompresses and decodes the body into pdata, in the
// buffers of slot s. Each buffer is let go as soon as it is done with, so
// that a push holds at most two of body, decompressed payload and decoded
// data at once: what is decoded no longer refers to the payload (labels are copied).
func (r *rwReceiver) decodeBody(s *slot, req *http.Request, msg string) (pmetric.Metrics, counts, error) {
	body, err := s.readBody(req.Body, req.ContentLength, r.cfg.ServerConfig.MaxRequestBodySize)
	if err != nil {
		keep(&s.body, body)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return pmetric.Metrics{}, counts{}, refusal(http.StatusRequestEntityTooLarge,
				fmt.Sprintf("body larger than max_request_body_size (%d bytes)", tooLarge.Limit))
		}
		if isTimeout(err) {
			return pmetric.Metrics{}, counts{}, overLimit("read_timeout", http.StatusRequestTimeout,
				"the body did not arrive within read_timeout (%s)", r.cfg.ServerConfig.ReadTimeout)
		}
		return pmetric.Metrics{}, counts{}, refusal(http.StatusBadRequest, "reading the body: "+err.Error())
	}
	raw, err := s.decompress(*body, r.cfg.MaxDecompressedBodySize)
	keep(&s.body, body)
	if err != nil {
		keep(&s.raw, raw)
		return pmetric.Metrics{}, counts{}, err
	}
	c, b, err := r.decode(*raw, msg)
	keep(&s.raw, raw)
	if err != nil {
		return pmetric.Metrics{}, counts{}, err
	}
	return b.Metrics(), c, nil
}

// decode adds a decompressed request to a new builder, within the limits.
func (r *rwReceiver) decode(raw []byte, msg string) (counts, *promseries.Builder, error) {
	b := promseries.NewBuilder(metadata.ScopeName)
	bud := &budget{limit: r.cfg.MaxRequestMemory}
	var c counts
	var err error
	if msg == rwproto.MessageV1 {
		d := v1Decoder{lim: r.cfg.Limits, bud: bud}
		c, err = d.decode(b, raw)
		if isMalformed(err) {
			err = fmt.Errorf("decoding %s: %w", msg, err)
		}
		return c, b, err
	}
	if err := prescanV2(raw, r.cfg.Limits, bud); err != nil {
		return c, b, err
	}
	var wr writev2.Request
	if err := wr.Unmarshal(raw); err != nil {
		return c, b, refusal(http.StatusBadRequest, "decoding "+msg+": "+err.Error())
	}
	c, err = addV2(b, &wr, r.cfg.Limits, bud)
	return c, b, err
}

// refuse answers err: a limitError or statusError with its status (and a
// limit counted by key), anything else 400.
func (r *rwReceiver) refuse(req *http.Request, w http.ResponseWriter, err error) {
	var lim *limitError
	var st *statusError
	switch {
	case errors.As(err, &lim):
		r.tel.overLimit(req.Context(), lim.key)
		r.fail(req, w, lim.status, err.Error())
	case errors.As(err, &st):
		r.fail(req, w, st.status, err.Error())
	default:
		r.fail(req, w, http.StatusBadRequest, err.Error())
	}
}

// fail answers an error and counts it by status.
func (r *rwReceiver) fail(req *http.Request, w http.ResponseWriter, status int, msg string) {
	http.Error(w, msg, status)
	r.tel.answered(req, status)
}
