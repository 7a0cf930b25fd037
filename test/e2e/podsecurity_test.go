package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	sigsyaml "sigs.k8s.io/yaml"
)

// workloadPods decodes the pod template of every Deployment, StatefulSet and
// DaemonSet in a stream of manifests, by "Kind/name". Decoding is strict: a
// misspelt field (say `seccompProfle`) fails the test instead of being
// silently dropped and then missing from the checks.
func workloadPods(t *testing.T, manifests []byte) map[string]corev1.PodTemplateSpec {
	t.Helper()
	pods := map[string]corev1.PodTemplateSpec{}
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var node yaml.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			return pods
		} else if err != nil {
			t.Fatalf("manifests: %v", err)
		}
		raw, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Kind     string                `yaml:"kind"`
			Metadata struct{ Name string } `yaml:"metadata"`
		}
		if err := node.Decode(&head); err != nil {
			t.Fatal(err)
		}
		var obj interface{ template() corev1.PodTemplateSpec }
		switch head.Kind {
		case "Deployment":
			obj = &deployment{}
		case "StatefulSet":
			obj = &statefulSet{}
		case "DaemonSet":
			obj = &daemonSet{}
		default:
			continue
		}
		if err := sigsyaml.UnmarshalStrict(raw, obj); err != nil {
			t.Fatalf("%s/%s: %v", head.Kind, head.Metadata.Name, err)
		}
		pods[head.Kind+"/"+head.Metadata.Name] = obj.template()
	}
}

type (
	deployment  appsv1.Deployment
	statefulSet appsv1.StatefulSet
	daemonSet   appsv1.DaemonSet
)

func (d *deployment) template() corev1.PodTemplateSpec  { return d.Spec.Template }
func (s *statefulSet) template() corev1.PodTemplateSpec { return s.Spec.Template }
func (d *daemonSet) template() corev1.PodTemplateSpec   { return d.Spec.Template }

// forbidden is what the Pod Security Standards evaluator forbids in a pod
// at a level of the latest version: "reason (detail)" per failed check.
func forbidden(t *testing.T, eval policy.Evaluator, level api.Level, pod corev1.PodTemplateSpec) []string {
	t.Helper()
	var out []string
	for _, r := range eval.EvaluatePod(api.LevelVersion{Level: level, Version: api.LatestVersion()}, &pod.ObjectMeta, &pod.Spec) {
		if !r.Allowed {
			out = append(out, r.ForbiddenReason+" ("+r.ForbiddenDetail+")")
		}
	}
	slices.Sort(out)
	return out
}

// podProfile is what a workload must meet: what the evaluator forbids at
// baseline and at restricted (nil: nothing, the level is met).
type podProfile struct{ baseline, restricted []string }

var (
	// The gateway, sidecar and any Deployment or StatefulSet: "restricted".
	meetsRestricted = podProfile{}
	// A DaemonSet with its queue on the node: the hostPath volume, and the
	// init container that gives it to UID 10001 as root with CAP_CHOWN.
	queueOnNode = podProfile{
		baseline: []string{`hostPath volumes (volume "queue")`},
		// At restricted, the volume-type check replaces baseline's hostPath one.
		restricted: []string{
			`restricted volume types (volume "queue" uses restricted volume type "hostPath")`,
			`runAsNonRoot != true (container "queue-owner" must not set securityContext.runAsNonRoot=false)`,
			`runAsUser=0 (container "queue-owner" must not set runAsUser=0)`,
			`unrestricted capabilities (container "queue-owner" must not include "CHOWN" in securityContext.capabilities.add)`,
		},
	}
)

