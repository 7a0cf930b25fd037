package unixreceiver

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/receiver/unixreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig()
	return cfg, comptest.LoadConfig(t, component.NewIDWithName(metadata.Type, name).String(), cfg)
}

func TestConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CollectionInterval != 30*time.Second || cfg.Job != "hosts" || cfg.Instance != "web-1" {
		t.Fatalf("read %+v", cfg)
	}
	want := "--path.procfs=/host/proc --path.sysfs=/host/sys --path.rootfs=/host " +
		"--collector.textfile.directory=/var/lib/node_exporter/textfile " +
		"--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|run)($|/) " +
		"--collector.netdev.device-exclude=^(veth|lo).* " +
		"--collector.processes --collector.systemd --no-collector.zfs --collector.cpu.info"
	if got := strings.Join(cfg.flags(), " "); got != want {
		t.Fatalf("node_exporter flags:\n got %s\nwant %s", got, want)
	}
	if d := createDefaultConfig(); d.Job != DefaultJob || d.CollectionInterval != 15*time.Second || len(d.flags()) != 0 {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, want := range map[string]string{
		"unknown_collector": `set_collectors: unknown collector "memory" (known: arp, `,
		"set_and_enable":    "set_collectors and enable_collectors exclude each other: set_collectors lists every collector to run",
		"bad_regex":         "diskstats::device_exclude: error parsing regexp: missing closing ): `sd(`",
		"both_filters":      "netdev::device_include and netdev::device_exclude exclude each other",
		"unknown_flag":      `flags: "web.listen-address" is not a flag of node_exporter's collectors`,
		"zero_interval":     "collection_interval must be > 0, got 0s",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("error:\n got %v\nwant %s…", err, want)
			}
		})
	}
}

// Two unix receivers of one process must agree on node_exporter's settings.
func TestOtherSettingsRefused(t *testing.T) {
	if isolated(t) {
		return
	}
	a := createDefaultConfig()
	a.SetCollectors = []string{"loadavg"}
	newTestReceiver(t, a)
	newTestReceiver(t, a) // the same settings share the collectors
	b := createDefaultConfig()
	b.SetCollectors = []string{"meminfo"}
	_, err := gatherer(b.flags(), true, nil)
	if err == nil || !strings.Contains(err.Error(), "all unix receivers of a process must have the same settings") {
		t.Fatalf("error: %v", err)
	}
}
