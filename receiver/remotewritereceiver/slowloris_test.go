package remotewritereceiver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
)

// slowClient connects to url's host and sends a push's request line and
// headers (announcing a body of size bytes) and, if trickle, one byte of
// body every 100 ms; it returns the connection.
func slowClient(t *testing.T, url string, headers bool, size int, trickle bool) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	path := host[strings.Index(host, "/"):]
	host = host[:strings.Index(host, "/")]
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Encoding: snappy\r\nContent-Length: %d\r\n\r\n", path, host, ctV1, size)
	if !headers {
		head = head[:20] // the request line, cut short
	}
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if trickle {
		go func() {
			for range size {
				time.Sleep(100 * time.Millisecond)
				if _, err := conn.Write([]byte{0}); err != nil {
					return
				}
			}
		}()
	}
	return conn
}

// A client that sends its headers and then trickles the body is cut off
// after read_timeout with 408, counted; one that trickles its headers is
// disconnected after read_header_timeout.
func TestSlowClientsAreCutOff(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.ServerConfig.ReadTimeout = 500 * time.Millisecond
	cfg.ServerConfig.ReadHeaderTimeout = 300 * time.Millisecond
	url, tel := startReceiverTel(t, cfg, new(consumertest.MetricsSink))

	t.Run("body", func(t *testing.T) {
		conn := slowClient(t, url, true, 1000, true)
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's own bound
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		took := time.Since(start)
		t.Logf("answered %d %q after %s", resp.StatusCode, body, took.Round(time.Millisecond))
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "the body did not arrive within read_timeout (500ms)") {
			t.Fatalf("answer %d %q, want 408 naming read_timeout", resp.StatusCode, body)
		}
		if took > 5*time.Second {
			t.Fatalf("cut off after %s; read_timeout is 500ms", took)
		}
		if n := counted(t, tel, "otelcol_remote_write_receiver_over_limit_requests", "limit", "read_timeout"); n != 1 {
			t.Fatalf("over_limit_requests{limit=read_timeout} = %d, want 1", n)
		}
	})
	t.Run("headers", func(t *testing.T) {
		conn := slowClient(t, url, false, 0, false)
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(make([]byte, 1024))
		took := time.Since(start)
		if err == nil {
			// Go answers a request cut short with 400 or closes.
			t.Logf("answered %d bytes after %s", n, took)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("still connected after %s; read_header_timeout is 300ms", took)
		}
		if took > 5*time.Second {
			t.Fatalf("disconnected after %s; read_header_timeout is 300ms", took)
		}
	})
}

// Beyond max_concurrent_requests a push is answered 503 with Retry-After at
// once (counted), while the ones in flight go on; a slot is free again once
// a push is done.
func TestMaxConcurrentRequests(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxConcurrentRequests = 1
	sink := new(consumertest.MetricsSink)
	url, tel := startReceiverTel(t, cfg, sink)
	good := snappyOf(t, requestV1(inputSeries()))

	// A slow push holds the one slot while its body trickles in.
	conn := slowClient(t, url, true, 5, true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, hdr, body := push(t, url, http.MethodPost, ctV1, "snappy", good)
		if status == http.StatusServiceUnavailable {
			if hdr.Get("Retry-After") != "1" || !strings.Contains(body, "max_concurrent_requests (1) pushes are being taken already; retry later") {
				t.Fatalf("503 with Retry-After %q, %q", hdr.Get("Retry-After"), body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow push never held the slot: %d %q", status, body)
		}
		time.Sleep(10 * time.Millisecond) // the slow push is not in yet
	}
	if n := counted(t, tel, "otelcol_remote_write_receiver_over_limit_requests", "limit", "max_concurrent_requests"); n < 1 {
		t.Fatal("the refusal was not counted")
	}
	if sink.DataPointCount() != 0 {
		t.Fatal("a refused push reached the pipeline")
	}
	// The slow push ends (five zero bytes do not decode: 400), and frees it.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the slow push: %v %v", resp, err)
	}
	if status, _, body := push(t, url, http.MethodPost, ctV1, "snappy", good); status != http.StatusNoContent {
		t.Fatalf("after the slow push: %d %q", status, body)
	}
}
