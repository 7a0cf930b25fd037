package unixreceiver

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	// node_exporter's collectors register their settings as flags of
	// kingpin.CommandLine when the package is loaded.
	_ "github.com/prometheus/node_exporter/collector"
)

// Config is the unix receiver's configuration. Its keys map onto
// node_exporter's command-line flags (see flags()).
type Config struct {
	// CollectionInterval is how often the host is read (a scrape interval).
	CollectionInterval time.Duration `mapstructure:"collection_interval"`
	// Job and Instance label every series; Instance defaults to the host name.
	Job      string `mapstructure:"job"`
	Instance string `mapstructure:"instance"`

	// SetCollectors runs exactly these collectors; EnableCollectors and
	// DisableCollectors adjust node_exporter's default set.
	SetCollectors     []string `mapstructure:"set_collectors"`
	EnableCollectors  []string `mapstructure:"enable_collectors"`
	DisableCollectors []string `mapstructure:"disable_collectors"`

	// Where the host's /proc, /sys and / are (a container watching its host
	// mounts them elsewhere).
	ProcfsPath string `mapstructure:"procfs_path"`
	SysfsPath  string `mapstructure:"sysfs_path"`
	RootfsPath string `mapstructure:"rootfs_path"`

	Textfile   TextfileConfig   `mapstructure:"textfile"`
	Filesystem FilesystemConfig `mapstructure:"filesystem"`
	Netdev     DeviceFilter     `mapstructure:"netdev"`
	Diskstats  DeviceFilter     `mapstructure:"diskstats"`

	// Flags sets any other node_exporter flag by name, without the leading
	// dashes: {"collector.cpu.info": "true", "collector.netdev.address-info": "true"}.
	Flags map[string]string `mapstructure:"flags"`
}

// TextfileConfig is the textfile collector's directory of *.prom files.
type TextfileConfig struct {
	Directory string `mapstructure:"directory"`
}

// FilesystemConfig filters the filesystem collector (regular expressions;
// empty keeps node_exporter's defaults).
type FilesystemConfig struct {
	MountPointsInclude string `mapstructure:"mount_points_include"`
	MountPointsExclude string `mapstructure:"mount_points_exclude"`
	FSTypesInclude     string `mapstructure:"fs_types_include"`
	FSTypesExclude     string `mapstructure:"fs_types_exclude"`
}

// DeviceFilter filters devices by regular expression.
type DeviceFilter struct {
	DeviceInclude string `mapstructure:"device_include"`
	DeviceExclude string `mapstructure:"device_exclude"`
}

// DefaultJob is the job label of the host's series: what node_exporter's
// dashboards and alerts usually select on.
const DefaultJob = "node"

func createDefaultConfig() *Config {
	return &Config{CollectionInterval: 15 * time.Second, Job: DefaultJob}
}

// Validate checks every key against node_exporter's own flags, so a typo in
// a collector name fails `sluice validate`.
func (c *Config) Validate() error {
	var errs []error
	if c.CollectionInterval <= 0 {
		errs = append(errs, fmt.Errorf("collection_interval must be > 0, got %s", c.CollectionInterval))
	}
	if c.Job == "" {
		errs = append(errs, errors.New("job must not be empty"))
	}
	if len(c.SetCollectors) > 0 && len(c.EnableCollectors) > 0 {
		errs = append(errs, errors.New("set_collectors and enable_collectors exclude each other: set_collectors lists every collector to run"))
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"set_collectors", c.SetCollectors}, {"enable_collectors", c.EnableCollectors}, {"disable_collectors", c.DisableCollectors}} {
		for _, n := range list.names {
			if kingpin.CommandLine.GetFlag("collector."+n) == nil {
				errs = append(errs, fmt.Errorf("%s: unknown collector %q (known: %s)", list.key, n, strings.Join(Collectors(), ", ")))
			}
		}
	}
	for _, re := range []struct{ key, include, exclude string }{
		{"filesystem::mount_points", c.Filesystem.MountPointsInclude, c.Filesystem.MountPointsExclude},
		{"filesystem::fs_types", c.Filesystem.FSTypesInclude, c.Filesystem.FSTypesExclude},
		{"netdev::device", c.Netdev.DeviceInclude, c.Netdev.DeviceExclude},
		{"diskstats::device", c.Diskstats.DeviceInclude, c.Diskstats.DeviceExclude},
	} {
		if re.include != "" && re.exclude != "" {
			errs = append(errs, fmt.Errorf("%s_include and %s_exclude exclude each other", re.key, re.key))
		}
		for suffix, v := range map[string]string{"_include": re.include, "_exclude": re.exclude} {
			if _, err := regexp.Compile(v); err != nil {
				errs = append(errs, fmt.Errorf("%s%s: %w", re.key, suffix, err))
			}
		}
	}
	for _, name := range sortedKeys(c.Flags) {
		if strings.HasPrefix(name, "-") {
			errs = append(errs, fmt.Errorf("flags: %q: give the flag name without dashes", name))
		} else if f := kingpin.CommandLine.GetFlag(name); f == nil || !strings.HasPrefix(name, "collector.") {
			errs = append(errs, fmt.Errorf("flags: %q is not a flag of node_exporter's collectors", name))
		}
	}
	return errors.Join(errs...)
}

// Collectors lists the names of node_exporter's collectors on this platform.
func Collectors() []string {
	var out []string
	for _, f := range kingpin.CommandLine.Model().Flags {
		n, ok := strings.CutPrefix(f.Name, "collector.")
		if ok && !strings.Contains(n, ".") && f.IsBoolFlag() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// flags renders the config as node_exporter's command line.
func (c *Config) flags() []string {
	var args []string
	add := func(flag, v string) {
		if v != "" {
			args = append(args, "--"+flag+"="+v)
		}
	}
	add("path.procfs", c.ProcfsPath)
	add("path.sysfs", c.SysfsPath)
	add("path.rootfs", c.RootfsPath)
	add("collector.textfile.directory", c.Textfile.Directory)
	add("collector.filesystem.mount-points-include", c.Filesystem.MountPointsInclude)
	add("collector.filesystem.mount-points-exclude", c.Filesystem.MountPointsExclude)
	add("collector.filesystem.fs-types-include", c.Filesystem.FSTypesInclude)
	add("collector.filesystem.fs-types-exclude", c.Filesystem.FSTypesExclude)
	add("collector.netdev.device-include", c.Netdev.DeviceInclude)
	add("collector.netdev.device-exclude", c.Netdev.DeviceExclude)
	add("collector.diskstats.device-include", c.Diskstats.DeviceInclude)
	add("collector.diskstats.device-exclude", c.Diskstats.DeviceExclude)
	for _, n := range c.SetCollectors {
		args = append(args, "--collector."+n)
	}
	for _, n := range c.EnableCollectors {
		args = append(args, "--collector."+n)
	}
	for _, n := range c.DisableCollectors {
		args = append(args, "--no-collector."+n)
	}
	for _, name := range sortedKeys(c.Flags) {
		v := c.Flags[name]
		if f := kingpin.CommandLine.GetFlag(name); f != nil && f.Model().IsBoolFlag() {
			if v == "false" {
				args = append(args, "--no-"+name)
			} else {
				args = append(args, "--"+name)
			}
			continue
		}
		args = append(args, "--"+name+"="+v)
	}
	return args
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