// hostAgent is queueOnNode plus what reading the node needs: the host's
// PID namespace and /proc, /sys and / mounted.
func hostAgent(hostPort bool) podProfile {
	volumes := `hostPath volumes (volumes "queue", "host-proc", "host-sys", "host-root")`
	types := `restricted volume types (volumes "queue", "host-proc", "host-sys", "host-root" use restricted volume type "hostPath")`
	if hostPort {
		volumes = `hostPath volumes (volumes "queue", "proc", "sys", "root")`
		types = `restricted volume types (volumes "queue", "proc", "sys", "root" use restricted volume type "hostPath")`
	}
	p := podProfile{baseline: []string{"host namespaces (hostPID=true)", volumes}}
	if hostPort {
		p.baseline = append(p.baseline, `hostPort (container "sluice" uses hostPort 4318)`)
	}
	p.restricted = slices.Concat([]string{"host namespaces (hostPID=true)", types}, queueOnNode.restricted[1:])
	if hostPort {
		p.restricted = append(p.restricted, `hostPort (container "sluice" uses hostPort 4318)`)
	}
	slices.Sort(p.baseline)
	slices.Sort(p.restricted)
	return p
}

// TestPodSecurityStandards evaluates every pod the Helm chart renders and
// the plain manifests hold with the Pod Security Admission's own evaluator
// (k8s.io/pod-security-admission/policy, the code the API server runs):
// Deployments and StatefulSets meet "restricted"; a DaemonSet is refused by
// exactly the checks its node access needs, and passes every other one.
// Every pod also mounts a service-account token only for discovery, and a
// hostPath queue always comes with the init container that hands it to Sluice.
func TestPodSecurityStandards(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]podProfile{
		"helm gateway statefulset":           {"StatefulSet/sluice": meetsRestricted},
		"helm deployment":                    {"Deployment/sluice": meetsRestricted},
		"helm sharded scrapers":              {"StatefulSet/sluice": meetsRestricted},
		"helm clustered scrapers":            {"StatefulSet/sluice": meetsRestricted},
		"helm clustered deployment":          {"Deployment/sluice": meetsRestricted},
		"helm clustered over TLS":            {"StatefulSet/sluice": meetsRestricted},
		"helm edge daemonset":                {"DaemonSet/sluice": hostAgent(false)},
		"helm daemonset queue only":          {"DaemonSet/sluice": queueOnNode},
		"helm daemonset no hostPath":         {"DaemonSet/sluice": meetsRestricted},
		"helm edge daemonset with discovery": {"DaemonSet/sluice": hostAgent(false)},
		"gateway.yaml":                       {"StatefulSet/sluice-gateway": meetsRestricted},
		"sidecar.yaml":                       {"Deployment/my-app": meetsRestricted},
		"edge-daemonset.yaml":                {"DaemonSet/sluice-edge": hostAgent(true)},
	}
	rendered := map[string][]byte{}
	for name, args := range helmCases {
		out, err := helmTemplate(t, args...)
		if err != nil {
			t.Fatalf("helm template %s: %v\n%s", name, err, out)
		}
		rendered["helm "+name] = out
	}
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rendered[filepath.Base(f)] = raw
	}
	if len(rendered) != len(want) {
		t.Errorf("%d sources, want %d: a new Helm case or manifest needs its expected profile here", len(rendered), len(want))
	}
	for source, manifests := range rendered {
		t.Run(source, func(t *testing.T) {
			pods := workloadPods(t, manifests)
			if len(pods) != len(want[source]) {
				t.Errorf("workloads %v, want those of %v", keys(pods), want[source])
			}
			for name, pod := range pods {
				profile, ok := want[source][name]
				if !ok {
					t.Errorf("%s: no expected profile", name)
					continue
				}
				for _, c := range []struct {
					level api.Level
					want  []string
				}{{api.LevelBaseline, profile.baseline}, {api.LevelRestricted, profile.restricted}} {
					if got := forbidden(t, eval, c.level, pod); !slices.Equal(got, c.want) {
						t.Errorf("%s at %s forbids:\n  %s\nwant:\n  %s", name, c.level, strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
					}
				}
				checkPodHygiene(t, name, pod.Spec, discovers(t, manifests))
			}
		})
	}
}

// discovers reports whether a Sluice config in the manifests uses
// kubernetes_sd_configs.
func discovers(t *testing.T, manifests []byte) bool {
	t.Helper()
	for _, cfg := range configsIn(t, manifests) {
		if strings.Contains(cfg, "kubernetes_sd_configs:") {
			return true
		}
	}
	return false
}

