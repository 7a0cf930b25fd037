package systems

import (
	"fmt"
	"os"
	"path/filepath"
)

// ScrapeOnly returns the two prometheus receivers alone — Sluice's and the
// contrib one — each scraping into the debug exporter at its cheapest
// (verbosity basic: one count line per batch), so the CPU and memory they use
// are the receiver's: the comparison of the scrape receiver issue.
func ScrapeOnly() []System {
	return []System{sluiceScrape{}, contribScrape{}}
}

// SluiceBinary is bin/sluice of this checkout, built by `make build`.
func SluiceBinary() string { return filepath.Join(repoRoot(), "bin", "sluice") }

type sluiceScrape struct{}

func (sluiceScrape) Name() string { return "sluice-receiver" }
func (sluiceScrape) Available() error {
	_, err := findBinary(SluiceBinary(), "run make build")
	return err
}
func (sluiceScrape) Version() string { return "sluice " + version(SluiceBinary(), "--version") }
func (s sluiceScrape) Start(spec Spec) (*Process, error) {
	return startScrapeOnly(spec, s.Name(), SluiceBinary(), "debug")
}

type contribScrape struct{}

func (contribScrape) Name() string       { return "contrib-receiver" }
func (c contribScrape) Available() error { return contrib{}.Available() }
func (contribScrape) Version() string    { return contrib{}.Version() }
func (c contribScrape) Start(spec Spec) (*Process, error) {
	return startScrapeOnly(spec, c.Name(), contrib{}.bin(), "debug")
}

// startScrapeOnly runs a collector binary with prometheus receiver -> debug.
func startScrapeOnly(s Spec, name, bin, exporter string) (*Process, error) {
	if len(s.Targets) == 0 {
		return nil, errNoTargets
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
exporters:
  %s:
    verbosity: basic
service:
  telemetry:
    logs: {level: warn}
    metrics: {level: none}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [%s]
`, s.Interval, s.timeout(), quoted(s.Targets), exporter, exporter)
	path, err := writeFile(s.Dir, name+".yaml", cfg)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	return start(s.Dir, name, bin, "--config", path)
}
