package sink

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/sluicehq/sluice/internal/rwproto"
)

// handleRemoteWrite accepts remote write 1.0 and 2.0 (snappy-compressed
// protobuf) and records every sample, histogram and exemplar.
func (s *Sink) handleRemoteWrite(w http.ResponseWriter, r *http.Request) {
	proto, err := rwproto.Message(r.Header.Get("Content-Type"))
	if err != nil {
		s.reject()
		http.Error(w, "sink: "+err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "snappy" {
		s.reject()
		http.Error(w, fmt.Sprintf("sink: Content-Encoding %q, want snappy", enc), http.StatusUnsupportedMediaType)
		return
	}
	compressed, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(compressed) > maxBody {
		s.reject()
		http.Error(w, "sink: body unreadable or too large", http.StatusRequestEntityTooLarge)
		return
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		s.reject()
		http.Error(w, "sink: snappy: "+err.Error(), http.StatusBadRequest)
		return
	}
	tenant, tenants := s.tenantOf(r)
	if proto == rwproto.MessageV1 {
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			s.reject()
			http.Error(w, "sink: decoding prometheus.WriteRequest: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.recordV1(&req, tenant, tenants)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var req writev2.Request
	if err := req.Unmarshal(raw); err != nil {
		s.reject()
		http.Error(w, "sink: decoding io.prometheus.write.v2.Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	written, err := s.recordV2(&req, tenant, tenants)
	if err != nil {
		s.reject()
		http.Error(w, "sink: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set(rwproto.HeaderSamplesWritten, strconv.Itoa(written.samples))
	w.Header().Set(rwproto.HeaderHistogramsWritten, strconv.Itoa(written.histograms))
	w.Header().Set(rwproto.HeaderExemplarsWritten, strconv.Itoa(written.exemplars))
	w.WriteHeader(http.StatusNoContent)
}

type counts struct{ samples, histograms, exemplars int }

// recordV1 records a 1.0 request; with tenants, also under tenant.
func (s *Sink) recordV1(req *prompb.WriteRequest, tenant string, tenants bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.RemoteWrite.RequestsV1++
	var t *tenantRecord
	if tenants {
		t = s.tenantLocked(tenant)
		t.stats.Requests++
	}
	if s.keep {
		s.keptV1 = append(s.keptV1, req)
	}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		pairs := make([]string, 0, 2*len(ts.Labels))
		for _, l := range ts.Labels {
			pairs = append(pairs, l.Name, l.Value)
		}
		ser := s.seriesFor(pairs)
		for _, smp := range ts.Samples {
			s.recordSample(ser, smp.Timestamp, smp.Value)
		}
		for _, h := range ts.Histograms {
			s.stats.RemoteWrite.Histograms++
			count := float64(h.GetCountInt())
			if h.IsFloatHistogram() {
				count = h.GetCountFloat()
			}
			s.file(&ser.hists, Point{T: h.Timestamp, V: count})
		}
		s.stats.RemoteWrite.Exemplars += len(ts.Exemplars)
		s.fileTenantLocked(t, ser.labels, len(ts.Samples), len(ts.Histograms))
	}
	s.stats.RemoteWrite.Metadata += len(req.Metadata)
}

// recordV2 records a 2.0 request; with tenants, also under tenant.
func (s *Sink) recordV2(req *writev2.Request, tenant string, tenants bool) (counts, error) {
	var c counts
	syms := req.Symbols
	// Validate every reference before recording anything: a bad request is
	// rejected whole, as a backend would.
	for i := range req.Timeseries {
		refs := req.Timeseries[i].LabelsRefs
		if len(refs)%2 != 0 {
			return c, fmt.Errorf("timeseries %d: odd number of label references", i)
		}
		for _, r := range refs {
			if int(r) >= len(syms) {
				return c, fmt.Errorf("timeseries %d: label reference %d outside the %d symbols", i, r, len(syms))
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.RemoteWrite.RequestsV2++
	if s.keep {
		s.keptV2 = append(s.keptV2, req)
	}
	var t *tenantRecord
	if tenants {
		t = s.tenantLocked(tenant)
		t.stats.Requests++
	}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		pairs := make([]string, len(ts.LabelsRefs))
		for j, r := range ts.LabelsRefs {
			pairs[j] = syms[r]
		}
		ser := s.seriesFor(pairs)
		for _, smp := range ts.Samples {
			s.recordSample(ser, smp.Timestamp, smp.Value)
		}
		for _, h := range ts.Histograms {
			s.stats.RemoteWrite.Histograms++
			count := float64(h.GetCountInt())
			if h.IsFloatHistogram() {
				count = h.GetCountFloat()
			}
			s.file(&ser.hists, Point{T: h.Timestamp, V: count})
		}
		if ts.Metadata.Type != writev2.Metadata_METRIC_TYPE_UNSPECIFIED {
			s.stats.RemoteWrite.Metadata++
		}
		s.fileTenantLocked(t, ser.labels, len(ts.Samples), len(ts.Histograms))
		c.samples += len(ts.Samples)
		c.histograms += len(ts.Histograms)
		c.exemplars += len(ts.Exemplars)
	}
	s.stats.RemoteWrite.Exemplars += c.exemplars
	return c, nil
}

// Point is one received sample.
type Point struct {
	T int64   `json:"t"`
	V float64 `json:"v"`
}

// series is what the sink keeps of one series: its labels and the received
// points sorted by time (float samples and native histograms apart), enough
// to count duplicates, disorder and gaps and to compare values.
type series struct {
	labels  string
	name    string // __name__
	samples []Point
	hists   []Point // native histograms; V is the histogram's count
}

// seriesFor returns the record of the series with these label pairs
// (name, value, name, value, ...), creating it on first sight.
func (s *Sink) seriesFor(pairs []string) *series {
	key := labelKey(pairs)
	ser, ok := s.series[key]
	if !ok {
		ser = &series{labels: key}
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i] == "__name__" {
				ser.name = pairs[i+1]
			}
		}
		s.series[key] = ser
	}
	return ser
}

// labelKey renders label pairs as `{a="1", b="2"}` sorted by name, so the same
// series sent with differently ordered labels is still one series.
func labelKey(pairs []string) string {
	type pair struct{ n, v string }
	ps := make([]pair, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		ps = append(ps, pair{pairs[i], pairs[i+1]})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].n < ps[j].n })
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.n)
		b.WriteString("=")
		b.WriteString(strconv.Quote(p.v))
	}
	b.WriteByte('}')
	return b.String()
}

func (s *Sink) recordSample(ser *series, t int64, v float64) {
	s.stats.RemoteWrite.Samples++
	if value.IsStaleNaN(v) {
		// A stale marker says a series ended; it is not a served sample, so
		// it is counted but not filed with the series' points.
		s.stats.RemoteWrite.StaleMarkers++
		return
	}
	if math.IsNaN(v) {
		s.stats.RemoteWrite.NaN++
	}
	s.file(&ser.samples, Point{T: t, V: v})
}

// file inserts p into the time-sorted points: a timestamp seen before is a
// duplicate (kept once), one older than the newest is out of order.
func (s *Sink) file(points *[]Point, p Point) {
	ps := *points
	n := len(ps)
	if n == 0 || p.T > ps[n-1].T {
		*points = append(ps, p)
		return
	}
	i := sort.Search(n, func(i int) bool { return ps[i].T >= p.T })
	if i < n && ps[i].T == p.T {
		s.stats.RemoteWrite.Duplicates++
		return
	}
	s.stats.RemoteWrite.OutOfOrder++
	ps = append(ps, Point{})
	copy(ps[i+1:], ps[i:])
	ps[i] = p
	*points = ps
}
