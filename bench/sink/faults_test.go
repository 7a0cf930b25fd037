package sink

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

func TestFaultStatusWithRetryAfterThenRecovery(t *testing.T) {
	s, url := startTestSink(t)
	if err := s.SetFault(Fault{Mode: "status", Status: 429, RetryAfter: "7", For: Duration(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	body := v1Request(v1Series("a", prompb.Sample{Timestamp: 1000, Value: 1}))
	resp := sendRW(t, url, "", body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("during the fault: status %d Retry-After %q, want 429 and 7", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	time.Sleep(400 * time.Millisecond)
	if resp := sendRW(t, url, "", body); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after the fault: status %d, want 204", resp.StatusCode)
	}
	st := s.Stats()
	if st.Faulted != 1 || st.RemoteWrite.Samples != 1 || st.RemoteWrite.Duplicates != 0 {
		t.Fatalf("stats = %+v: the faulted request must not be recorded", st)
	}
}

func TestFaultHangHoldsUntilClientGivesUp(t *testing.T) {
	s, url := startTestSink(t)
	if err := s.SetFault(Fault{Mode: "hang", For: Duration(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, err := client.Post(url+"/api/v1/write", "application/x-protobuf", bytes.NewReader(nil))
	if err == nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("hang: err=%v after %s, want a client timeout", err, time.Since(start))
	}
	s.ClearFault()
	if resp := sendRW(t, url, "", v1Request(v1Series("a", prompb.Sample{Timestamp: 1}))); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after ClearFault: status %d", resp.StatusCode)
	}
}

func TestFaultCloseDropsConnection(t *testing.T) {
	s, url := startTestSink(t)
	if err := s.SetFault(Fault{Mode: "close", For: Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	_, err := http.Post(url+"/api/v1/write", "application/x-protobuf", bytes.NewReader([]byte("x")))
	if err == nil {
		t.Fatal("close fault: request succeeded, want a connection error")
	}
	if st := s.Stats(); st.Faulted != 1 {
		t.Fatalf("faulted = %d, want 1", st.Faulted)
	}
}

func TestFaultSlowDelaysButAccepts(t *testing.T) {
	s, url := startTestSink(t)
	if err := s.SetFault(Fault{Mode: "slow", Delay: Duration(150 * time.Millisecond), For: Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp := sendRW(t, url, "", v1Request(v1Series("a", prompb.Sample{Timestamp: 1})))
	if resp.StatusCode != http.StatusNoContent || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("slow: status %d after %s, want 204 after >=150ms", resp.StatusCode, time.Since(start))
	}
	if st := s.Stats(); st.RemoteWrite.Samples != 1 || st.Faulted != 0 {
		t.Fatalf("stats = %+v, want the sample recorded", st)
	}
}

func TestFaultOverHTTPAndValidation(t *testing.T) {
	s, url := startTestSink(t)
	resp, err := http.Post(url+"/fault", "application/json", bytes.NewReader([]byte(`{"mode":"status","status":503,"for":"1m"}`)))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /fault: %v %v", err, resp)
	}
	if r := sendRW(t, url, "", v1Request()); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want the injected 503", r.StatusCode)
	}
	resp, _ = http.Post(url+"/fault", "application/json", bytes.NewReader([]byte(`{"mode":"none"}`)))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("clearing: status %d", resp.StatusCode)
	}
	if r := sendRW(t, url, "", v1Request()); r.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d after clearing, want 204", r.StatusCode)
	}
	for _, bad := range []Fault{
		{Mode: "status", Status: 200, For: Duration(time.Second)},
		{Mode: "slow", For: Duration(time.Second)},
		{Mode: "explode", For: Duration(time.Second)},
		{Mode: "hang"},
	} {
		if err := s.SetFault(bad); err == nil {
			t.Errorf("SetFault(%+v) accepted", bad)
		}
	}
}
