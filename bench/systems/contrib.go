package systems

import (
	"fmt"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/freeport"
)

// contribBinary is where bench/reference/install has ocb build the contrib
// reference: output_path/name of bench/reference/builder-config.yaml.
var contribBinary = []string{"bench", "reference", "_build", "otelcol-contrib-ref", "otelcol-contrib-ref"}

// contrib is the pipeline a user would assemble from the contrib collector
// v0.160.0 to do Sluice's job: prometheus receiver -> batch processor ->
// prometheus_remote_write exporter. Settings, checked against the v0.160.0
// sources:
//
//   - receiver: job "loadgen", static targets, Spec's interval and timeout,
//     nothing else (Prometheus' defaults through the receiver's own loader).
//   - batch: defaults (8192 points or 200 ms), as every contrib example has it.
//   - exporter, chosen so it delivers the series Prometheus would:
//     translation_strategy UnderscoreEscapingWithoutSuffixes, so names stay as
//     scraped (the default appends _total and unit suffixes; it replaces the
//     deprecated add_metric_suffixes: false); target_info.enabled false
//     (otherwise one target_info series per target that no other system
//     sends); disable_scope_info true (otherwise every series carries
//     otel_scope_name/otel_scope_version labels). Resource attributes are NOT
//     turned into labels (resource_to_telemetry_conversion, deprecated for
//     resource_constant_labels): the receiver leaves only job and instance
//     (which the exporter always writes as labels) plus server.address,
//     server.port and url.scheme there, which Prometheus does not have.
//     Everything else is the default: remote write 1.0, remote_write_queue of
//     10,000 requests, retry_on_failure, 5 s timeout, 3 MB batches.
//   - contrib-wal adds the exporter's WAL under Dir/contrib-wal (the exporter
//     writes it itself, through github.com/tidwall/wal; no storage extension
//     is involved) with truncate_frequency 5s. The default, 1m, holds every
//     sample back for up to a minute at this request rate (the WAL exports
//     when buffer_size, 300 requests, have gathered or the timer fires); 5 s
//     is Prometheus' batch_send_deadline, so contrib-wal delivers about as
//     soon as Prometheus' agent does, at the price of an fsync and a
//     truncation every 5 s, which the benchmark then counts.
//   - own telemetry as shipped (metrics at level normal, logs at info), with
//     the metrics on 127.0.0.1 at a port picked at start: Prometheus and
//     vmagent always keep their own metrics, so the collector keeps its own.
//     health_check listens on 127.0.0.1:Spec.Port, where the others serve
//     their health endpoints too.
type contrib struct{ wal bool }

func (c contrib) Name() string {
	if c.wal {
		return "contrib-wal"
	}
	return "contrib"
}

func (contrib) bin() (string, error) {
	path, err := inRepo(contribBinary...)
	if err != nil {
		return "", fmt.Errorf("contrib reference: %w", err)
	}
	return binary(path, "contrib reference")
}

func (c contrib) Available() error { _, err := c.bin(); return err }

func (c contrib) Version() string {
	bin, err := c.bin()
	if err != nil {
		return "not built"
	}
	return version(bin, "--version")
}

func (c contrib) Start(s Spec) (*Process, error) {
	if err := s.validate(true); err != nil {
		return nil, err
	}
	bin, err := c.bin()
	if err != nil {
		return nil, err
	}
	wal := ""
	if c.wal {
		wal = fmt.Sprintf(`    wal:
      directory: %q
      truncate_frequency: 5s
`, filepath.Join(s.Dir, "contrib-wal"))
	}
	exporter := fmt.Sprintf(`  prometheus_remote_write:
    http:
      endpoint: %q
    translation_strategy: UnderscoreEscapingWithoutSuffixes
    target_info:
      enabled: false
    disable_scope_info: true
%s`, s.RemoteWriteURL, wal)
	return startCollector(s, c.Name(), bin, "batch", "prometheus_remote_write", exporter)
}

// startCollector writes a collector config — the prometheus receiver on
// Spec's targets, optionally a processor with its defaults, one exporter
// (exporterYAML, indented under exporters:) — and runs bin with it. The
// contrib reference and the scrape-only systems share it so that their
// receiver and telemetry settings cannot drift apart.
func startCollector(s Spec, name, bin, processorID, exporterID, exporterYAML string) (*Process, error) {
	metricsPort := s.MetricsPort
	if metricsPort == 0 {
		var err error
		if metricsPort, err = freeport.Get(); err != nil {
			return nil, fmt.Errorf("systems: %s: a port for its own metrics: %w", name, err)
		}
	}
	extensions, extensionList := fmt.Sprintf("  health_check:\n    endpoint: %q\n", s.listen()), "[health_check]"
	if s.PprofPort != 0 {
		extensions += fmt.Sprintf("  pprof:\n    endpoint: \"127.0.0.1:%d\"\n", s.PprofPort)
		extensionList = "[health_check, pprof]"
	}
	processors, processorList := "", "[]"
	if processorID != "" {
		processors = fmt.Sprintf("processors:\n  %s: {}\n", processorID)
		processorList = "[" + processorID + "]"
	}
	cfg := fmt.Sprintf(`# Written by bench/systems for %s; rewritten at every start.
receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: loadgen
          scrape_interval: %s
          scrape_timeout: %s
          static_configs:
            - targets: %s
%sexporters:
%sextensions:
%sservice:
  extensions: %s
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
  pipelines:
    metrics:
      receivers: [prometheus]
      processors: %s
      exporters: [%s]
`, name, s.interval(), s.timeout(), quoted(s.Targets), processors, exporterYAML, extensions, extensionList, metricsPort, processorList, exporterID)
	path, err := writeConfig(s.Dir, name+".yaml", cfg)
	if err != nil {
		return nil, err
	}
	return start(s.Dir, name, bin, "--config", path)
}
