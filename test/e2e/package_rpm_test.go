package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rpmFiles is what the .rpm installs: the same as the .deb, with the unit
// under /usr/lib, a drop-in pointing it at /etc/sysconfig/sluice, and that
// file in place of /etc/default/sluice. flags are rpm's file flags (c:
// %config, n: noreplace).
var rpmFiles = map[string]struct{ perms, owner, group, flags string }{
	"/usr/bin/sluice":                                         {"-rwxr-xr-x", "root", "root", ""},
	"/usr/lib/systemd/system/sluice.service":                  {"-rw-r--r--", "root", "root", ""},
	"/usr/lib/systemd/system/sluice.service.d/sysconfig.conf": {"-rw-r--r--", "root", "root", ""},
	"/etc/sluice/config.yaml":                                 {"-rw-r-----", "root", "sluice", "cn"},
	"/etc/sysconfig/sluice":                                   {"-rw-r--r--", "root", "root", "cn"},
	"/etc/sluice/targets":                                     {"drwxr-xr-x", "root", "root", ""},
	"/var/lib/sluice":                                         {"drwxr-x---", "sluice", "sluice", ""},
}

// checkRPM reads the .rpm with rpm -qp: name and version, every file with
// its mode, owner and config flags, the scriptlets and the dependency that
// provides useradd.
func checkRPM(t *testing.T, rpm string) {
	if got := run(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}", rpm); !strings.HasPrefix(got, "sluice 0.1.0") {
		t.Errorf("rpm -qp reports %q, want sluice 0.1.0...", got)
	}
	list := run(t, "rpm", "-qp", "--qf",
		"[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEUSERNAME}\t%{FILEGROUPNAME}\t%{FILEFLAGS:fflags}\n]", rpm)
	seen := map[string]bool{}
	// Not TrimSpace: the last field (flags) is often empty.
	for _, line := range strings.Split(strings.TrimRight(list, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("rpm -qp file line %q", line)
		}
		want, ok := rpmFiles[f[0]]
		switch {
		case !ok && !strings.HasPrefix(f[1], "d"):
			t.Errorf("the .rpm installs %s, which it should not", f[0])
		case !ok:
			// A parent directory: owned by root and not a config file.
			if f[2] != "root" || f[4] != "" {
				t.Errorf("the .rpm's directory %s is %s:%s flags %q", f[0], f[2], f[3], f[4])
			}
		case f[1] != want.perms || f[2] != want.owner || f[3] != want.group || f[4] != want.flags:
			t.Errorf("the .rpm installs %s as %s %s:%s flags %q, want %s %s:%s flags %q",
				f[0], f[1], f[2], f[3], f[4], want.perms, want.owner, want.group, want.flags)
		}
		seen[f[0]] = true
	}
	for p := range rpmFiles {
		if !seen[p] {
			t.Errorf("the .rpm does not install %s; it lists:\n%s", p, list)
		}
	}
	scripts := run(t, "rpm", "-qp", "--scripts", rpm)
	for _, s := range []string{"preinstall scriptlet", "postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet", "useradd --system"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("rpm -qp --scripts has no %q:\n%s", s, scripts)
		}
	}
	if reqs := run(t, "rpm", "-qpR", rpm); !strings.Contains(reqs, "shadow-utils") {
		t.Errorf("the .rpm does not require shadow-utils (useradd):\n%s", reqs)
	}
}

// environmentFiles applies systemd's rule for EnvironmentFile= across a unit
// and its drop-ins: each assignment adds a file, an empty one clears the list.
func environmentFiles(t *testing.T, paths ...string) []string {
	t.Helper()
	var files []string
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			v, ok := strings.CutPrefix(strings.TrimSpace(line), "EnvironmentFile=")
			switch {
			case !ok:
			case v == "":
				files = nil
			default:
				files = append(files, v)
			}
		}
	}
	return files
}

// One unit file serves both packages: alone (deb) it reads
// /etc/default/sluice; with the .rpm's drop-in only /etc/sysconfig/sluice,
// the file each package installs.
func TestPackageUnitSettingsFile(t *testing.T) {
	root := repoRoot(t)
	unit := filepath.Join(root, "deploy", "systemd", "sluice.service")
	dropIn := filepath.Join(root, "deploy", "packages", "sysconfig.conf")
	if got := environmentFiles(t, unit); strings.Join(got, " ") != "/etc/default/sluice" {
		t.Errorf("the unit reads %q, want [/etc/default/sluice] (the .deb's file)", got)
	}
	if got := environmentFiles(t, unit, dropIn); strings.Join(got, " ") != "/etc/sysconfig/sluice" {
		t.Errorf("the unit with the .rpm's drop-in reads %q, want [/etc/sysconfig/sluice]", got)
	}
}
