package sink

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/sluicehq/sluice/internal/rwproto"
)

// sendTenant pushes a remote-write body with the tenant header set to each
// of values (none: no header).
func sendTenant(t *testing.T, url, contentType string, raw []byte, values ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", contentType)
	for _, v := range values {
		req.Header.Add("X-Scope-OrgID", v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRecordTenantsFilesEachRequestUnderItsHeader(t *testing.T) {
	s, url := startTestSink(t)
	s.RecordTenants("x-scope-orgid") // any case: header names are not case-sensitive
	v1 := "application/x-protobuf;proto=" + rwproto.MessageV1
	sendTenant(t, url, v1, v1Request(v1Series("a_metric", prompb.Sample{Timestamp: 1, Value: 1}, prompb.Sample{Timestamp: 2, Value: 2})), "a")
	sendTenant(t, url, v1, v1Request(v1Series("b_metric", prompb.Sample{Timestamp: 1, Value: 1})), "b")
	sendTenant(t, url, v1, v1Request(v1Series("none_metric", prompb.Sample{Timestamp: 1, Value: 1})))
	sendTenant(t, url, v1, v1Request(v1Series("ab_metric", prompb.Sample{Timestamp: 1, Value: 1})), "a", "b")
	v2 := &writev2.Request{Symbols: []string{"", "__name__", "b_metric2", "job", "j"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Timestamp: 5, Value: 1}}}}}
	raw, err := v2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if code := sendTenant(t, url, "application/x-protobuf;proto="+rwproto.MessageV2, raw, "b"); code != http.StatusNoContent {
		t.Fatalf("2.0 push: status %d", code)
	}

	want := map[string]TenantStats{
		"a":   {Requests: 1, Samples: 2, Series: 1},
		"b":   {Requests: 2, Samples: 2, Series: 2},
		"":    {Requests: 1, Samples: 1, Series: 1},
		"a,b": {Requests: 1, Samples: 1, Series: 1},
	}
	if got := s.Stats().Tenants; !reflect.DeepEqual(got, want) {
		t.Fatalf("Stats().Tenants = %+v, want %+v", got, want)
	}
	wantB := []string{`{__name__="b_metric", job="j"}`, `{__name__="b_metric2", job="j"}`}
	if got := s.TenantSeries("b"); !reflect.DeepEqual(got, wantB) {
		t.Fatalf("TenantSeries(b) = %q, want %q", got, wantB)
	}
	if got := s.TenantSeries("c"); got != nil {
		t.Fatalf("TenantSeries(c) = %q, want none", got)
	}
	s.Reset()
	if got := s.Tenants(); got != nil {
		t.Fatalf("after Reset: %+v", got)
	}
}

func TestWithoutRecordTenantsNothingIsFiled(t *testing.T) {
	s, url := startTestSink(t)
	sendTenant(t, url, "application/x-protobuf;proto="+rwproto.MessageV1, v1Request(v1Series("m", prompb.Sample{Timestamp: 1})), "a")
	if got := s.Stats().Tenants; got != nil {
		t.Fatalf("Tenants = %+v, want none without RecordTenants", got)
	}
	if err := s.SetFault(Fault{Mode: "status", Status: 503, Tenant: "a", For: Duration(time.Second)}); err == nil {
		t.Fatal("a tenant fault on a sink that does not record tenants was accepted")
	}
}

func TestFaultForOneTenantServesTheOthers(t *testing.T) {
	s, url := startTestSink(t)
	s.RecordTenants("X-Scope-OrgID")
	if err := s.SetFault(Fault{Mode: "status", Status: 503, Tenant: "a", For: Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	v1 := "application/x-protobuf;proto=" + rwproto.MessageV1
	body := v1Request(v1Series("m", prompb.Sample{Timestamp: 1, Value: 1}))
	if code := sendTenant(t, url, v1, body, "a"); code != http.StatusServiceUnavailable {
		t.Fatalf("tenant a: status %d, want 503", code)
	}
	if code := sendTenant(t, url, v1, body, "b"); code != http.StatusNoContent {
		t.Fatalf("tenant b: status %d, want 204", code)
	}
	if code := sendTenant(t, url, v1, body); code != http.StatusNoContent {
		t.Fatalf("no tenant: status %d, want 204", code)
	}
	st := s.Stats()
	if st.Faulted != 1 || st.Tenants["a"].Requests != 0 || st.Tenants["b"].Samples != 1 {
		t.Fatalf("stats = %+v", st)
	}
}
