package unixreceiver

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/node_exporter/collector"
)

// node_exporter's collectors keep their settings in process-wide flag state,
// and build each collector once per process with the settings of that
// moment. So a process has one set of settings: the first unix receiver to
// start fixes it, a later one with the same settings shares the collectors,
// and one with other settings is refused (also after a config reload: restart
// Sluice to change them).
//
// A collector whose setup fails (its procfs_path or sysfs_path is missing:
// a container whose host mounts appear after it starts) does not stop the
// others: it is set up again at every collection until it works, and until
// then reports node_scrape_collector_success 0 as node_exporter does for a
// collector that fails, and the collection reports a setupError.
var node struct {
	mu     sync.Mutex
	flags  []string // the process's settings: nil until a receiver's were parsed
	logger *slog.Logger
	ready  []string         // collectors set up, sorted
	failed map[string]error // enabled collectors whose setup failed
	reg    *prometheus.Registry
}

// setupError is a collection's report of the collectors that could not be
// set up yet; they are tried again at the next collection.
type setupError struct{ failed map[string]error }

func (e *setupError) Error() string {
	names := make([]string, 0, len(e.failed))
	for n := range e.failed {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d collector(s) could not be set up and are retried at each collection:", len(names))
	for _, n := range names {
		fmt.Fprintf(&b, " %s: %v;", n, e.failed[n])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// gatherer returns the collectors for the settings flags, parsing the
// settings on first use. It fails only when the settings cannot apply: other
// settings already run, or node_exporter refuses a flag's value (then nothing
// is fixed, and a receiver with corrected settings may start).
func gatherer(flags []string, setOnly bool, logger *slog.Logger) (*sharedGatherer, error) {
	node.mu.Lock()
	defer node.mu.Unlock()
	key := slices.Concat(flags, []string{fmt.Sprint(setOnly)})
	if node.flags != nil {
		if !slices.Equal(node.flags, key) {
			return nil, fmt.Errorf("node_exporter's collectors already run in this process with other settings (%s); "+
				"all unix receivers of a process must have the same settings, and changing them needs a restart",
				strings.Join(node.flags, " "))
		}
		return &sharedGatherer{}, nil
	}
	if _, err := kingpin.CommandLine.Parse(flags); err != nil {
		return nil, fmt.Errorf("node_exporter flags %q: %w", flags, err)
	}
	if setOnly {
		collector.DisableDefaultCollectors()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	node.flags, node.logger, node.failed = key, logger, map[string]error{}
	for _, name := range Collectors() {
		if f := kingpin.CommandLine.GetFlag("collector." + name); f.Model().Value.String() == "true" {
			node.failed[name] = errors.New("not set up yet")
		}
	}
	node.reg = prometheus.NewRegistry()
	return &sharedGatherer{}, nil
}

// setUp tries the collectors not set up yet and rebuilds the registry when
// one more works. Collectors set up once are kept by node_exporter
// (NewNodeCollector reuses them), so only the failed ones are built again.
func setUp() error {
	added := false
	for name := range node.failed {
		if _, err := collector.NewNodeCollector(node.logger, name); err != nil {
			node.failed[name] = err
			continue
		}
		delete(node.failed, name)
		node.ready = append(node.ready, name)
		added = true
	}
	if added {
		sort.Strings(node.ready)
		nc, err := collector.NewNodeCollector(node.logger, node.ready...)
		if err != nil { // each of them was just built: not expected
			return fmt.Errorf("node_exporter collectors: %w", err)
		}
		reg := prometheus.NewRegistry()
		if err := reg.Register(nc); err != nil {
			return fmt.Errorf("node_exporter collectors: %w", err)
		}
		node.reg = reg
	}
	if len(node.failed) > 0 {
		return &setupError{failed: maps.Clone(node.failed)}
	}
	return nil
}

// sharedGatherer gathers from the process's collectors, one collection at a
// time (collectors keep state between updates).
type sharedGatherer struct{}

func (sharedGatherer) Gather() ([]*dto.MetricFamily, error) {
	node.mu.Lock()
	defer node.mu.Unlock()
	setupErr := setUp()
	families, err := node.reg.Gather()
	if fe, ok := setupErr.(*setupError); ok {
		families = withFailed(families, fe.failed)
	}
	return families, errors.Join(setupErr, err)
}

const successName = "node_scrape_collector_success"

// withFailed adds node_scrape_collector_success 0 for each collector that
// could not be set up, so dashboards and alerts on it see what they would
// see from node_exporter's failing collectors.
func withFailed(families []*dto.MetricFamily, failed map[string]error) []*dto.MetricFamily {
	i, found := slices.BinarySearchFunc(families, successName, func(f *dto.MetricFamily, n string) int {
		return strings.Compare(f.GetName(), n)
	})
	if !found {
		families = slices.Insert(families, i, &dto.MetricFamily{
			Name: ptr(successName),
			Help: ptr("node_exporter: Whether a collector succeeded."),
			Type: dto.MetricType_GAUGE.Enum(),
		})
	}
	f := families[i]
	for name := range failed {
		f.Metric = append(f.Metric, &dto.Metric{
			Label: []*dto.LabelPair{{Name: ptr("collector"), Value: ptr(name)}},
			Gauge: &dto.Gauge{Value: ptr(0.0)},
		})
	}
	sort.SliceStable(f.Metric, func(a, b int) bool { return collectorOf(f.Metric[a]) < collectorOf(f.Metric[b]) })
	return families
}

func collectorOf(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "collector" {
			return l.GetValue()
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }
