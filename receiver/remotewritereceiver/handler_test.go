package remotewritereceiver

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// Every way a push can go wrong, with the status and message the sender
// gets; nothing of a refused push reaches the pipeline.
func TestAnswers(t *testing.T) {
	good := requestV2(inputSeries())
	badRef := requestV2(inputSeries())
	badRef.Timeseries[0].LabelsRefs[1] = 9999
	noName := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: prompb.FromLabels(labels.FromStrings("job", "x"), nil), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}},
	}}}
	badHist := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:     prompb.FromLabels(labels.FromStrings("__name__", "h"), nil),
		Histograms: []prompb.Histogram{prompb.FromIntHistogram(1, &histogram.Histogram{Count: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{5}})},
	}}}
	// 2 MiB of zeros is about 100 KiB compressed: under the body limit, but
	// announcing more than max_decompressed_body_size (1 MiB here).
	huge := snappy.Encode(nil, bytes.Repeat([]byte{0}, 2<<20))

	for _, tc := range []struct {
		name, method, contentType, encoding string
		body                                []byte
		next                                consumer.Metrics
		maxBody                             int64
		set                                 func(*Config)
		status                              int
		message                             string
	}{
		{name: "v2 accepted", body: snappyOf(t, good), contentType: ctV2, encoding: "snappy", status: http.StatusNoContent},
		{name: "v1 without Content-Type accepted", body: snappyOf(t, requestV1(inputSeries())), encoding: "snappy", status: http.StatusNoContent},
		{name: "GET", method: http.MethodGet, status: http.StatusMethodNotAllowed, message: "remote write takes POST"},
		{name: "unknown message", body: snappyOf(t, good), contentType: "application/x-protobuf;proto=io.prometheus.write.v3.Request", encoding: "snappy",
			status: http.StatusUnsupportedMediaType, message: `unknown remote write message "io.prometheus.write.v3.Request"`},
		{name: "not protobuf", body: []byte("{}"), contentType: "application/json", status: http.StatusUnsupportedMediaType, message: `Content-Type "application/json" is not application/x-protobuf`},
		{name: "gzip", body: snappyOf(t, good), contentType: ctV2, encoding: "gzip", status: http.StatusUnsupportedMediaType,
			message: "unsupported Content-Encoding: gzip: remote write bodies are snappy-compressed"},
		{name: "not snappy", body: []byte("definitely not snappy"), contentType: ctV2, encoding: "snappy", status: http.StatusBadRequest, message: "snappy: "},
		{name: "not protobuf inside", body: snappy.Encode(nil, []byte("\xff\xff\xff garbage")), contentType: ctV2, encoding: "snappy",
			status: http.StatusBadRequest, message: "decoding io.prometheus.write.v2.Request: "},
		{name: "label reference outside symbols", body: snappyOf(t, badRef), contentType: ctV2, encoding: "snappy",
			status: http.StatusBadRequest, message: "timeseries 0: label reference 9999 outside the"},
		{name: "series without name", body: snappyOf(t, noName), contentType: ctV1, encoding: "snappy",
			status: http.StatusBadRequest, message: `timeseries 0: series {job="x"} has no __name__`},
		{name: "invalid native histogram", body: snappyOf(t, badHist), contentType: ctV1, encoding: "snappy",
			status: http.StatusBadRequest, message: `timeseries 0: series {__name__="h"}: invalid native histogram at 1: 5 observations found in buckets, but the Count field is 1`},
		{name: "body over max_request_body_size", body: snappyOf(t, good), contentType: ctV2, encoding: "snappy", maxBody: 100,
			status: http.StatusRequestEntityTooLarge, message: "body larger than max_request_body_size (100 bytes)"},
		{name: "decompressed size over the limit", body: huge, contentType: ctV2, encoding: "snappy", set: func(c *Config) { c.MaxDecompressedBodySize = 1 << 20 },
			status: http.StatusRequestEntityTooLarge, message: "the body decompresses to 2097152 bytes, over max_decompressed_body_size (1048576)"},
		{name: "pipeline refuses", body: snappyOf(t, good), contentType: ctV2, encoding: "snappy", next: consumertest.NewErr(errors.New("queue full")),
			status: http.StatusServiceUnavailable, message: "the pipeline refused the data: queue full"},
		{name: "pipeline refuses for good", body: snappyOf(t, good), contentType: ctV2, encoding: "snappy",
			next:   consumertest.NewErr(consumererror.NewPermanent(errors.New("bad data"))),
			status: http.StatusBadRequest, message: "the pipeline refused the data: Permanent error: bad data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			if tc.maxBody > 0 {
				cfg.ServerConfig.MaxRequestBodySize = tc.maxBody
			}
			if tc.set != nil {
				tc.set(cfg)
			}
			sink := new(consumertest.MetricsSink)
			next := tc.next
			if next == nil {
				next = sink
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			status, _, body := push(t, startReceiver(t, cfg, next), method, tc.contentType, tc.encoding, tc.body)
			if status != tc.status || !strings.Contains(body, tc.message) {
				t.Fatalf("answer %d %q, want %d containing %q", status, body, tc.status, tc.message)
			}
			if status != http.StatusNoContent && sink.DataPointCount() != 0 {
				t.Fatalf("a refused push reached the pipeline: %d data points", sink.DataPointCount())
			}
			if status == http.StatusNoContent && sink.DataPointCount() == 0 {
				t.Fatal("an accepted push did not reach the pipeline")
			}
		})
	}
}

// Native histograms pdata's exponential histogram cannot carry (fractional
// counts, custom buckets, a gap of a billion buckets that would take gigabytes
// to write densely) are left out and counted; the request is taken and the
// 2.0 answer says they were not written.
func TestUnfitNativeHistograms(t *testing.T) {
	cases := map[string]*histogram.FloatHistogram{
		"fractional counts": {Count: 2.5, Sum: 1, Schema: 0, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []float64{2.5}},
		"custom buckets": {Count: 2, Sum: 1, Schema: histogram.CustomBucketsSchema, CustomValues: []float64{1},
			PositiveSpans: []histogram.Span{{Length: 2}}, PositiveBuckets: []float64{1, 1}},
		"a gap of a billion buckets": {Count: 2, Sum: 1, Schema: 0,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}, {Offset: 1 << 30, Length: 1}}, PositiveBuckets: []float64{1, 1}},
	}
	for name, fh := range cases {
		t.Run(name, func(t *testing.T) {
			if err := fh.Validate(); err != nil {
				t.Fatal(err)
			}
			st := writev2.NewSymbolTable()
			req := &writev2.Request{Timeseries: []writev2.TimeSeries{
				{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "rate_hist"), nil), Histograms: []writev2.Histogram{writev2.FromFloatHistogram(0, 1000, fh)}},
				{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up"), nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}},
			}}
			req.Symbols = st.Symbols()
			sink := new(consumertest.MetricsSink)
			status, hdr, body := push(t, startReceiver(t, createDefaultConfig(), sink), http.MethodPost, ctV2, "snappy", snappyOf(t, req))
			if status != http.StatusNoContent {
				t.Fatalf("%d %s", status, body)
			}
			if hdr.Get("X-Prometheus-Remote-Write-Histograms-Written") != "0" || hdr.Get("X-Prometheus-Remote-Write-Samples-Written") != "1" || sink.DataPointCount() != 1 {
				t.Fatalf("headers %v, %d data points", hdr, sink.DataPointCount())
			}
		})
	}
}
