package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// docker runs the docker client against the engine of the test and returns
// its trimmed combined output.
type docker struct {
	t    *testing.T
	host string // DOCKER_HOST, "" for the client's default
}

func (d docker) cmd(args ...string) *exec.Cmd {
	c := exec.Command("docker", args...)
	c.Env = os.Environ()
	if d.host != "" {
		c.Env = append(c.Env, "DOCKER_HOST="+d.host)
	}
	return c
}

func (d docker) run(args ...string) (string, error) {
	out, err := d.cmd(args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (d docker) must(args ...string) string {
	d.t.Helper()
	out, err := d.run(args...)
	if err != nil {
		d.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// engine returns a client for a running Docker engine: the machine's own when
// one answers, else a dockerd this test starts (and stops) with its state in
// a temporary directory, no bridge and no iptables (containers use --network host).
func engine(t *testing.T) docker {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("no docker client on PATH; `make test` installs Debian's docker.io")
	}
	if d := (docker{t: t}); func() bool { _, err := d.run("info"); return err == nil }() {
		return d
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Fatal("no Docker engine runs and dockerd is not installed; `make test` installs Debian's docker.io")
	}
	dir, err := os.MkdirTemp("", "sluice-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dockerd,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "--host", "unix://"+sock,
		"--bridge=none", "--iptables=false", "--ip6tables=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := docker{t: t, host: "unix://" + sock}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("dockerd log (tail):\n%s", tail(string(log), 3000))
		}
		logf.Close()
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing the dockerd state: %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.run("info"); err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatal("the dockerd started by the test did not answer within 60 s")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// unmountUnder detaches every mount below dir, deepest first: dockerd leaves
// the namespace file exec/netns/default mounted when it stops, and a mounted
// file cannot be removed.
func unmountUnder(t *testing.T, dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var under []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			under = append(under, f[1])
		}
	}
	for i := len(under) - 1; i >= 0; i-- {
		if err := syscall.Unmount(under[i], syscall.MNT_DETACH); err != nil {
			t.Logf("unmounting %s: %v", under[i], err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// The image as users run it: built from the Dockerfile by `make docker-image`,
// started with `docker run --network host` and a mounted config. Data must flow
// through the container to a server on loopback, the process must run as UID
// 10001, and `docker stop` must end it cleanly within 10 s.
func TestContainerImage(t *testing.T) {
	sluiceBin(t) // the image is built from bin/sluice
	d := engine(t)

	build := exec.Command("make", "-C", repoRoot(t), "docker-image", "IMAGE=sluice:e2e")
	build.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	if d.host == "" {
		build.Env = os.Environ()
	}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make docker-image: %v\n%s", err, out)
	}
	if user := d.must("image", "inspect", "-f", "{{.Config.User}}", "sluice:e2e"); user != "10001:10001" {
		t.Errorf("image user is %q, want 10001:10001", user)
	}

	s, sinkAddr := startSink(t)
	otlpPort, healthPort := freePort(t), freePort(t)
	config := writeFile(t, t.TempDir(), "config.yaml", forwardConfig(otlpPort, sinkAddr, healthPort))

	name := fmt.Sprintf("sluice-e2e-%d", time.Now().UnixNano())
	d.must("run", "-d", "--name", name, "--network", "host",
		"-v", config+":/etc/sluice/config.yaml:ro", "sluice:e2e")
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := d.run("logs", name)
			t.Logf("container logs:\n%s", tail(logs, 4000))
		}
		_, _ = d.run("rm", "-f", name)
	})
	waitFor(t, 30*time.Second, "the container to become healthy", func() bool { return healthy(healthPort) })

	sendOTLP(t, otlpPort, gauge("through_the_container", 7))
	waitFor(t, 10*time.Second, "data at the sink", func() bool { return s.Stats().Metrics["through_the_container"] == 7 })

	pid := d.must("inspect", "-f", "{{.State.Pid}}", name)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("reading the container process status: %v", err)
	}
	if uid := field(string(status), "Uid:"); !strings.HasPrefix(uid, "10001\t10001") {
		t.Errorf("container process runs with Uid %q, want 10001", uid)
	}

	start := time.Now()
	d.must("stop", "--time", "10", name)
	took := time.Since(start)
	if code := d.must("inspect", "-f", "{{.State.ExitCode}}", name); code != "0" {
		t.Errorf("docker stop: exit code %s, want 0", code)
	}
	if took >= 10*time.Second {
		t.Errorf("docker stop took %s; Sluice must stop within 10 s of SIGTERM", took)
	}
	t.Logf("docker stop took %s", took.Round(time.Millisecond))
}

// field returns the value of a "Key:\tvalue" line of a /proc status file.
func field(status, key string) string {
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(line, key) {
			return strings.TrimSpace(strings.TrimPrefix(line, key))
		}
	}
	return ""
}
