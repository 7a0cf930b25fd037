package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// configsIn returns the config.yaml of every ConfigMap in a stream of
// Kubernetes documents, by ConfigMap name.
func configsIn(t *testing.T, manifests []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var doc struct {
			Kind     string                `yaml:"kind"`
			Metadata struct{ Name string } `yaml:"metadata"`
			Data     map[string]string     `yaml:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("manifests: %v", err)
		}
		if doc.Kind == "ConfigMap" && doc.Data["config.yaml"] != "" {
			out[doc.Metadata.Name] = doc.Data["config.yaml"]
		}
	}
}

// validate runs `sluice validate` on a config with the environment the
// manifests give the container.
func validate(t *testing.T, name, config string) {
	t.Helper()
	path := writeFile(t, t.TempDir(), "config.yaml", config)
	cmd := exec.Command(sluiceBin(t), "validate", "--config", path)
	cmd.Env = append(os.Environ(), "SLUICE_REMOTE_WRITE_URL=http://prometheus:9090/api/v1/write",
		"SLUICE_CLUSTER=test", "SLUICE_INSTANCE=node-1", "SLUICE_SHARD_COUNT=2", "SLUICE_SHARD_INDEX=0",
		"SLUICE_POD_NAME=sluice-0", "SLUICE_POD_IP=10.0.0.7", "SLUICE_CLUSTER_PEERS=sluice-cluster.default.svc:7946")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: sluice validate: %v\n%s", name, err, out)
	}
}

// The Sluice configs inside deploy/kubernetes are valid for this build.
func TestKubernetesManifestConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for name, cfg := range configsIn(t, raw) {
			validate(t, filepath.Base(f)+"/"+name, cfg)
			n++
		}
	}
	if n != 3 {
		t.Errorf("validated %d configs, want 3 (gateway, edge, sidecar)", n)
	}
}

// helmCases render the chart as each deployment pattern; every render must
// carry a valid config and the non-root security context.
var helmCases = map[string][]string{
	"gateway statefulset":   {},
	"edge daemonset":        {"--set", "controller=daemonset", "--set", "hostMetrics=true"},
	"daemonset queue only":  {"--set", "controller=daemonset"},
	"daemonset no hostPath": {"--set", "controller=daemonset", "--set-string", "queue.hostPath="},
	"deployment":            {"--set", "controller=deployment", "--set", "replicas=3"},
	"sharded scrapers":      {"--set", "shard.enabled=true", "--set-string", "config=" + shardedConfig},
	"clustered scrapers":    {"--set", "clustering.enabled=true", "--set", "replicas=3", "--set-string", "config=" + clusteredConfig},
	"clustered deployment":  {"--set", "controller=deployment", "--set", "clustering.enabled=true", "--set-string", "config=" + clusteredConfig},
	"clustered over TLS": {"--set", "clustering.enabled=true", "--set", "clustering.tls.secretName=sluice-cluster-tls",
		"--set-string", "config=" + strings.Replace(clusteredConfig, "      peers:", clusterTLSKeys+"      peers:", 1)},
	"edge daemonset with discovery": {"--set", "controller=daemonset", "--set", "hostMetrics=true", "--set", "rbac.create=true",
		"--set", "targets.configMap=sluice-targets", "--set-string", "config=" + discoveryConfig("pod")},
}

const shardedConfig = `receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: app
          static_configs: [{targets: ["app:8080"]}]
    shard:
      count: ${env:SLUICE_SHARD_COUNT}
      index: ${env:SLUICE_SHARD_INDEX}
exporters:
  remote_write:
    endpoint: http://prometheus:9090/api/v1/write
    queue:
      directory: /var/lib/sluice/queue
service:
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [remote_write]
`

// clusteredConfig is the prometheus receiver's cluster block as
// deploy/helm/sluice/values.yaml documents it for clustering.enabled.
const clusteredConfig = `receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: app
          static_configs: [{targets: ["app:8080"]}]
    cluster:
      enabled: true
      node_name: ${env:SLUICE_POD_NAME}
      listen_address: 0.0.0.0:7946
      advertise_address: ${env:SLUICE_POD_IP}:7946
      peers: ["${env:SLUICE_CLUSTER_PEERS}"]
exporters:
  remote_write:
    endpoint: http://prometheus:9090/api/v1/write
    queue:
      directory: /var/lib/sluice/queue
service:
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [remote_write]
`

// clusterTLSKeys are the cluster block's tls keys for the Secret that
// clustering.tls.secretName mounts.
const clusterTLSKeys = `      tls:
        ca_file: /etc/sluice/cluster-tls/ca.crt
        cert_file: /etc/sluice/cluster-tls/tls.crt
        key_file: /etc/sluice/cluster-tls/tls.key
        server_name_override: sluice-cluster
`

// helmTemplate renders deploy/helm/sluice with bin/helm (installed by
// `make test`) and the given arguments.
func helmTemplate(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	helm := filepath.Join(repoRoot(t), "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("%s is missing: `make helm` installs it (go install helm.sh/helm/v3/cmd/helm@v3.22.0)", helm)
	}
	chart := filepath.Join(repoRoot(t), "deploy", "helm", "sluice")
	return exec.Command(helm, append([]string{"template", "sluice", chart}, args...)...).CombinedOutput()
}

// TestHelmChart renders deploy/helm/sluice and validates what it renders.
func TestHelmChart(t *testing.T) {
	for name, args := range helmCases {
		t.Run(name, func(t *testing.T) {
			out, err := helmTemplate(t, args...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			for cm, cfg := range configsIn(t, out) {
				validate(t, cm, cfg)
			}
			for _, want := range []string{"runAsUser: 10001", "runAsNonRoot: true", "readOnlyRootFilesystem: true", "/var/lib/sluice"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("the render lacks %q", want)
				}
			}
			if name == "sharded scrapers" && !strings.Contains(string(out), "apps.kubernetes.io/pod-index") {
				t.Error("the shard index does not come from the pod ordinal")
			}
			if strings.HasPrefix(name, "clustered") {
				for _, want := range []string{"name: sluice-cluster", "publishNotReadyAddresses: true", "clusterIP: None",
					"fieldPath: status.podIP", `value: "sluice-cluster.default.svc:7946"`, "protocol: UDP"} {
					if !strings.Contains(string(out), want) {
						t.Errorf("the clustered render lacks %q", want)
					}
				}
			}
			if name == "clustered over TLS" {
				for _, want := range []string{"secretName: sluice-cluster-tls", "mountPath: /etc/sluice/cluster-tls", "ca_file: /etc/sluice/cluster-tls/ca.crt"} {
					if !strings.Contains(string(out), want) {
						t.Errorf("the TLS render lacks %q", want)
					}
				}
			}
		})
	}
	out, err := helmTemplate(t, "--set", "controller=deployment", "--set", "shard.enabled=true")
	if err == nil || !strings.Contains(string(out), "shard.enabled needs controller: statefulset") {
		t.Errorf("sharding without a statefulset: %v\n%s", err, out)
	}
	out, err = helmTemplate(t, "--set", "controller=daemonset", "--set", "clustering.enabled=true")
	if err == nil || !strings.Contains(string(out), "clustering.enabled needs controller: statefulset or deployment") {
		t.Errorf("clustering a daemonset: %v\n%s", err, out)
	}
	out, err = helmTemplate(t, "--set", "clustering.enabled=true", "--set", "shard.enabled=true")
	if err == nil || !strings.Contains(string(out), "clustering.enabled and shard.enabled are exclusive") {
		t.Errorf("clustering and sharding: %v\n%s", err, out)
	}
}

// rendered holds the objects of a render the RBAC checks look at.
type rendered struct {
	serviceAccounts []string
	roles           map[string][]rbacv1.PolicyRule
	bindings        []rbacv1.ClusterRoleBinding
	pod             corev1.PodSpec
}

func decodeRender(t *testing.T, manifests []byte) rendered {
	t.Helper()
	r := rendered{roles: map[string][]rbacv1.PolicyRule{}}
	for _, doc := range strings.Split(string(manifests), "\n---") {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := sigsyaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("render: %v", err)
		}
		switch head.Kind {
		case "ServiceAccount":
			r.serviceAccounts = append(r.serviceAccounts, head.Metadata.Name)
		case "ClusterRole":
			var cr rbacv1.ClusterRole
			if err := sigsyaml.UnmarshalStrict([]byte(doc), &cr); err != nil {
				t.Fatal(err)
			}
			r.roles[cr.Name] = cr.Rules
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := sigsyaml.UnmarshalStrict([]byte(doc), &b); err != nil {
				t.Fatal(err)
			}
			r.bindings = append(r.bindings, b)
		}
	}
	for _, p := range workloadPods(t, manifests) {
		r.pod = p.Spec
	}
	return r
}

// discoveryConfig is a config whose one scrape job discovers role, with
// the given attach_metadata kinds.
func discoveryConfig(role string, attach ...string) string {
	meta := ""
	for _, a := range attach {
		meta += fmt.Sprintf("\n                %s: true", a)
	}
	if meta != "" {
		meta = "\n              attach_metadata:" + meta
	}
	return fmt.Sprintf(`receivers:
  prometheus/k8s:
    config:
      scrape_configs:
        - job_name: k8s
          kubernetes_sd_configs:
            - role: %s%s
exporters:
  remote_write:
    endpoint: http://prometheus:9090/api/v1/write
    queue:
      directory: /var/lib/sluice/queue
service:
  pipelines:
    metrics:
      receivers: [prometheus/k8s]
      exporters: [remote_write]
`, role, meta)
}

// rule is one ClusterRole rule in the short form the cases below use.
func rule(group string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: resources, Verbs: []string{"get", "list", "watch"}}
}

// The chart's RBAC for kubernetes_sd_configs: the ClusterRole grants get,
// list and watch on exactly what Prometheus' discovery (discovery/kubernetes
// of prometheus v0.314.0: the informers each role starts) reads, is bound
// to the pod's ServiceAccount, and the token is mounted then and only then.
func TestHelmChartRBAC(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []rbacv1.PolicyRule // nil: no ClusterRole, no token
	}{
		{"no discovery", nil, nil},
		{"node", []string{"--set-string", "config=" + discoveryConfig("node")}, []rbacv1.PolicyRule{rule("", "nodes")}},
		{"pod", []string{"--set-string", "config=" + discoveryConfig("pod")}, []rbacv1.PolicyRule{rule("", "pods")}},
		{"service", []string{"--set-string", "config=" + discoveryConfig("service")}, []rbacv1.PolicyRule{rule("", "services")}},
		{"endpoints", []string{"--set-string", "config=" + discoveryConfig("endpoints")}, []rbacv1.PolicyRule{rule("", "endpoints", "pods", "services")}},
		{"endpointslice", []string{"--set-string", "config=" + discoveryConfig("endpointslice")},
			[]rbacv1.PolicyRule{rule("", "pods", "services"), rule("discovery.k8s.io", "endpointslices")}},
		{"ingress", []string{"--set-string", "config=" + discoveryConfig("ingress")}, []rbacv1.PolicyRule{rule("networking.k8s.io", "ingresses")}},
		{"pod with attach_metadata", []string{"--set-string", "config=" + discoveryConfig("pod", "node", "namespace", "deployment", "cronjob")},
			[]rbacv1.PolicyRule{rule("", "namespaces", "nodes", "pods"), rule("apps", "replicasets"), rule("batch", "jobs")}},
		{"existing ConfigMap", []string{"--set", "existingConfigMap=mine", "--set", "rbac.discoveryRoles={endpoints,node}"},
			[]rbacv1.PolicyRule{rule("", "endpoints", "nodes", "pods", "services")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.want != nil {
				args = append(args, "--set", "rbac.create=true")
			}
			out, err := helmTemplate(t, args...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			for cm, cfg := range configsIn(t, out) {
				validate(t, cm, cfg)
			}
			r := decodeRender(t, out)
			if !slices.Equal(r.serviceAccounts, []string{"sluice"}) || r.pod.ServiceAccountName != "sluice" {
				t.Errorf("service accounts %v, pod uses %q; want one, sluice, used by the pod", r.serviceAccounts, r.pod.ServiceAccountName)
			}
			token := r.pod.AutomountServiceAccountToken != nil && *r.pod.AutomountServiceAccountToken
			if token != (c.want != nil) {
				t.Errorf("the pod mounts its token: %v, want %v", token, c.want != nil)
			}
			if c.want == nil {
				if len(r.roles) != 0 || len(r.bindings) != 0 {
					t.Errorf("RBAC without discovery: %v %v", r.roles, r.bindings)
				}
				return
			}
			if got := r.roles["sluice-discovery"]; !reflect.DeepEqual(got, c.want) {
				t.Errorf("ClusterRole sluice-discovery rules:\n  %+v\nwant:\n  %+v", got, c.want)
			}
			if len(r.bindings) != 1 || r.bindings[0].RoleRef.Name != "sluice-discovery" || len(r.bindings[0].Subjects) != 1 ||
				r.bindings[0].Subjects[0].Kind != "ServiceAccount" || r.bindings[0].Subjects[0].Name != "sluice" || r.bindings[0].Subjects[0].Namespace != "default" {
				t.Errorf("ClusterRoleBinding: %+v, want sluice-discovery bound to ServiceAccount default/sluice", r.bindings)
			}
		})
	}

	// What the chart refuses, with the message a user reads.
	for _, c := range []struct {
		name, want string
		args       []string
	}{
		{"discovery without a token", "the config uses kubernetes_sd_configs (roles pod), which call the Kubernetes API: set rbac.create=true",
			[]string{"--set-string", "config=" + discoveryConfig("pod")}},
		{"rbac without discovery", "rbac.create: the config has no kubernetes_sd_configs and rbac.discoveryRoles is empty",
			[]string{"--set", "rbac.create=true"}},
		{"unknown role", `kubernetes_sd_configs role "pods" is not one of endpoints, endpointslice, ingress, node, pod, service`,
			[]string{"--set", "rbac.create=true", "--set", "rbac.discoveryRoles={pods}"}},
		{"targets twice", "targets: set configMap or hostPath, not both",
			[]string{"--set", "controller=daemonset", "--set", "targets.configMap=t", "--set", "targets.hostPath=/srv/targets"}},
	} {
		out, err := helmTemplate(t, c.args...)
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: helm template %v: err %v, want a failure with %q:\n%s", c.name, c.args, err, c.want, out)
		}
	}
	// Bring your own RBAC: the token without the chart's ClusterRole.
	out, err := helmTemplate(t, "--set-string", "config="+discoveryConfig("pod"), "--set", "automountServiceAccountToken=true")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	if r := decodeRender(t, out); len(r.roles) != 0 || r.pod.AutomountServiceAccountToken == nil || !*r.pod.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken=true with rbac.create=false: roles %v, token %v", r.roles, r.pod.AutomountServiceAccountToken)
	}
}

// The config and the file_sd targets are separate read-only mounts: the
// config at /etc/sluice/config (from the key existingConfigMapKey of an
// existing ConfigMap), the targets at /etc/sluice/targets from their own
// ConfigMap or, for a DaemonSet, a node directory.
func TestHelmChartMounts(t *testing.T) {
	for _, c := range []struct {
		name          string
		args          []string
		configMap     string
		key           string
		targetsVolume func(corev1.Volume) bool
	}{
		{"inline config, no targets", nil, "sluice", "config.yaml", nil},
		{"existing ConfigMap and key", []string{"--set", "existingConfigMap=mine", "--set", "existingConfigMapKey=sluice.yaml"}, "mine", "sluice.yaml", nil},
		{"targets ConfigMap", []string{"--set", "targets.configMap=my-targets"}, "sluice", "config.yaml",
			func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == "my-targets" }},
		{"targets on the node", []string{"--set", "controller=daemonset", "--set", "targets.hostPath=/srv/targets"}, "sluice", "config.yaml",
			func(v corev1.Volume) bool { return v.HostPath != nil && v.HostPath.Path == "/srv/targets" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := helmTemplate(t, c.args...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			spec := decodeRender(t, out).pod
			volumes := map[string]corev1.Volume{}
			for _, v := range spec.Volumes {
				volumes[v.Name] = v
			}
			cfg := volumes["config"].ConfigMap
			if cfg == nil || cfg.Name != c.configMap || len(cfg.Items) != 1 || cfg.Items[0].Key != c.key || cfg.Items[0].Path != "config.yaml" {
				t.Errorf("config volume %+v, want ConfigMap %s with key %s as config.yaml", volumes["config"], c.configMap, c.key)
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range spec.Containers[0].VolumeMounts {
				mounts[m.Name] = m
			}
			if m := mounts["config"]; m.MountPath != "/etc/sluice/config" || !m.ReadOnly ||
				!slices.Contains(spec.Containers[0].Args, "--config=/etc/sluice/config/config.yaml") {
				t.Errorf("config mount %+v, args %v", m, spec.Containers[0].Args)
			}
			m, mounted := mounts["targets"]
			if (c.targetsVolume != nil) != mounted {
				t.Fatalf("targets mounted: %v, want %v", mounted, c.targetsVolume != nil)
			}
			if mounted && (m.MountPath != "/etc/sluice/targets" || !c.targetsVolume(volumes["targets"])) {
				t.Errorf("targets mount %+v volume %+v", m, volumes["targets"])
			}
		})
	}
}
