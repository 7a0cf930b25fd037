package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluicehq/sluice/extension/statusextension"
)

// kubeAPI is a real Kubernetes API server (bin/kube-apiserver, built by
// scripts/build-kube-apiserver, on Debian's etcd) on loopback, with RBAC
// on, an admin token and a service-account token issuer.
type kubeAPI struct {
	url    string
	caFile string
	admin  *kubernetes.Clientset
}

func startKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	apiserver := filepath.Join(repoRoot(t), "bin", "kube-apiserver")
	if _, err := os.Stat(apiserver); err != nil {
		t.Fatalf("%s is missing: `make kube-apiserver` builds it (`make e2e` does too)", apiserver)
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatal("etcd is not installed; `make test-deps` installs Debian's etcd-server")
	}
	dir := t.TempDir()
	client, peer, secure := freePort(t), freePort(t), freePort(t)
	startTool(t, dir, "etcd", etcd,
		"--name=default", "--data-dir="+filepath.Join(dir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", client),
		fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", client),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", peer),
		fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", peer),
		fmt.Sprintf("--initial-cluster=default=http://127.0.0.1:%d", peer))

	cert, key := selfSigned(t, dir)
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	saPriv, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		t.Fatal(err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "sa.key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saPriv})))
	writeFile(t, dir, "sa.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub})))
	const adminToken = "sluice-e2e-admin"
	writeFile(t, dir, "tokens.csv", adminToken+`,admin,admin,"system:masters"`+"\n")
	startTool(t, dir, "kube-apiserver", apiserver,
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", client),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", secure),
		"--tls-cert-file="+cert, "--tls-private-key-file="+key,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/24",
		// No kube-controller-manager here: nothing would reconcile the
		// apiserver's own endpoints, and no controller makes tokens.
		"--endpoint-reconciler-type=none")

	k := &kubeAPI{url: fmt.Sprintf("https://127.0.0.1:%d", secure), caFile: cert}
	cfg := &rest.Config{Host: k.url, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{CAFile: cert}}
	if k.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "kube-apiserver ready", func() bool {
		body, err := k.admin.RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		return err == nil && string(body) == "ok"
	})
	return k
}

// Prometheus' kubernetes_sd_configs against a real API server, authorized
// by exactly the RBAC the Helm chart renders: a ServiceAccount token
// without the chart's ClusterRoleBinding gets 403 and no targets; with the
// binding, a pod, an Endpoints and an EndpointSlice created through the API
// become targets with Prometheus' __meta_kubernetes_* labels, are scraped,
// and their samples reach the backend with labels relabelled from them.
func TestKubernetesDiscoveryAgainstAPIServer(t *testing.T) {
	k := startKubeAPI(t)
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// The application's metrics: a fixture on loopback. The pod, Service,
	// Endpoints and EndpointSlice below are at podIP (the API refuses
	// loopback addresses in Endpoints), with the fixture's port; the scrape
	// configs send the scrapes of what is discovered there to the fixture.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE app_requests_total counter\napp_requests_total{code=\"200\"} 42\n")
	}))
	t.Cleanup(app.Close)
	port := int32(app.Listener.Addr().(*net.TCPAddr).Port)
	const podIP = "192.0.2.10" // TEST-NET-1: never routed
	fixture := fmt.Sprintf("127.0.0.1:%d", port)

	// Sluice's config: one job per role. The token file is written once
	// the ServiceAccount exists.
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	sk, sinkAddr := startSink(t)
	health, status := freePort(t), freePort(t)
	sd := func(role string) string {
		return fmt.Sprintf(`
          kubernetes_sd_configs:
            - role: %s
              api_server: %s
              tls_config: {ca_file: %s}
              authorization: {credentials_file: %s}
              namespaces: {names: [apps]}
          relabel_configs:
            - source_labels: [__meta_kubernetes_namespace]
              target_label: namespace
            - source_labels: [__meta_kubernetes_pod_name]
              target_label: pod
            - target_label: __address__
              replacement: %s`, role, k.url, k.caFile, tokenFile, fixture)
	}
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: pods
          scrape_interval: 1s%s
        - job_name: endpoints
          scrape_interval: 1s%s
        - job_name: endpointslices
          scrape_interval: 1s%s
