// Package sink is the recording server of Sluice's tests and benchmarks: it
// accepts what a collector delivers on loopback and counts it, so a test can
// assert exactly what arrived, and it misbehaves on request, so a test can
// show what a collector does when the backend fails.
//
// Endpoints:
//
//	POST /api/v1/write  remote write 1.0 and 2.0 (snappy protobuf)
//	POST /v1/metrics    OTLP/HTTP metrics (protobuf, optionally gzip)
//	GET  /stats         counts as JSON (Stats)
//	POST /fault         inject a fault for a while (Fault as JSON)
//
// With RecordTenants (the sink command's -tenant-header flag) it also files
// each remote-write request under its tenant header, as Mimir or Cortex do.
//
// Its counting of loss, duplicates and order is covered by its own tests; the
// end-to-end tests and the benchmark scenarios use it instead of servers of
// their own.
package sink

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/sluicehq/sluice/internal/promseries"
)

// maxBody bounds one request body, so a runaway sender cannot exhaust memory.
const maxBody = 64 << 20

// Stats is what the sink has recorded since it started (or was reset).
type Stats struct {
	Requests    int              `json:"requests"`    // accepted OTLP requests
	Rejected    int              `json:"rejected"`    // undecodable or refused requests
	Faulted     int              `json:"faulted"`     // requests answered by an injected fault
	DataPoints  int              `json:"data_points"` // OTLP data points
	Metrics     map[string]int   `json:"metrics"`     // OTLP data points per metric name
	RemoteWrite RemoteWriteStats `json:"remote_write"`
	// Tenants counts remote write by tenant header value, once
	// RecordTenants was called.
	Tenants map[string]TenantStats `json:"tenants,omitempty"`
}

// RemoteWriteStats counts what arrived by remote write.
type RemoteWriteStats struct {
	RequestsV1   int `json:"requests_v1"`
	RequestsV2   int `json:"requests_v2"`
	Samples      int `json:"samples"` // float samples received, duplicates included
	Histograms   int `json:"histograms"`
	Exemplars    int `json:"exemplars"`
	Metadata     int `json:"metadata"`
	Series       int `json:"series"`        // distinct label sets
	Duplicates   int `json:"duplicates"`    // same series and timestamp again
	OutOfOrder   int `json:"out_of_order"`  // older than the newest of its series
	StaleMarkers int `json:"stale_markers"` // Prometheus StaleNaN samples
	NaN          int `json:"nan"`           // other NaN values
}

// Sink records received metrics. The zero value is not usable; call New.
type Sink struct {
	mu     sync.Mutex
	stats  Stats
	series map[string]*series
	fault  Fault
	until  time.Time // the fault applies until then
	mux    *http.ServeMux
	// With KeepRequests, every accepted remote-write request is kept whole,
	// for tests that compare exactly what arrived (metadata, exemplars,
	// histograms, start timestamps) with what was sent.
	keep   bool
	keptV1 []*prompb.WriteRequest
	keptV2 []*writev2.Request
	// tenantHeader, once set by RecordTenants, files each remote-write
	// request under its value (see tenants.go).
	tenantHeader string
	tenants      map[string]*tenantRecord
}

// KeepRequests makes the sink keep every accepted remote-write request from
// now on (tests only: memory grows with every request).
func (s *Sink) KeepRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = true
}

// Requests returns the kept 1.0 and 2.0 requests, in arrival order.
func (s *Sink) Requests() ([]*prompb.WriteRequest, []*writev2.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*prompb.WriteRequest(nil), s.keptV1...), append([]*writev2.Request(nil), s.keptV2...)
}

// New returns an empty sink.
func New() *Sink {
	s := &Sink{}
	s.Reset()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /api/v1/write", s.faulty(s.handleRemoteWrite))
	s.mux.HandleFunc("POST /v1/metrics", s.faulty(s.handleOTLP))
	s.mux.HandleFunc("GET /stats", s.handleStats)
	s.mux.HandleFunc("POST /fault", s.handleFault)
	return s
}

// Reset forgets everything recorded so far (an injected fault stays).
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{Metrics: map[string]int{}}
	s.series = map[string]*series{}
	s.keptV1, s.keptV2 = nil, nil
	s.tenants = map[string]*tenantRecord{}
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
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
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
	out.RemoteWrite.Series = len(s.series)
	out.Tenants = s.tenantStatsLocked()
	return out
}

// MetricNames returns the names of every OTLP metric received, sorted.
func (s *Sink) MetricNames() []string {
	st := s.Stats()
	names := make([]string, 0, len(st.Metrics))
	for n := range st.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Series returns the label sets of every remote-write series received, each
// rendered as `{__name__="up", job="x"}` with labels sorted by name.
func (s *Sink) Series() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.series))
	for k := range s.series {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Samples returns the float samples received for a series (as rendered by
// Series), sorted by time, each timestamp once.
func (s *Sink) Samples(labels string) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	ser, ok := s.series[labels]
	if !ok {
		return nil
	}
	return append([]Point(nil), ser.samples...)
}

// Distinct counts the distinct (series, timestamp) points received, float
// samples and histograms, of the series whose metric name starts with prefix:
// what arrived at least once, whatever the duplicates. Stale markers are not
// points: they are counted in Stats only.
func (s *Sink) Distinct(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ser := range s.series {
		if strings.HasPrefix(ser.name, prefix) {
			n += len(ser.samples) + len(ser.hists)
		}
	}
	return n
}

// Histograms returns the native histogram samples received for a series,
// sorted by time, each with the histogram's count as its value.
func (s *Sink) Histograms(labels string) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	ser, ok := s.series[labels]
	if !ok {
		return nil
	}
	return append([]Point(nil), ser.hists...)
}

// Gaps counts, over all series, the holes in time: consecutive samples of a
// series further apart than 1.5 × interval (the interval it is expected at).
func (s *Sink) Gaps(interval time.Duration) int {
	limit := int64(interval/time.Millisecond) * 3 / 2
	s.mu.Lock()
	defer s.mu.Unlock()
	gaps := 0
	for _, ser := range s.series {
		for _, ps := range [][]Point{ser.samples, ser.hists} {
			for i := 1; i < len(ps); i++ {
				if ps[i].T-ps[i-1].T > limit {
					gaps++
				}
			}
		}
	}
	return gaps
}

func (s *Sink) reject() {
	s.mu.Lock()
	s.stats.Rejected++
	s.mu.Unlock()
}

func (s *Sink) handleOTLP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	req := pmetricotlp.NewExportRequest()
	if err == nil {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		s.reject()
		http.Error(w, "sink: undecodable OTLP request: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.recordOTLP(req.Metrics())
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

func (s *Sink) recordOTLP(md pmetric.Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				n := promseries.DataPoints(ms.At(k))
				s.stats.Metrics[ms.At(k).Name()] += n
				s.stats.DataPoints += n
			}
		}
	}
}

func (s *Sink) handleStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Stats())
}

// ParseSeries turns a series as Series renders it back into labels.
func ParseSeries(key string) (labels.Labels, error) {
	s, ok := strings.CutPrefix(key, "{")
	if !ok || !strings.HasSuffix(s, "}") {
		return labels.EmptyLabels(), fmt.Errorf("sink: %q is not a rendered series", key)
	}
	s = strings.TrimSuffix(s, "}")
	var b labels.ScratchBuilder
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			return labels.EmptyLabels(), fmt.Errorf("sink: no '=' in %q", s)
		}
		quoted, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return labels.EmptyLabels(), fmt.Errorf("sink: value of %s: %w", name, err)
		}
		v, _ := strconv.Unquote(quoted)
		b.Add(name, v)
		s = strings.TrimPrefix(rest[len(quoted):], ", ")
	}
	b.Sort()
	return b.Labels(), nil
}
