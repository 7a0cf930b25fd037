package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// testCA makes a CA and a member certificate (for 127.0.0.1, server and
// client use) signed by it, as the server and client TLS configs of a node.
func testCA(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cluster ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "member"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// Gossip over TLS: three members with certificates of one CA form a
// cluster, agree on owners and detect a failure as over UDP; a member with
// a certificate of another CA is not let in.
func TestNodesOverTLS(t *testing.T) {
	srv, cli := testCA(t)
	a, addrA, logA := startNodeTLS(t, "a", nil, srv, cli)
	defer a.Shutdown()
	b, _, _ := startNodeTLS(t, "b", []string{addrA}, srv, cli)
	defer b.Shutdown()
	c, _, _ := startNodeTLS(t, "c", []string{addrA}, srv, cli)
	waitUntil(t, 10*time.Second, "three active members over TLS", func() bool {
		now := time.Now()
		return activeNames(a, now) == "a,b,c" && activeNames(b, now) == "a,b,c" && activeNames(c, now) == "a,b,c"
	})
	at := time.Now()
	for _, k := range keys(500) {
		if o := a.View().Owner(k, at); b.View().Owner(k, at) != o || c.View().Owner(k, at) != o {
			t.Fatalf("key %x: members disagree over TLS", k)
		}
	}

	otherSrv, otherCli := testCA(t)
	x, _, _ := startNodeTLS(t, "x", []string{addrA}, otherSrv, otherCli)
	defer x.Shutdown()
	if x.joined.Load() {
		t.Error("a member with another CA's certificate joined")
	}
	if _, ok := logA.find(Joined, "x"); ok {
		t.Error("a saw a member with another CA's certificate join")
	}

	killed := time.Now()
	c.kill()
	bound := 2*testProbe + testFailure + time.Second
	waitUntil(t, bound, "c declared failed over TLS", func() bool { _, ok := logA.find(Failed, "c"); return ok })
	t.Logf("over TLS: c declared failed %s after it stopped (bound %s)", time.Since(killed).Round(time.Millisecond), bound)
}
