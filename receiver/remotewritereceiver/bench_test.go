package remotewritereceiver

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/sluicehq/sluice/receiver/remotewritereceiver/internal/metadata"
)

// BenchmarkPush is one 2,000-sample 1.0 push through the handler into the
// pipeline (a consumer that drops it): decode, and build pdata.
func BenchmarkPush(b *testing.B) {
	req := prompb.WriteRequest{}
	for i := 0; i < 2000; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: fmt.Sprintf("app_metric_%d", i%500)},
				{Name: "instance", Value: fmt.Sprintf("10.0.0.%d:9100", i%250)},
				{Name: "job", Value: "node"},
				{Name: "mode", Value: "user"},
				{Name: "series", Value: fmt.Sprint(i)},
			},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1_700_000_000_000}},
		})
	}
	raw, _ := req.Marshal()
	body := snappy.Encode(nil, raw)
	r, err := newReceiver(createDefaultConfig(), receivertest.NewNopSettings(metadata.Type), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hr := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
		hr.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, hr)
		if w.Code != http.StatusNoContent {
			b.Fatal(w.Code, w.Body.String())
		}
	}
	b.ReportMetric(float64(b.N)*2000/b.Elapsed().Seconds(), "samples/s")
}
