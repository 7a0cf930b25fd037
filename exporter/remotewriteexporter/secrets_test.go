package remotewriteexporter

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicehq/sluice/internal/comptest"
)

// withSecrets puts a username, a password and an api_key in an endpoint URL.
func withSecrets(endpoint string) string {
	return strings.Replace(endpoint, "http://", "http://tenant-user:s3cretPass@", 1) + "?api_key=k3yValue"
}

var secrets = []string{"tenant-user", "s3cretPass", "k3yValue", "l0cationTok"}

// assertNoSecrets fails when a secret is in any log line (message or
// field) or any telemetry attribute value.
func assertNoSecrets(t *testing.T, r *running, logs *observer.ObservedLogs) {
	t.Helper()
	if logs.Len() == 0 {
		t.Fatal("nothing logged: the test did not exercise the logs")
	}
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("secret %q in a log line: %s", s, line)
			}
		}
	}
	var rm metricdata.ResourceMetrics
	if err := r.tel.Reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	dump := fmt.Sprintf("%+v", rm)
	for _, s := range secrets {
		if strings.Contains(dump, s) {
			t.Errorf("secret %q in the exporter's telemetry", s)
		}
	}
}

// The exporter run with credentials in its endpoint URL against failing
// backends of every kind logs none of them.
func TestNoSecretsInLogsOrTelemetry(t *testing.T) {
	closed := func() string { // a port nothing listens on: network errors quote the URL
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr + "/api/v1/write"
	}
	for _, tc := range []struct {
		name   string
		answer func(n int, r *http.Request, body []byte, w http.ResponseWriter) bool
		v2     bool
		wait   string // a log message snippet that shows the case ran
	}{
		{"network error", nil, false, "Remote write failing"},
		{"503", func(_ int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		}, false, "Remote write failing"},
		{"401", func(_ int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
			http.Error(w, "expired", http.StatusUnauthorized)
			return true
		}, false, "refuses the credentials"},
		{"redirect", func(_ int, r *http.Request, _ []byte, w http.ResponseWriter) bool {
			http.Redirect(w, r, "http://other.example/w?token=l0cationTok", http.StatusFound)
			return true
		}, false, "rejected by the backend"},
		{"2.0 fallback", func(_ int, _ *http.Request, _ []byte, w http.ResponseWriter) bool {
			w.WriteHeader(http.StatusNoContent)
			return true
		}, true, "does not take remote write 2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := closed()
			if tc.answer != nil {
				_, url = startCapture(t, tc.answer)
			}
			var logs *observer.ObservedLogs
			r := startExporterSet(t, withSecrets(url), "", func(cfg *Config) {
				cfg.Shards = 1
				if tc.v2 {
					cfg.ProtobufMessage = MessageV2
				}
			}, observed(&logs))
			if err := r.exp.ConsumeMetrics(context.Background(), gauges("j", 1000, 1, "a")); err != nil {
				t.Fatal(err)
			}
			comptest.WaitFor(t, 5*time.Second, "the log line", func() bool { return logs.FilterMessageSnippet(tc.wait).Len() > 0 })
			assertNoSecrets(t, r, logs)
		})
	}
}

// A config error quoting the endpoint does not print its secrets either.
func TestConfigErrorRedactsTheEndpoint(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.ClientConfig.Endpoint = "ftp://tenant-user:s3cretPass@h/w?api_key=k3yValue"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `endpoint: "ftp://REDACTED@h/w?api_key=REDACTED" is not an http or https URL`) {
		t.Fatalf("error %v, want the redacted URL", err)
	}
}
