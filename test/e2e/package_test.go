package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The files both packages install besides parent directories, with the
// mode, owner and group each one must have.
type pkgFile struct {
	path, perms, owner, group string
}

var debFiles = []pkgFile{
	{"/usr/bin/sluice", "-rwxr-xr-x", "root", "root"},
	{"/lib/systemd/system/sluice.service", "-rw-r--r--", "root", "root"},
	{"/etc/sluice/config.yaml", "-rw-r-----", "root", "sluice"},
	{"/etc/default/sluice", "-rw-r--r--", "root", "root"},
	{"/etc/sluice", "drwxr-xr-x", "root", "root"},
	{"/etc/sluice/targets", "drwxr-xr-x", "root", "root"},
	{"/var/lib/sluice", "drwxr-x---", "sluice", "sluice"},
}

// buildPackages runs `make package-files` for the binary under test, as
// `make package` does after `make build`, and returns the .deb and the .rpm.
func buildPackages(t *testing.T, dir string, makeArgs ...string) (deb, rpm string) {
	t.Helper()
	args := append([]string{"-C", repoRoot(t), "--no-print-directory", "package-files",
		"SLUICE=" + sluiceBin(t), "PKG_DIR=" + dir}, makeArgs...)
	if out, err := exec.Command("make", args...).CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, ext := range []string{"deb", "rpm"} {
		found, _ := filepath.Glob(filepath.Join(dir, "*."+ext))
		if len(found) != 1 {
			t.Fatalf("make package-files wrote %d .%s files to %s, want 1", len(found), ext, dir)
		}
		if ext == "deb" {
			deb = found[0]
		} else {
			rpm = found[0]
		}
	}
	return deb, rpm
}

// run runs a command and fails the test with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// debStatus is dpkg's state of the sluice package ("" when dpkg knows none).
func debStatus() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", "sluice").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// noSluiceHere fails unless this machine has no trace of a Sluice install:
// the test installs the .deb globally and must neither overwrite nor, when
// it cleans up, delete someone's real /etc/sluice, queue or user.
func noSluiceHere(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("installing the .deb needs root (make test runs as root)")
	}
	if s := debStatus(); s != "" {
		t.Fatalf("dpkg already knows a sluice package (%s); this test installs and purges its own", s)
	}
	for _, p := range []string{"/usr/bin/sluice", "/etc/sluice", "/etc/default/sluice", "/var/lib/sluice"} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists: this test installs the .deb globally and would clash with it", p)
		}
	}
	if _, err := user.Lookup("sluice"); err == nil {
		t.Fatal("a sluice user exists: this test shows the package creating it, and deletes it afterwards")
	}
}

// cleanUpInstall purges whatever the test left installed, even after a
// failure, and removes the user and group the package made.
func cleanUpInstall(t *testing.T) {
	if debStatus() != "" {
		if out, err := exec.Command("dpkg", "--purge", "sluice").CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge sluice: %v\n%s", err, out)
		}
	}
	for _, p := range []string{"/etc/sluice", "/var/lib/sluice"} {
		_ = os.RemoveAll(p)
	}
	if _, err := user.Lookup("sluice"); err == nil {
		if out, err := exec.Command("userdel", "sluice").CombinedOutput(); err != nil {
			t.Errorf("cleanup: userdel sluice: %v\n%s", err, out)
		}
	}
	if _, err := user.LookupGroup("sluice"); err == nil {
		_ = exec.Command("groupdel", "sluice").Run()
	}
}

// checkInstalled compares the files on disk with want.
func checkInstalled(t *testing.T, want []pkgFile) {
	t.Helper()
	for _, f := range want {
		fi, err := os.Lstat(f.path)
		if err != nil {
			t.Errorf("installed package: %v", err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		owner, group := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name
		}
		if got := fi.Mode().String(); got != f.perms || owner != f.owner || group != f.group {
			t.Errorf("%s is %s %s:%s, want %s %s:%s", f.path, got, owner, group, f.perms, f.owner, f.group)
		}
	}
}

// gone fails for every path that still exists.
func gone(t *testing.T, when string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("after %s, %s still exists", when, p)
		}
	}
}

// present fails for every path that does not exist.
func present(t *testing.T, when string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("after %s, %s is gone: %v", when, p, err)
		}
	}
}

// asSluice is a command run as the package's sluice user.
func asSluice(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	u, err := user.Lookup("sluice")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd
}

// systemUser checks the sluice account: a system UID, no login shell, its
// home the queue directory.
func systemUser(t *testing.T) {
	t.Helper()
	entry := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "sluice")), ":")
	if len(entry) != 7 {
		t.Fatalf("getent passwd sluice: %q", entry)
	}
	uid, _ := strconv.Atoi(entry[2])
	if uid <= 0 || uid >= 1000 {
		t.Errorf("sluice has UID %d, want a system UID (1-999)", uid)
	}
	if entry[5] != "/var/lib/sluice" || entry[6] != "/usr/sbin/nologin" {
		t.Errorf("sluice has home %s and shell %s, want /var/lib/sluice and /usr/sbin/nologin", entry[5], entry[6])
	}
}

// The .deb as a user gets it: installed with dpkg on this (non-systemd)
// machine, the installed binary validating the installed config and running
// as the installed unit runs it, an upgrade keeping a local config edit,
// then dpkg -r and dpkg -P (purge) with what each leaves behind. The .rpm
// of the same build is read with rpm (Debian's): files, modes, owners,
// config flags, scriptlets.
func TestPackages(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb", "rpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (scripts/install-test-deps installs rpm; dpkg comes with Debian)", tool)
		}
	}
	dir := t.TempDir()
	deb, rpm := buildPackages(t, filepath.Join(dir, "v1"))
	t.Run("rpm", func(t *testing.T) { checkRPM(t, rpm) })
	t.Run("deb", func(t *testing.T) {
		// A second, newer build of the same binary, for the upgrade.
		deb2, _ := buildPackages(t, filepath.Join(dir, "v2"), "PKG_VERSION=99.0.0")
		checkDeb(t, deb, deb2)
	})
}

