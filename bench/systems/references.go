package systems

import (
	"fmt"
	"os"
	"path/filepath"
)

// contrib is the contrib collector pipeline: prometheus receiver -> batch ->
// prometheusremotewrite, from bench/reference/builder-config.yaml. The
// exporter keeps its defaults (in-memory queue of 10,000 requests, 5
// consumers, retries on); with wal it also writes its WAL under Dir, and
// then sends only every 300 requests or every minute (its truncate_frequency
// default), so its first delivery can take a minute.
type contrib struct{ wal bool }

func (c contrib) Name() string {
	if c.wal {
		return "contrib-wal"
	}
	return "contrib"
}

func (contrib) bin() string {
	return filepath.Join(repoRoot(), "bench", "reference", "_build", "otelcol-contrib-ref-bin")
}

func (c contrib) Available() error { _, err := findBinary(c.bin(), installHint); return err }

func (c contrib) Version() string { return "otelcol-contrib-ref " + version(c.bin(), "--version") }

func (c contrib) Start(s Spec) (*Process, error) {
	if len(s.Targets) == 0 {
		return nil, errNoTargets
	}
	wal := ""
	if c.wal {
		wal = fmt.Sprintf("    wal:\n      directory: %q\n", filepath.Join(s.Dir, "wal"))
		if err := os.MkdirAll(filepath.Join(s.Dir, "wal"), 0o755); err != nil {
			return nil, err
		}
	}
	cfg := fmt.Sprintf(`receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: loadgen
          scrape_interval: %s
          scrape_timeout: %s
          static_configs:
            - targets: %s
processors:
  batch: {}
exporters:
  prometheusremotewrite:
    endpoint: %q
%sextensions:
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check]
  telemetry:
    logs: {level: warn}
    metrics: {level: none}
  pipelines:
    metrics:
      receivers: [prometheus]
      processors: [batch]
      exporters: [prometheusremotewrite]
`, s.Interval, s.timeout(), quoted(s.Targets), s.RemoteWriteURL, wal, s.Port)
	path, err := writeFile(s.Dir, "contrib.yaml", cfg)
	if err != nil {
		return nil, err
	}
	bin, err := findBinary(c.bin(), installHint)
	if err != nil {
		return nil, err
	}
	return start(s.Dir, c.Name(), bin, "--config", path)
}

// vmagent from Debian's victoria-metrics package: its defaults, its on-disk
// queue under Dir (-remoteWrite.tmpDataPath).
type vmagent struct{}

func (vmagent) Name() string     { return "vmagent" }
func (vmagent) Available() error { _, err := findBinary("vmagent", installHint); return err }
func (vmagent) Version() string {
	return "vmagent (Debian victoria-metrics " + version("dpkg-query", "-W", "-f=${Version}", "victoria-metrics") + ")"
}

func (v vmagent) Start(s Spec) (*Process, error) {
	if len(s.Targets) == 0 {
		return nil, errNoTargets
	}
	cfg := fmt.Sprintf(`scrape_configs:
  - job_name: loadgen
    scrape_interval: %s
    scrape_timeout: %s
    static_configs:
      - targets: %s
`, s.Interval, s.timeout(), quoted(s.Targets))
	path, err := writeFile(s.Dir, "vmagent.yaml", cfg)
	if err != nil {
		return nil, err
	}
	bin, err := findBinary("vmagent", installHint)
	if err != nil {
		return nil, err
	}
	return start(s.Dir, v.Name(), bin,
		"-promscrape.config="+path,
		"-remoteWrite.url="+s.RemoteWriteURL,
		"-remoteWrite.tmpDataPath="+filepath.Join(s.Dir, "vmagent-queue"),
		fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", s.Port),
		"-loggerLevel=WARN")
}

// promAgent is Prometheus 2.42 (Debian) in agent mode, its WAL under Dir.
type promAgent struct{}

func (promAgent) Name() string     { return "prometheus-agent" }
func (promAgent) Available() error { _, err := findBinary("prometheus", installHint); return err }
func (promAgent) Version() string  { return version("prometheus", "--version") }

func (p promAgent) Start(s Spec) (*Process, error) {
	if len(s.Targets) == 0 {
		return nil, errNoTargets
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
scrape_configs:
  - job_name: loadgen
    static_configs:
      - targets: %s
remote_write:
  - url: %q
`, s.Interval, s.timeout(), quoted(s.Targets), s.RemoteWriteURL)
	path, err := writeFile(s.Dir, "prometheus.yml", cfg)
	if err != nil {
		return nil, err
	}
	bin, err := findBinary("prometheus", installHint)
	if err != nil {
		return nil, err
	}
	return start(s.Dir, p.Name(), bin,
		"--enable-feature=agent",
		"--config.file="+path,
		"--storage.agent.path="+filepath.Join(s.Dir, "agent-wal"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", s.Port),
		"--log.level=warn")
}