// checkPodHygiene: a service-account token exactly where the config uses
// kubernetes_sd_configs (the only API calls Sluice makes), from an account
// of its own, and the init container exactly where a hostPath queue is.
func checkPodHygiene(t *testing.T, name string, spec corev1.PodSpec, discovery bool) {
	t.Helper()
	token := spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken
	switch {
	case token && !discovery:
		t.Errorf("%s mounts a service-account token it does not use", name)
	case !token && discovery:
		t.Errorf("%s uses kubernetes_sd_configs without a service-account token", name)
	case token && (spec.ServiceAccountName == "" || spec.ServiceAccountName == "default"):
		t.Errorf("%s discovers with the namespace's default service account", name)
	}
	hostPathQueue := false
	for _, v := range spec.Volumes {
		if (v.Name == "queue" || v.Name == "sluice-queue") && v.HostPath != nil {
			hostPathQueue = true
		}
	}
	var owner *corev1.Container
	for i, c := range spec.InitContainers {
		if c.Name == "queue-owner" {
			owner = &spec.InitContainers[i]
		}
	}
	switch {
	case hostPathQueue && owner == nil:
		t.Errorf("%s: a hostPath queue without the queue-owner init container", name)
	case !hostPathQueue && len(spec.InitContainers) > 0:
		t.Errorf("%s: init containers %v without a hostPath queue", name, spec.InitContainers)
	case owner != nil:
		sc := owner.SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"CHOWN"}) {
			t.Errorf("%s: queue-owner must run as root with CAP_CHOWN only: %+v", name, sc)
		}
	}
}

// TestQueueOwnerInit runs the init container's command with busybox (the
// image it names) as root with CAP_CHOWN alone, as the container's security
// context gives it, on a root-owned queue directory holding an earlier
// root-owned queue: everything ends up owned by 10001:10001. Run again on
// the handed-over directory it changes nothing and succeeds.
func TestQueueOwnerInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the command runs as root with CAP_CHOWN only")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox is missing (apt-get install busybox; `make test-deps` installs it)")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatal("setpriv (util-linux) is missing")
	}
	pods := workloadPods(t, mustRead(t, filepath.Join(repoRoot(t), "deploy", "kubernetes", "edge-daemonset.yaml")))
	out, err := helmTemplate(t, "--set", "controller=daemonset")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	for k, v := range workloadPods(t, out) {
		pods["helm "+k] = v
	}
	// The applets the command calls, and nothing else, come from busybox.
	bin := t.TempDir()
	for _, applet := range []string{"sh", "stat", "find", "chown", "["} {
		if err := os.Symlink(busybox, filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	for name, pod := range pods {
		t.Run(name, func(t *testing.T) {
			c := pod.Spec.InitContainers[0]
			dir := filepath.Join(t.TempDir(), "var-lib-sluice")
			shard := filepath.Join(dir, "queue", "shard-0")
			if err := os.MkdirAll(shard, 0o750); err != nil {
				t.Fatal(err)
			}
			seg := filepath.Join(shard, "00000001.seg")
			if err := os.WriteFile(seg, []byte("x"), 0o640); err != nil {
				t.Fatal(err)
			}
			args := make([]string, len(c.Command))
			for i, a := range c.Command {
				args[i] = strings.ReplaceAll(a, "/var/lib/sluice", dir)
			}
			run := func() {
				cmd := exec.Command(setpriv, append([]string{"--bounding-set=-all,+chown", "--inh-caps=-all", "--"}, args...)...)
				cmd.Env = []string{"PATH=" + bin}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
			}
			run()
			for _, p := range []string{dir, filepath.Join(dir, "queue"), shard, seg} {
				if uid, gid := owner(t, p); uid != 10001 || gid != 10001 {
					t.Errorf("%s is owned by %d:%d, want 10001:10001", p, uid, gid)
				}
			}
			run()
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func owner(t *testing.T, path string) (uid, gid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}
