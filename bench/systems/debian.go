package systems

import (
	"debug/buildinfo"
	"fmt"
	"path/filepath"
)

// Where Debian's packages put the binaries (dpkg -L victoria-metrics,
// dpkg -L prometheus).
const (
	vmagentBinary    = "/usr/bin/vmagent"
	prometheusBinary = "/usr/bin/prometheus"
)

// debianVersion is the installed version of a Debian package.
func debianVersion(pkg string) string {
	return version("dpkg-query", "-W", "-f=${Version}", pkg)
}

// VmagentRelease is the vmagent users install today, built by
// bench/reference/install with `go install …/app/vmagent@VmagentRelease` into
// bench/reference/_build/bin; it is the vmagent every ratio is taken
// against. Debian's 1.79 (a 2022 build) stays as a second row, "vmagent-1.79".
const VmagentRelease = "v1.151.0"

// vmagentBuilt is where bench/reference/install puts that build.
var vmagentBuilt = []string{"bench", "reference", "_build", "bin", "vmagent"}

// vmagent is vmagent run with its defaults: 2×CPUs remote-write queues, a
// flush every second, its on-disk queue (unlimited) under Dir/vmagent-queue
// (-remoteWrite.tmpDataPath), stale markers on, logs at INFO. Its one
// listener (-httpListenAddr; the graphite, influx and opentsdb ones are off
// by default) is on 127.0.0.1:Spec.Port. debian selects Debian's package
// (victoria-metrics 1.79) instead of the current release.
type vmagent struct{ debian bool }

func (v vmagent) Name() string {
	if v.debian {
		return "vmagent-1.79"
	}
	return "vmagent"
}

// VmagentBinary is the path of the vmagent build: the current release, or
// Debian's with debian set.
func VmagentBinary(debian bool) (string, error) {
	if debian {
		return binary(vmagentBinary, "vmagent (Debian)")
	}
	path, err := inRepo(vmagentBuilt...)
	if err != nil {
		return "", err
	}
	return binary(path, "vmagent "+VmagentRelease)
}

func (v vmagent) Available() error { _, err := VmagentBinary(v.debian); return err }

func (v vmagent) Version() string {
	if v.debian {
		return "vmagent (Debian victoria-metrics " + debianVersion("victoria-metrics") + ")"
	}
	bin, err := VmagentBinary(false)
	if err != nil {
		return "vmagent " + VmagentRelease + " (not built)"
	}
	// A `go install` build carries no -version string; its module version
	// is in the binary's build information.
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "vmagent (unknown build)"
	}
	return fmt.Sprintf("vmagent %s (go install, %s)", info.Main.Version, info.GoVersion)
}

func (v vmagent) Start(s Spec) (*Process, error) {
	if err := s.validate(true); err != nil {
		return nil, err
	}
	bin, err := VmagentBinary(v.debian)
	if err != nil {
		return nil, err
	}
	path, err := writeConfig(s.Dir, "vmagent.yaml", scrapeConfigs(s))
	if err != nil {
		return nil, err
	}
	return start(s.Dir, v.Name(), bin,
		"-promscrape.config="+path,
		"-remoteWrite.url="+s.RemoteWriteURL,
		"-remoteWrite.tmpDataPath="+filepath.Join(s.Dir, "vmagent-queue"),
		"-httpListenAddr="+s.listen())
}

// promAgent is Prometheus 2.42 from Debian's prometheus package in agent
// mode. In 2.x agent mode is the feature flag --enable-feature=agent (the
// --agent flag arrived with 3.0); the agent WAL is --storage.agent.path, here
// Dir/prometheus-agent. One remote_write with its default queue_config
// (shards 1–200, 500 samples per send, 5 s batch deadline), WAL compression
// and logs at info as shipped; its web listener on 127.0.0.1:Spec.Port.
type promAgent struct{}

func (promAgent) Name() string { return "prometheus-agent" }

func (promAgent) Available() error { _, err := binary(prometheusBinary, "prometheus"); return err }

func (promAgent) Version() string {
	// The first line already names the Debian revision.
	return version(prometheusBinary, "--version")
}

func (p promAgent) Start(s Spec) (*Process, error) {
	if err := s.validate(true); err != nil {
		return nil, err
	}
	bin, err := binary(prometheusBinary, "prometheus")
	if err != nil {
		return nil, err
	}
	cfg := scrapeConfigs(s) + fmt.Sprintf("remote_write:\n  - url: %q\n", s.RemoteWriteURL)
	path, err := writeConfig(s.Dir, "prometheus.yml", cfg)
	if err != nil {
		return nil, err
	}
	return start(s.Dir, p.Name(), bin,
		"--enable-feature=agent",
		"--config.file="+path,
		"--storage.agent.path="+filepath.Join(s.Dir, "prometheus-agent"),
		"--web.listen-address="+s.listen())
}

// scrapeConfigs is the Prometheus-format scrape section vmagent and
// Prometheus read alike.
func scrapeConfigs(s Spec) string {
	return fmt.Sprintf(`# Written by bench/systems; rewritten at every start.
scrape_configs:
  - job_name: loadgen
    scrape_interval: %s
    scrape_timeout: %s
    static_configs:
      - targets: %s
`, s.interval(), s.timeout(), quoted(s.Targets))
}
