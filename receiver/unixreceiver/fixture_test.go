package unixreceiver

import (
	"testing"
)

// TestFixtureTrees reads fixture /proc and /sys trees (testdata/) through
// procfs_path and sysfs_path, and a textfile directory: the results are the
// values written there.
func TestFixtureTrees(t *testing.T) {
	if isolated(t) {
		return
	}
	cfg := createDefaultConfig()
	cfg.ProcfsPath, cfg.SysfsPath = "testdata/proc", "testdata/sys"
	cfg.Textfile.Directory = "testdata/textfile"
	cfg.SetCollectors = []string{"loadavg", "meminfo", "filefd", "thermal_zone", "textfile"}
	_, values := seriesOf(t, collectOnce(t, cfg))
	for series, want := range map[string]float64{
		"node_load1{}":                                                    0.42,
		"node_load5{}":                                                    0.31,
		"node_load15{}":                                                   0.25,
		"node_memory_MemTotal_bytes{}":                                    16384000 * 1024,
		"node_memory_MemFree_bytes{}":                                     8192000 * 1024,
		"node_memory_SwapTotal_bytes{}":                                   1024000 * 1024,
		"node_filefd_allocated{}":                                         2048,
		"node_filefd_maximum{}":                                           65536,
		"node_thermal_zone_temp{type=x86_pkg_temp,zone=0}":                47.5,
		"backup_last_success_timestamp_seconds{target=db}":                1.7e9,
		"node_scrape_collector_success{collector=loadavg}":                1,
		"node_scrape_collector_success{collector=thermal_zone}":           1,
		"node_textfile_mtime_seconds{file=testdata/textfile/backup.prom}": 0, // present (the value is the mtime)
	} {
		got, ok := values[series]
		if !ok {
			t.Errorf("%s is missing", series)
			continue
		}
		if want != 0 && got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