exporters:
  remote_write:
    endpoint: http://%s/api/v1/write
    queue:
      directory: %s
processors:
  batch:
    timeout: 200ms
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
  status:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check, status]
  pipelines:
    metrics:
      receivers: [prometheus]
      processors: [batch]
      exporters: [remote_write]
`, sd("pod"), sd("endpoints"), sd("endpointslice"), sinkAddr, filepath.Join(dir, "queue"), health, status))

	// The chart rendered for that config, installed in namespace monitoring.
	out, err := helmTemplate(t, "--namespace", "monitoring", "--set", "rbac.create=true", "--set-file", "config="+cfg)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	r := decodeRender(t, out)
	if len(r.serviceAccounts) != 1 || len(r.roles) != 1 || len(r.bindings) != 1 {
		t.Fatalf("render: accounts %v, roles %v, bindings %v", r.serviceAccounts, r.roles, r.bindings)
	}
	for _, ns := range []string{"monitoring", "apps"} {
		must(k.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	}
	// No controller manager runs, so the "default" account pods get is made by hand.
	must(k.admin.CoreV1().ServiceAccounts("apps").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}))
	sa := r.serviceAccounts[0]
	must(k.admin.CoreV1().ServiceAccounts("monitoring").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}))
	tr, err := k.admin.CoreV1().ServiceAccounts("monitoring").CreateToken(ctx, sa,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "token", tr.Status.Token)

	pod, err := k.admin.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "registry.invalid/web:1",
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: port}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No kubelet either: the pod's status (its IP, running, ready) is set as one would.
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}}, HostIP: podIP,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	}
	must(k.admin.CoreV1().Pods("apps").UpdateStatus(ctx, pod, metav1.UpdateOptions{}))
	must(k.admin.CoreV1().Services("apps").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "metrics", Port: port}}},
	}, metav1.CreateOptions{}))
	podRef := &corev1.ObjectReference{Kind: "Pod", Namespace: "apps", Name: "web-0", UID: pod.UID}
	must(k.admin.CoreV1().Endpoints("apps").Create(ctx, &corev1.Endpoints{ //nolint:staticcheck // the endpoints role reads v1 Endpoints
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Subsets: []corev1.EndpointSubset{{ //nolint:staticcheck
			Addresses: []corev1.EndpointAddress{{IP: podIP, TargetRef: podRef}},
			Ports:     []corev1.EndpointPort{{Name: "metrics", Port: port}}, //nolint:staticcheck
		}},
	}, metav1.CreateOptions{}))
	must(k.admin.DiscoveryV1().EndpointSlices("apps").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{podIP}, TargetRef: podRef,
			Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: new("metrics"), Port: new(port)}},
	}, metav1.CreateOptions{}))

	p := startSluice(t, cfg)
	p.waitHealthy(t, health, time.Minute, "sluice")
	base := fmt.Sprintf("http://127.0.0.1:%d/api/v1/status", status)
	targets := func() []statusextension.Target {
		var snap statusextension.Snapshot
		if err := getJSON(base, &snap); err != nil {
			return nil
		}
		return snap.Targets
	}

	// Without the chart's ClusterRoleBinding the account may not list
	// anything: the API answers 403, which client-go logs into Sluice's
	// log (not klog's own format on stderr), and nothing is discovered.
	forbidden := fmt.Sprintf(`User "system:serviceaccount:monitoring:%s" cannot list resource "pods"`, sa)
	var logged string
	waitFor(t, time.Minute, "the API server's 403 in sluice's log", func() bool {
		for _, line := range strings.Split(p.out.String(), "\n") {
			// the log's fields are JSON: quotes in values are escaped
			if line = strings.ReplaceAll(line, `\"`, `"`); strings.Contains(line, forbidden) {
				logged = line
				return true
			}
		}
		return false
	})
	if !strings.Contains(logged, "\terror\t") || !strings.Contains(logged, `"component": "k8s_client_runtime"`) {
		t.Errorf("the 403 is not an error of component k8s_client_runtime in the collector's log: %s", logged)
	}
	if tg := targets(); len(tg) != 0 {
		t.Fatalf("targets without RBAC: %+v", tg)
	}

	// The chart's ClusterRole and binding, as rendered.
	for name, rules := range r.roles {
		must(k.admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}))
	}
	b := r.bindings[0]
	b.ObjectMeta = metav1.ObjectMeta{Name: b.Name}
	must(k.admin.RbacV1().ClusterRoleBindings().Create(ctx, &b, metav1.CreateOptions{}))

	want := map[string]map[string]string{
		"pods": {
			"__meta_kubernetes_namespace": "apps", "__meta_kubernetes_pod_name": "web-0",
			"__meta_kubernetes_pod_ip": podIP, "__meta_kubernetes_pod_label_app": "web",
			"__meta_kubernetes_pod_container_name": "web", "__meta_kubernetes_pod_container_port_name": "metrics",
			"__meta_kubernetes_pod_phase": "Running", "__meta_kubernetes_pod_ready": "true",
			"__meta_kubernetes_pod_uid": string(pod.UID),
		},
		"endpoints": {
			"__meta_kubernetes_namespace": "apps", "__meta_kubernetes_endpoints_name": "web",
			"__meta_kubernetes_service_name": "web", "__meta_kubernetes_service_label_app": "web",
			"__meta_kubernetes_endpoint_port_name": "metrics", "__meta_kubernetes_endpoint_ready": "true",
			"__meta_kubernetes_endpoint_address_target_kind": "Pod", "__meta_kubernetes_endpoint_address_target_name": "web-0",
			"__meta_kubernetes_pod_name": "web-0", "__meta_kubernetes_pod_label_app": "web",
		},
		"endpointslices": {
			"__meta_kubernetes_namespace": "apps", "__meta_kubernetes_endpointslice_name": "web-1",
			"__meta_kubernetes_service_name": "web", "__meta_kubernetes_endpointslice_port_name": "metrics",
			"__meta_kubernetes_endpointslice_endpoint_conditions_ready": "true",
			"__meta_kubernetes_endpointslice_address_target_kind":       "Pod", "__meta_kubernetes_endpointslice_address_target_name": "web-0",
			"__meta_kubernetes_pod_name": "web-0",
		},
	}
	discovered := fmt.Sprintf("%s:%d", podIP, port)
	var got []statusextension.Target
	waitFor(t, 90*time.Second, "a scraped target from each role", func() bool {
		got = targets()
		up := map[string]bool{}
		for _, tg := range got {
			up[tg.Job] = up[tg.Job] || (tg.Health == "up" && hasPair(tg.DiscoveredLabels, "__address__", discovered))
		}
		return up["pods"] && up["endpoints"] && up["endpointslices"]
	})
	for _, tg := range got {
		for name, value := range want[tg.Job] {
			if !hasPair(tg.DiscoveredLabels, name, value) {
				t.Errorf("job %s: discovered labels lack %s=%q: %v", tg.Job, name, value, tg.DiscoveredLabels)
			}
		}
		if !hasPair(tg.Labels, "pod", "web-0") || !hasPair(tg.Labels, "namespace", "apps") {
			t.Errorf("job %s: target labels %v lack pod and namespace", tg.Job, tg.Labels)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d targets, want one per role: %+v", len(got), got)
	}
	for _, job := range []string{"endpoints", "endpointslices", "pods"} {
		series := fmt.Sprintf(`{__name__="app_requests_total", code="200", instance="%s", job="%s", namespace="apps", pod="web-0"}`, fixture, job)
		waitFor(t, 30*time.Second, "samples of "+series+" at the backend", func() bool {
			s := sk.Samples(series)
			return len(s) > 0 && s[len(s)-1].V == 42
		})
	}
	t.Logf("3 roles discovered through %s after a 403 without RBAC; %d series at the sink", k.url, len(sk.Series()))
}
