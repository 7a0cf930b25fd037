package unixreceiver

import (
	"fmt"
	"log/slog"
	"slices"
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
var node struct {
	mu    sync.Mutex
	flags []string // nil until the first receiver started
	reg   *prometheus.Registry
	err   error
}

// gatherer returns the collectors for the settings flags, setting them up on
// first use.
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
		return &sharedGatherer{}, node.err
	}
	node.flags = key
	if _, err := kingpin.CommandLine.Parse(flags); err != nil {
		node.err = fmt.Errorf("node_exporter flags %q: %w", flags, err)
		return nil, node.err
	}
	if setOnly {
		collector.DisableDefaultCollectors()
	}
	nc, err := collector.NewNodeCollector(logger)
	if err != nil {
		node.err = fmt.Errorf("node_exporter collectors: %w", err)
		return nil, node.err
	}
	node.reg = prometheus.NewRegistry()
	if err := node.reg.Register(nc); err != nil {
		node.err = err
		return nil, err
	}
	return &sharedGatherer{}, nil
}

// sharedGatherer gathers from the process's collectors, one collection at a
// time (collectors keep state between updates).
type sharedGatherer struct{}

var gatherMu sync.Mutex

func (sharedGatherer) Gather() ([]*dto.MetricFamily, error) {
	gatherMu.Lock()
	defer gatherMu.Unlock()
	return node.reg.Gather()
}
