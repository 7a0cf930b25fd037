package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitFile reads the [Service] keys of a systemd unit (the last value wins,
// as for these single-valued keys in systemd).
func unitFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			if k, v, ok := strings.Cut(line, "="); ok {
				keys[k] = v
			}
		}
	}
	return keys
}

// envFile reads KEY=value lines as systemd's EnvironmentFile= does (no quoting used here).
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

// expand turns a unit command line into argv the way systemd does for these
// forms: "${VAR}" is one word, "$VAR" as its own word splits on white space.
func expand(cmdline string, env map[string]string) []string {
	var argv []string
	for _, word := range strings.Fields(cmdline) {
		if strings.HasPrefix(word, "$") && !strings.HasPrefix(word, "${") {
			argv = append(argv, strings.Fields(env[word[1:]])...)
			continue
		}
		for k, v := range env {
			word = strings.ReplaceAll(word, "${"+k+"}", v)
		}
		argv = append(argv, word)
	}
	return argv
}

// The host-agent unit, run as systemd would run it: ExecStart with the
// variables of /etc/default/sluice, then `systemctl reload` = ExecReload with
// $MAINPID. The reload must apply the changed config in the same process.
func TestSystemdUnitStartsAndReloads(t *testing.T) {
	root := repoRoot(t)
	unit := unitFile(t, filepath.Join(root, "deploy", "systemd", "sluice.service"))
	env := envFile(t, filepath.Join(root, "deploy", "systemd", "sluice.env"))
	if unit["EnvironmentFile"] != "/etc/default/sluice" {
		t.Errorf("EnvironmentFile=%q, want /etc/default/sluice", unit["EnvironmentFile"])
	}
	if unit["StateDirectory"] != "sluice" {
		t.Errorf("StateDirectory=%q, want sluice (/var/lib/sluice)", unit["StateDirectory"])
	}
	for _, k := range []string{"CONFIG_FILE", "CUSTOM_ARGS"} {
		if _, ok := env[k]; !ok {
			t.Errorf("sluice.env does not set %s", k)
		}
	}

	s, sinkAddr := startSink(t)
	otlpPort, health1, health2 := freePort(t), freePort(t), freePort(t)
	config := writeFile(t, t.TempDir(), "config.yaml", forwardConfig(otlpPort, sinkAddr, health1))
	env["CONFIG_FILE"] = config
	env["CUSTOM_ARGS"] = "--set=service.telemetry.logs.level=warn"

	argv := expand(unit["ExecStart"], env)
	if argv[0] != "/usr/bin/sluice" {
		t.Fatalf("ExecStart runs %q, want /usr/bin/sluice", argv[0])
	}
	if want := []string{"--config=" + config, "--set=service.telemetry.logs.level=warn"}; strings.Join(argv[1:], " ") != strings.Join(want, " ") {
		t.Fatalf("ExecStart expands to %q, want %q", argv[1:], want)
	}
	p := startSluiceArgs(t, argv[1:]...)
	p.waitHealthy(t, health1, 30*time.Second, "sluice started by ExecStart")
	sendOTLP(t, otlpPort, gauge("via_unit", 2))
	waitFor(t, 10*time.Second, "data at the sink", func() bool { return s.Stats().Metrics["via_unit"] == 2 })

	if err := os.WriteFile(config, []byte(forwardConfig(otlpPort, sinkAddr, health2)), 0o644); err != nil {
		t.Fatal(err)
	}
	env["MAINPID"] = strconv.Itoa(p.cmd.Process.Pid)
	reload := expand(unit["ExecReload"], env)
	if out, err := exec.Command(reload[0], reload[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("ExecReload %q: %v\n%s", reload, err, out)
	}
	waitFor(t, 30*time.Second, "the reloaded config's health check", func() bool { return healthy(health2) })
	if !p.running() {
		t.Fatal("sluice exited on reload")
	}
}
