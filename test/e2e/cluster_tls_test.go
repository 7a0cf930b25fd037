package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// Gossip over TLS: two members with certificates of one CA (written by the
// test) form a cluster and share the 60 targets, each scraped once per
// interval. (That a certificate of another CA is refused is tested in
// internal/cluster, TestNodesOverTLS.)
func TestClusterTLS(t *testing.T) {
	r := newClusterRig(t)
	dir := t.TempDir()
	writeClusterCerts(t, dir, "ca", "member")
	r.extra = fmt.Sprintf(`      tls:
        ca_file: %[1]s/ca.crt
        cert_file: %[1]s/member.crt
        key_file: %[1]s/member.key
        server_name_override: sluice-cluster`, dir)
	r.start(0)
	r.start(1)
	owned := r.waitBalanced("60 targets owned by the 2 members over TLS")
	time.Sleep(3 * time.Second)
	from := time.Now()
	time.Sleep(8 * time.Second)
	rep := r.wantClean("2 members over TLS", from, time.Now().Add(-time.Second))
	t.Logf("over TLS: targets per member %v; %d series, %d gaps, %d doubles", owned, rep.series, rep.gaps, rep.doubles)
	for i := range 2 {
		if n := valueOf(ownMetrics(t, r.members[i].telemetry), "otelcol_prometheus_receiver_cluster_members", nil); n != 2 {
			r.errorf("m%d sees %v members, want 2", i, n)
		}
	}
}

// writeClusterCerts writes <ca>.crt and <member>.crt/.key in dir: a CA and
// a certificate for the name sluice-cluster (server and client use).
func writeClusterCerts(t *testing.T, dir, ca, member string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice cluster CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sluice-cluster"},
		DNSNames: []string{"sluice-cluster"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, ca+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, dir, member+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, dir, member+".key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
}
