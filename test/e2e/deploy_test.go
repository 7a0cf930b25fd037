package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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
		"SLUICE_CLUSTER=test", "SLUICE_INSTANCE=node-1", "SLUICE_SHARD_COUNT=2", "SLUICE_SHARD_INDEX=0")
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
		})
	}
	out, err := helmTemplate(t, "--set", "controller=deployment", "--set", "shard.enabled=true")
	if err == nil || !strings.Contains(string(out), "shard.enabled needs controller: statefulset") {
		t.Errorf("sharding without a statefulset: %v\n%s", err, out)
	}
}
