package sink

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

func testMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	g := ms.AppendEmpty()
	g.SetName("temperature")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(21.5)
	g.Gauge().DataPoints().AppendEmpty().SetDoubleValue(22)
	h := ms.AppendEmpty()
	h.SetName("latency")
	h.SetEmptyHistogram().DataPoints().AppendEmpty().SetCount(3)
	return md
}

func post(t *testing.T, url string, body []byte) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestSinkCountsOTLPDataPoints(t *testing.T) {
	s := New()
	addr, stop, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	body, err := pmetricotlp.NewExportRequestFromMetrics(testMetrics()).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if resp := post(t, "http://"+addr+"/v1/metrics", body); resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/metrics: status %d", resp.StatusCode)
		}
	}

	resp, err := http.Get("http://" + addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Requests != 2 || st.DataPoints != 6 || st.Metrics["temperature"] != 4 || st.Metrics["latency"] != 2 {
		t.Fatalf("stats = %+v, want 2 requests, 6 data points (temperature 4, latency 2)", st)
	}
	if got := s.MetricNames(); len(got) != 2 || got[0] != "latency" || got[1] != "temperature" {
		t.Fatalf("MetricNames() = %v", got)
	}
}

func TestSinkRejectsGarbage(t *testing.T) {
	s := New()
	addr, stop, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if resp := post(t, "http://"+addr+"/v1/metrics", []byte{0xff, 0xff, 0xff}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage body: status %d, want 400", resp.StatusCode)
	}
	if st := s.Stats(); st.Rejected != 1 || st.Requests != 0 {
		t.Fatalf("stats = %+v, want 1 rejected, 0 recorded", st)
	}
}

func TestSinkListensOnLoopbackOnly(t *testing.T) {
	if _, _, err := New().Start("0.0.0.0:0"); err == nil {
		t.Fatal("Start(0.0.0.0:0) succeeded; the sink must refuse non-loopback addresses")
	}
}
