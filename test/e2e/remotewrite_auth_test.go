package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// OTLP in, remote write out, through the collector's auth and headers: the
// basicauth extension signs every request, the tenant header goes along,
// reserved headers are the exporter's, OTLP resource attributes become
// job/instance and a target_info series, and names follow the OTLP rules.
func TestRemoteWriteAuthTenantAndOTLPNaming(t *testing.T) {
	s, _ := startSink(t)
	var mu sync.Mutex
	var seen []http.Header
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		s.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	dir := t.TempDir()
	otlp, health := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  remote_write:
    endpoint: http://%s/api/v1/write
    auth:
      authenticator: basicauth/backend
    headers:
      X-Scope-OrgID: team-a
    target_info:
      enabled: true
    add_metric_suffixes: true
    queue:
      directory: %s
extensions:
  basicauth/backend:
    client_auth:
      username: sluice
      password: s3cret
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [basicauth/backend, health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [remote_write]
`, otlp, ln.Addr(), filepath.Join(dir, "queue"), health))
	startSluice(t, cfg).waitHealthy(t, health, 60*time.Second, "sluice")

	md := gauge("queue.depth", 2)
	res := md.ResourceMetrics().At(0).Resource().Attributes()
	res.PutStr("service.name", "checkout")
	res.PutStr("service.instance.id", "pod-7")
	res.PutStr("k8s.namespace.name", "shop")
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	m.SetUnit("By")
	now := pcommon.NewTimestampFromTime(time.Now())
	for _, dp := range m.Gauge().DataPoints().All() {
		dp.SetTimestamp(now)
	}
	sendOTLP(t, otlp, md)
	waitFor(t, 20*time.Second, "three series at the sink", func() bool { return len(s.Series()) >= 3 })

	want := []string{
		`{__name__="queue_depth_bytes", i="0", instance="pod-7", job="checkout"}`,
		`{__name__="queue_depth_bytes", i="1", instance="pod-7", job="checkout"}`,
		`{__name__="target_info", instance="pod-7", job="checkout", k8s_namespace_name="shop"}`,
	}
	if got := strings.Join(s.Series(), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("series at the backend:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("sluice:s3cret"))
	for i, h := range seen {
		for k, v := range map[string]string{
			"Authorization":                     auth,
			"X-Scope-Orgid":                     "team-a",
			"Content-Encoding":                  "snappy",
			"Content-Type":                      "application/x-protobuf;proto=prometheus.WriteRequest",
			"X-Prometheus-Remote-Write-Version": "0.1.0",
		} {
			if got := h.Get(k); got != v {
				t.Errorf("request %d: %s = %q, want %q", i, k, got, v)
			}
		}
		if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "sluice/") {
			t.Errorf("request %d: User-Agent %q, want sluice/<version>", i, ua)
		}
	}
}
