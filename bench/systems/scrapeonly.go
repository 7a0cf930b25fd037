package systems

import "fmt"

// ScrapeOnly returns the two prometheus receivers alone — Sluice's and the
// contrib one — each scraping into the debug exporter at its cheapest
// (verbosity basic: one count line per batch), so the CPU and memory they
// use are the receiver's: the comparison of the scrape receiver issue. They
// ignore Spec.RemoteWriteURL.
func ScrapeOnly() []System {
	return []System{sluiceScrape{}, contribScrape{}}
}

// sluiceBinary is bin/sluice of this checkout, built by `make build`.
var sluiceBinary = []string{"bin", "sluice"}

// debugExporter is the exporter of the scrape-only systems.
const debugExporter = "  debug:\n    verbosity: basic\n"

type sluiceScrape struct{}

func (sluiceScrape) Name() string { return "sluice-receiver" }

func (sluiceScrape) bin() (string, error) {
	path, err := inRepo(sluiceBinary...)
	if err != nil {
		return "", fmt.Errorf("sluice: %w", err)
	}
	if _, err := binary(path, "sluice"); err != nil {
		return "", fmt.Errorf("sluice: %s not built: run make build", path)
	}
	return path, nil
}

func (s sluiceScrape) Available() error { _, err := s.bin(); return err }

func (s sluiceScrape) Version() string {
	bin, err := s.bin()
	if err != nil {
		return "not built"
	}
	return version(bin, "--version")
}

func (s sluiceScrape) Start(spec Spec) (*Process, error) {
	if err := spec.validate(false); err != nil {
		return nil, err
	}
	bin, err := s.bin()
	if err != nil {
		return nil, err
	}
	return startCollector(spec, s.Name(), bin, "", "debug", debugExporter)
}

type contribScrape struct{}

func (contribScrape) Name() string     { return "contrib-receiver" }
func (contribScrape) Available() error { return contrib{}.Available() }
func (contribScrape) Version() string  { return contrib{}.Version() }
func (c contribScrape) Start(spec Spec) (*Process, error) {
	if err := spec.validate(false); err != nil {
		return nil, err
	}
	bin, err := contrib{}.bin()
	if err != nil {
		return nil, err
	}
	return startCollector(spec, c.Name(), bin, "", "debug", debugExporter)
}
