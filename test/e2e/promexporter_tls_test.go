package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 (its own CA) and its key
// into dir and returns their paths.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "tls.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "tls.key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

// The exporter's server block is the collector's: Debian's Prometheus
// scrapes /metrics over TLS with basic auth (the basicauth extension
// checking it) and stores the fixture's series; without credentials, or
// over plain HTTP, a scraper gets nothing.
func TestPrometheusExporterTLSAndAuth(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed; `make test` installs Debian's package")
	}
	fixture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "# TYPE fixture_value gauge\nfixture_value{k=\"v\"} 42\n")
	}))
	t.Cleanup(fixture.Close)
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	exportPort, health := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: fixture
          scrape_interval: 1s
          static_configs: [{targets: [%q]}]
exporters:
  prometheus:
    endpoint: 127.0.0.1:%d
    tls:
      cert_file: %s
      key_file: %s
    auth:
      authenticator: basicauth/scrapers
extensions:
  basicauth/scrapers:
    htpasswd:
      inline: |
        prometheus:s3cret
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check, basicauth/scrapers]
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [prometheus]
`, strings.TrimPrefix(fixture.URL, "http://"), exportPort, certFile, keyFile, health))
	startSluice(t, cfg).waitHealthy(t, health, 60*time.Second, "sluice")

	s, sinkAddr := startSink(t)
	startPrometheusAgent(t, promBin, filepath.Join(dir, "prometheus"), "agent", fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: %s
    honor_labels: true
    scheme: https
    tls_config:
      ca_file: %s
    basic_auth:
      username: prometheus
      password: s3cret
    static_configs:
      - targets: ["127.0.0.1:%d"]
remote_write:
  - url: http://%s/api/v1/write
`, exportJob, certFile, exportPort, sinkAddr))

	want := fmt.Sprintf(`{__name__="fixture_value", instance=%q, job="fixture", k="v"}`, strings.TrimPrefix(fixture.URL, "http://"))
	up := fmt.Sprintf(`{__name__="up", instance="127.0.0.1:%d", job=%q}`, exportPort, exportJob)
	waitFor(t, 60*time.Second, "the fixture's series stored by Prometheus through TLS and basic auth", func() bool {
		return len(s.Samples(want)) > 0
	})
	for _, p := range s.Samples(want) {
		if p.V != 42 {
			t.Errorf("%s = %v, want 42", want, p.V)
		}
	}
	if ups := s.Samples(up); len(ups) == 0 || ups[len(ups)-1].V != 1 {
		t.Errorf("Prometheus' up for Sluice: %v", ups)
	}

	// The same server refuses a client without credentials, and plain HTTP.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(certFile)
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("reading %s: %v", certFile, err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	url := fmt.Sprintf("https://127.0.0.1:%d/metrics", exportPort)
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: %s, want 401", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("prometheus", "wrong")
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("with a wrong password: %s, want 401", resp.Status)
	}
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", exportPort)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200: TLS not enforced")
		}
	}
}