func checkDeb(t *testing.T, deb, deb2 string) {
	noSluiceHere(t)
	t.Cleanup(func() { cleanUpInstall(t) })

	run(t, "dpkg", "-i", deb)
	if s := debStatus(); !strings.HasPrefix(s, "ii ") {
		t.Fatalf("after dpkg -i, dpkg reports %q, want installed (ii)", s)
	}
	systemUser(t)
	checkInstalled(t, debFiles)
	conffiles := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "sluice")
	for _, c := range []string{"/etc/sluice/config.yaml", "/etc/default/sluice"} {
		if !strings.Contains(conffiles, " "+c+" ") {
			t.Errorf("%s is not a conffile of the package; conffiles:\n%s", c, conffiles)
		}
	}
	// The config is readable only by root and the sluice group: validate it
	// as the user the unit runs as.
	if out, err := asSluice(t, "/usr/bin/sluice", "validate", "--config", "/etc/sluice/config.yaml").CombinedOutput(); err != nil {
		t.Fatalf("/usr/bin/sluice validate --config /etc/sluice/config.yaml (as sluice): %v\n%s", err, out)
	}
	runInstalledUnit(t)

	// Upgrade: a local edit of the config survives, and the unit keeps its settings file.
	edit := "\n# edited on this host\n"
	f, err := os.OpenFile("/etc/sluice/config.yaml", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(edit); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "dpkg", "-i", deb2)
	if s := debStatus(); s != "ii  99.0.0" {
		t.Fatalf("after upgrading, dpkg reports %q, want ii  99.0.0", s)
	}
	if raw, err := os.ReadFile("/etc/sluice/config.yaml"); err != nil || !strings.HasSuffix(string(raw), edit) {
		t.Errorf("the upgrade replaced the edited /etc/sluice/config.yaml (err %v)", err)
	}
	gone(t, "the upgrade", "/etc/sluice/config.yaml.dpkg-new", "/etc/sluice/config.yaml.dpkg-dist")
	checkInstalled(t, debFiles)

	// dpkg -r: program and unit go; config files, the queue (data not yet
	// delivered) and the user stay.
	run(t, "dpkg", "-r", "sluice")
	if s := debStatus(); !strings.HasPrefix(s, "rc ") {
		t.Errorf("after dpkg -r, dpkg reports %q, want config-files (rc)", s)
	}
	gone(t, "dpkg -r", "/usr/bin/sluice", "/lib/systemd/system/sluice.service")
	present(t, "dpkg -r", "/etc/sluice/config.yaml", "/etc/default/sluice", "/var/lib/sluice/queue")

	// dpkg -P: config files and the queue go too; the system user stays.
	run(t, "dpkg", "-P", "sluice")
	if s := debStatus(); s != "" && !strings.HasPrefix(s, "un ") && !strings.HasPrefix(s, "pn ") {
		t.Errorf("after dpkg -P, dpkg reports %q, want not installed", s)
	}
	gone(t, "dpkg -P", "/etc/sluice", "/etc/default/sluice", "/var/lib/sluice")
	if _, err := user.Lookup("sluice"); err != nil {
		t.Errorf("after dpkg -P the sluice user is gone (%v); the package keeps it, as documented", err)
	}
}

// runInstalledUnit runs the installed binary as the installed unit does
// (ExecStart with /etc/default/sluice, as user sluice, in its working
// directory), its gateway a recording sink and its listeners on free ports:
// an OTLP gauge must reach the sink through the queue in /var/lib/sluice.
func runInstalledUnit(t *testing.T) {
	t.Helper()
	unit := unitFile(t, "/lib/systemd/system/sluice.service")
	env := envFile(t, unit["EnvironmentFile"])
	if env["CONFIG_FILE"] != "/etc/sluice/config.yaml" {
		t.Errorf("%s sets CONFIG_FILE=%q, want /etc/sluice/config.yaml", unit["EnvironmentFile"], env["CONFIG_FILE"])
	}
	s, sinkAddr := startSink(t)
	health, otlp := freePort(t), freePort(t)
	env["SLUICE_GATEWAYS"] = fmt.Sprintf("[http://%s/api/v1/write]", sinkAddr)
	env["SLUICE_HEALTH_LISTEN"] = fmt.Sprintf("127.0.0.1:%d", health)
	env["SLUICE_OTLP_LISTEN"] = fmt.Sprintf("127.0.0.1:%d", otlp)
	env["SLUICE_TELEMETRY_PORT"] = strconv.Itoa(freePort(t))

	argv := expand(unit["ExecStart"], env)
	cmd := asSluice(t, argv[0], argv[1:]...)
	cmd.Dir = unit["WorkingDirectory"]
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	sort.Strings(cmd.Env)
	p := &process{cmd: cmd, out: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("the installed sluice did not stop within 15 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("installed sluice's output:\n%s", p.out.String())
		}
	}
	// Stopped before dpkg removes the binary, and on any failure.
	defer stop()
	p.waitHealthy(t, health, 60*time.Second, "the installed sluice")
	sendOTLP(t, otlp, gauge("via_package", 3))
	// Three series of one point each, by remote write.
	waitFor(t, 20*time.Second, "the OTLP gauge at the gateway sink", func() bool { return s.Distinct("via_package") == 3 })
	stop()
	checkInstalled(t, []pkgFile{{"/var/lib/sluice/queue", "drwxr-x---", "sluice", "sluice"}})
}
