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

	"github.com/klauspost/compress/snappy"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/promseries"
	"github.com/sluicehq/sluice/internal/rwproto"
	"github.com/sluicehq/sluice/receiver/remotewritereceiver/internal/metadata"
)

// maxDecodedRatio bounds the decompressed size of a request at this many
// times max_request_body_size: snappy's header states the size, so a small
// body announcing a huge payload is refused before any memory is taken.
const maxDecodedRatio = 16

type rwReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   consumer.Metrics
	tel    *telemetry
	server *http.Server
	addr   string // where it listens, once started
	done   sync.WaitGroup
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Metrics) (*rwReceiver, error) {
	tel, err := newTelemetry(set.ID, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &rwReceiver{cfg: cfg, set: set, next: next, tel: tel}, nil
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
			r.fail(req.Context(), w, status, msg)
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
// body that does not decode, 413 for one too large, 415 for an unknown
// message or encoding, 503 when the pipeline refuses (the sender retries).
func (r *rwReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.fail(req.Context(), w, http.StatusMethodNotAllowed, "remote write takes POST")
		return
	}
	msg, err := rwproto.Message(req.Header.Get("Content-Type"))
	if err != nil {
		r.fail(req.Context(), w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.fail(req.Context(), w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than max_request_body_size (%d bytes)", tooLarge.Limit))
			return
		}
		r.fail(req.Context(), w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	raw, status, err := decompress(body, r.maxDecoded())
	if err != nil {
		r.fail(req.Context(), w, status, err.Error())
		return
	}
	b := promseries.NewBuilder(metadata.ScopeName)
	var c counts
	if msg == rwproto.MessageV1 {
		var d v1Decoder
		c, err = d.decode(b, raw)
		if isMalformed(err) {
			err = fmt.Errorf("decoding %s: %w", msg, err)
		}
	} else {
		var wr writev2.Request
		if err := wr.Unmarshal(raw); err != nil {
			r.fail(req.Context(), w, http.StatusBadRequest, "decoding "+msg+": "+err.Error())
			return
		}
		c, err = addV2(b, &wr)
	}
	if err != nil {
		r.fail(req.Context(), w, http.StatusBadRequest, err.Error())
		return
	}
	md := b.Metrics()
	if md.DataPointCount() > 0 {
		ctx := req.Context()
		if r.cfg.PipelineTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, r.cfg.PipelineTimeout)
			defer cancel()
		}
		if err := r.next.ConsumeMetrics(ctx, md); err != nil {
			status := http.StatusServiceUnavailable
			if consumererror.IsPermanent(err) {
				status = http.StatusBadRequest
			}
			msg := "the pipeline refused the data: " + err.Error()
			if errors.Is(err, context.DeadlineExceeded) && req.Context().Err() == nil {
				msg = fmt.Sprintf("the pipeline did not take the data within pipeline_timeout (%s); retry later", r.cfg.PipelineTimeout)
			}
			r.fail(req.Context(), w, status, msg)
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
}

func (r *rwReceiver) maxDecoded() int {
	limit := r.cfg.ServerConfig.MaxRequestBodySize
	if limit <= 0 {
		limit = 20 << 20 // confighttp's default
	}
	return int(limit) * maxDecodedRatio
}

// decompress undoes snappy, refusing a payload that announces more than max
// bytes before allocating it.
func decompress(body []byte, max int) ([]byte, int, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("snappy: %w", err)
	}
	if n > max {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("decompressed body of %d bytes is over the limit of %d", n, max)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("snappy: %w", err)
	}
	return raw, 0, nil
}

// fail answers an error and counts it by status.
func (r *rwReceiver) fail(ctx context.Context, w http.ResponseWriter, status int, msg string) {
	r.tel.refused(ctx, status)
	http.Error(w, msg, status)
}
