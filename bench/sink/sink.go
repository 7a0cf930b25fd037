// Package sink is the recording server of Sluice's tests and benchmarks: it
// accepts what a collector delivers on loopback and counts it, so a test can
// assert exactly what arrived.
//
// It accepts OTLP/HTTP metrics (protobuf, POST /v1/metrics) and serves its
// counts as JSON at GET /stats. Remote write and fault injection join it with
// the benchmark harness; end-to-end tests use this package instead of writing
// servers of their own.
package sink

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// maxBody bounds one request body, so a runaway sender cannot exhaust memory.
const maxBody = 64 << 20

// Stats is what the sink has recorded since it started.
type Stats struct {
	Requests   int            `json:"requests"`
	Rejected   int            `json:"rejected"`
	DataPoints int            `json:"data_points"`
	Metrics    map[string]int `json:"metrics"` // data points per metric name
}

// Sink records received metrics. The zero value is not usable; call New.
type Sink struct {
	mu    sync.Mutex
	stats Stats
	mux   *http.ServeMux
}

// New returns an empty sink.
func New() *Sink {
	s := &Sink{stats: Stats{Metrics: map[string]int{}}}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/metrics", s.handleOTLP)
	s.mux.HandleFunc("GET /stats", s.handleStats)
	return s
}

// ServeHTTP makes the sink an http.Handler.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Start serves the sink on addr (which must be a loopback address, e.g.
// "127.0.0.1:0") until the returned stop function is called. It returns the
// address actually listened on.
func (s *Sink) Start(addr string) (string, func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", nil, fmt.Errorf("sink listens on loopback only, not %q", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: s}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// Stats returns a copy of the counts so far.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Metrics = make(map[string]int, len(s.stats.Metrics))
	for k, v := range s.stats.Metrics {
		out.Metrics[k] = v
	}
	return out
}

// MetricNames returns the names of every metric received, sorted.
func (s *Sink) MetricNames() []string {
	st := s.Stats()
	names := make([]string, 0, len(st.Metrics))
	for n := range st.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *Sink) handleOTLP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	req := pmetricotlp.NewExportRequest()
	if err == nil {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		s.mu.Lock()
		s.stats.Rejected++
		s.mu.Unlock()
		http.Error(w, "sink: undecodable OTLP request: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.record(req.Metrics())
	resp, _ := pmetricotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

// readBody reads a request body of at most maxBody bytes, gunzipping it when
// the sender compressed it (the OTLP/HTTP exporter does by default).
func readBody(r *http.Request) ([]byte, error) {
	var src io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		src = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	body, err := io.ReadAll(io.LimitReader(src, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("body larger than %d bytes", maxBody)
	}
	return body, err
}

func (s *Sink) record(md pmetric.Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				n := dataPoints(ms.At(k))
				s.stats.Metrics[ms.At(k).Name()] += n
				s.stats.DataPoints += n
			}
		}
	}
}

func dataPoints(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

func (s *Sink) handleStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Stats())
}
