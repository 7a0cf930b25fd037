package sink

import (
	"bytes"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

func startTestSink(t *testing.T) (*Sink, string) {
	t.Helper()
	s := New()
	addr, stop, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s, "http://" + addr
}

func sendRW(t *testing.T, url, contentType string, raw []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func v1Request(series ...prompb.TimeSeries) []byte {
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		panic(err)
	}
	return raw
}

func v1Series(name string, samples ...prompb.Sample) prompb.TimeSeries {
	return prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "job", Value: "j"}},
		Samples: samples,
	}
}

func TestRemoteWriteV1CountsDuplicatesAndDisorder(t *testing.T) {
	s, url := startTestSink(t)
	// t=1000,2000,3000 in order; then 2000 again (duplicate) and 1500 (out of order).
	resp := sendRW(t, url, "application/x-protobuf",
		v1Request(v1Series("a", prompb.Sample{Timestamp: 1000, Value: 1}, prompb.Sample{Timestamp: 2000, Value: 2}, prompb.Sample{Timestamp: 3000, Value: 3})))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", resp.StatusCode)
	}
	sendRW(t, url, "", v1Request(v1Series("a", prompb.Sample{Timestamp: 2000, Value: 2}, prompb.Sample{Timestamp: 1500, Value: 1.5})))
	// Another series, with a stale marker.
	sendRW(t, url, "", v1Request(v1Series("b", prompb.Sample{Timestamp: 1000, Value: math.Float64frombits(value.StaleNaN)})))

	st := s.Stats().RemoteWrite
	want := RemoteWriteStats{RequestsV1: 3, Samples: 6, Series: 2, Duplicates: 1, OutOfOrder: 1, StaleMarkers: 1}
	if st != want {
		t.Fatalf("stats = %+v\nwant    %+v", st, want)
	}
	got := s.Samples(`{__name__="a", job="j"}`)
	wantTs := []int64{1000, 1500, 2000, 3000}
	if len(got) != len(wantTs) {
		t.Fatalf("samples of a = %v, want timestamps %v", got, wantTs)
	}
	for i, p := range got {
		if p.T != wantTs[i] || p.V != float64(p.T)/1000 {
			t.Fatalf("samples of a = %v, want timestamps %v with value t/1000", got, wantTs)
		}
	}
	if d := s.Distinct("a"); d != 4 {
		t.Fatalf("Distinct(a) = %d, want 4 (1000, 1500, 2000, 3000)", d)
	}
	if d := s.Distinct(""); d != 4 {
		t.Fatalf("Distinct(\"\") = %d, want 4 (the stale marker of b is no point)", d)
	}
	series := s.Series()
	if len(series) != 2 || series[0] != `{__name__="a", job="j"}` {
		t.Fatalf("Series() = %q", series)
	}
	for _, k := range append(series, `{a="with \"quotes\", and a comma", b=""}`) {
		ls, err := ParseSeries(k)
		if err != nil || labelKey(pairsOf(ls)) != k {
			t.Fatalf("ParseSeries(%s) = %v, %v; renders back as %s", k, ls, err, labelKey(pairsOf(ls)))
		}
	}
}

func pairsOf(ls labels.Labels) []string {
	var out []string
	ls.Range(func(l labels.Label) { out = append(out, l.Name, l.Value) })
	return out
}

func TestRemoteWriteSeriesIdentityIgnoresLabelOrder(t *testing.T) {
	s, url := startTestSink(t)
	ts := prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "job", Value: "j"}, {Name: "__name__", Value: "a"}},
		Samples: []prompb.Sample{{Timestamp: 1000, Value: 1}},
	}
	sendRW(t, url, "", v1Request(ts))
	sendRW(t, url, "", v1Request(v1Series("a", prompb.Sample{Timestamp: 2000, Value: 2})))
	if st := s.Stats().RemoteWrite; st.Series != 1 || st.Samples != 2 {
		t.Fatalf("stats = %+v, want one series with two samples", st)
	}
}

func TestRemoteWriteV2AnswersWrittenHeaders(t *testing.T) {
	s, url := startTestSink(t)
	req := &writev2.Request{
		Symbols: []string{"", "__name__", "requests_total", "job", "api"},
		Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 2, 3, 4},
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}},
			Exemplars:  []writev2.Exemplar{{Value: 1, Timestamp: 1000}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
		}, {
			LabelsRefs: []uint32{1, 2, 3, 4},
			Histograms: []writev2.Histogram{{Timestamp: 3000, Count: &writev2.Histogram_CountInt{CountInt: 1}}},
		}},
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp := sendRW(t, url, "application/x-protobuf;proto=io.prometheus.write.v2.Request", raw)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", resp.StatusCode)
	}
	for h, want := range map[string]string{"Samples": "2", "Histograms": "1", "Exemplars": "1"} {
		if got := resp.Header.Get("X-Prometheus-Remote-Write-" + h + "-Written"); got != want {
			t.Errorf("X-Prometheus-Remote-Write-%s-Written = %q, want %q", h, got, want)
		}
	}
	st := s.Stats().RemoteWrite
	want := RemoteWriteStats{RequestsV2: 1, Samples: 2, Histograms: 1, Exemplars: 1, Metadata: 1, Series: 1}
	if st != want {
		t.Fatalf("stats = %+v\nwant    %+v", st, want)
	}
}

func TestRemoteWriteRejectsBadRequests(t *testing.T) {
	s, url := startTestSink(t)
	cases := []struct {
		name        string
		contentType string
		raw         []byte
		want        int
	}{
		{"unknown proto", "application/x-protobuf;proto=io.prometheus.write.v3.Request", v1Request(), http.StatusUnsupportedMediaType},
		{"not protobuf", "application/json", v1Request(), http.StatusUnsupportedMediaType},
		{"garbage", "application/x-protobuf", []byte{0xff, 0xff, 0xff, 0xff}, http.StatusBadRequest},
		{"v2 reference outside symbols", "application/x-protobuf;proto=io.prometheus.write.v2.Request",
			func() []byte {
				raw, _ := (&writev2.Request{Symbols: []string{""}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}}}}).Marshal()
				return raw
			}(), http.StatusBadRequest},
	}
	for _, tc := range cases {
		if resp := sendRW(t, url, tc.contentType, tc.raw); resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if st := s.Stats(); st.Rejected != len(cases) || st.RemoteWrite.Samples != 0 {
		t.Fatalf("stats = %+v, want %d rejected and nothing recorded", st, len(cases))
	}
}

func TestGaps(t *testing.T) {
	s, url := startTestSink(t)
	// 10 s interval; a 30 s hole between 20000 and 50000.
	sendRW(t, url, "", v1Request(v1Series("a",
		prompb.Sample{Timestamp: 10000}, prompb.Sample{Timestamp: 20000}, prompb.Sample{Timestamp: 50000}, prompb.Sample{Timestamp: 60000})))
	if g := s.Gaps(10 * time.Second); g != 1 {
		t.Fatalf("Gaps = %d, want 1", g)
	}
	if g := s.Gaps(30 * time.Second); g != 0 {
		t.Fatalf("Gaps at a 30 s interval = %d, want 0", g)
	}
}
