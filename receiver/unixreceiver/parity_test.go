package unixreceiver

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicehq/sluice/internal/freeport"
)

const nodeExporterBin = "/usr/bin/prometheus-node-exporter" // Debian's prometheus-node-exporter

// The collectors compared: node_exporter's default Linux collectors (as the
// issue lists them) that both Debian's node_exporter and Sluice's know.
var parityCollectors = []string{
	"arp", "bcache", "bonding", "btrfs", "conntrack", "cpu", "cpufreq", "diskstats", "dmi", "edac",
	"entropy", "fibrechannel", "filefd", "filesystem", "hwmon", "infiniband", "ipvs", "loadavg",
	"mdadm", "meminfo", "netclass", "netdev", "netstat", "nfs", "nfsd", "nvme", "os",
	"powersupplyclass", "pressure", "rapl", "schedstat", "selinux", "sockstat", "softnet", "stat",
	"tapestats", "textfile", "thermal_zone", "time", "timex", "udp_queues", "uname", "vmstat",
	"xfs", "zfs",
}

// knownVersionDifferences are differences between Debian's node_exporter
// (1.5.0) and the collector package Sluice runs (1.12.1) that are changes in
// node_exporter itself, each checked against node_exporter's changelog.
// Anything else that differs fails the test.
var knownVersionDifferences = map[string]versionDiff{
	"node_disk_info":    {addedLabel: "rotational", why: "diskstats: label rotational added in 1.9.0 (#3022)"},
	"node_network_info": {addedLabel: "adminstate", why: "netclass: label adminstate added after 1.5 (netclass_linux.go)"},
}

// versionDiff is one known difference: a label the newer version adds to
// every series of the metric, or a metric it no longer has.
type versionDiff struct {
	addedLabel string
	removed    bool
	why        string
}

func init() {
	// meminfo reads /proc/meminfo through procfs' Meminfo since 1.9.0 (#3049):
	// lines procfs does not parse are no longer exposed.
	for _, f := range []string{"Balloon", "FileHugePages", "FilePmdMapped", "Hugetlb", "KReclaimable", "SecPageTables"} {
		knownVersionDifferences["node_memory_"+f+"_bytes"] = versionDiff{removed: true, why: "meminfo through procfs since 1.9.0 (#3049)"}
	}
}

// explained says whether the known difference accounts for theirs → ours.
func (d versionDiff) explained(theirs, ours map[string]bool) bool {
	if d.removed {
		return len(ours) == 0
	}
	want := map[string]bool{}
	for set := range theirs {
		names := append(strings.Split(set, ","), d.addedLabel)
		if set == "" {
			names = []string{d.addedLabel}
		}
		sort.Strings(names)
		want[strings.Join(names, ",")] = true
	}
	return labelSets(want) == labelSets(ours)
}

// TestParityWithNodeExporter runs Debian's node_exporter and the unix
// receiver side by side on this machine with the same collectors: every
// metric node_exporter exposes must come out of Sluice with the same label
// names, and stable values must agree.
func TestParityWithNodeExporter(t *testing.T) {
	if isolated(t) {
		return
	}
	if _, err := os.Stat(nodeExporterBin); err != nil {
		t.Fatalf("%s is missing (apt-get install prometheus-node-exporter; `make test` installs it): %v", nodeExporterBin, err)
	}
	help, _ := exec.Command(nodeExporterBin, "--help").CombinedOutput()
	var collectors []string
	for _, c := range parityCollectors {
		if strings.Contains(string(help), "collector."+c+" ") || strings.Contains(string(help), "collector."+c+"\n") {
			collectors = append(collectors, c)
		}
	}
	textDir := t.TempDir()
	if err := os.WriteFile(textDir+"/site.prom", []byte("# HELP site_info A textfile metric.\n# TYPE site_info gauge\nsite_info{rack=\"r1\"} 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := []string{"--web.listen-address=" + addr, "--collector.disable-defaults", "--collector.textfile.directory=" + textDir}
	for _, c := range collectors {
		args = append(args, "--collector."+c)
	}
	ne := exec.Command(nodeExporterBin, args...)
	if err := ne.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ne.Process.Kill(); _ = ne.Wait() })

	cfg := createDefaultConfig()
	cfg.SetCollectors = collectors
	cfg.Textfile.Directory = textDir
	r := newTestReceiver(t, cfg)

	theirs := scrape(t, "http://"+addr+"/metrics")
	md, err := r.collectMetrics()
	if err != nil {
		t.Logf("collection reported: %v", err)
	}
	oursNames, oursValues := seriesOf(t, md)

	// Every name node_exporter exposes for these collectors, with its label names.
	theirNames := map[string]map[string]bool{}
	theirValues := map[string]float64{}
	for name, mf := range theirs {
		if ownMetric(name) {
			continue
		}
		theirNames[name] = map[string]bool{}
		for _, m := range mf.GetMetric() {
			var lnames []string
			ls := map[string]string{"__name__": name}
			for _, p := range m.GetLabel() {
				if p.GetValue() == "" {
					continue // Prometheus stores no empty label, and Sluice sends none
				}
				lnames = append(lnames, p.GetName())
				ls[p.GetName()] = p.GetValue()
			}
			sort.Strings(lnames)
			theirNames[name][strings.Join(lnames, ",")] = true
			theirValues[seriesKey(ls)] = value(m)
		}
	}
	var rows []string
	failed := 0
	for _, name := range sortedNames(theirNames) {
		want, got := labelSets(theirNames[name]), labelSets(oursNames[name])
		if want == got {
			continue
		}
		known, ok := knownVersionDifferences[name]
		why := "version difference: " + known.why
		if !ok || !known.explained(theirNames[name], oursNames[name]) {
			failed++
			why = "DIFFERS"
		}
		rows = append(rows, fmt.Sprintf("%-55s node_exporter %-40s sluice %-40s %s", name, want, orNone(got), why))
	}
	var extra []string
	for _, name := range sortedNames(oursNames) {
		if _, ok := theirNames[name]; !ok {
			extra = append(extra, name)
		}
	}
	t.Logf("collectors compared (%d): %s", len(collectors), strings.Join(collectors, " "))
	t.Logf("metric names: node_exporter %d, sluice %d; differences:\n%s", len(theirNames), len(oursNames), strings.Join(rows, "\n"))
	t.Logf("only in sluice (collectors newer than node_exporter 1.5): %s", strings.Join(extra, " "))
	if failed > 0 {
		t.Errorf("%d metric names differ from node_exporter (table above)", failed)
	}

	// Stable values agree.
	memKey := "node_memory_MemTotal_bytes{}"
	if theirValues[memKey] == 0 || theirValues[memKey] != oursValues[memKey] {
		t.Errorf("node_memory_MemTotal_bytes: node_exporter %v, sluice %v", theirValues[memKey], oursValues[memKey])
	}
	cpuSeries := 0
	for k, v := range theirValues {
		if !strings.HasPrefix(k, "node_cpu_seconds_total{") {
			continue
		}
		cpuSeries++
		if ours, ok := oursValues[k]; !ok || math.Abs(ours-v) > 1 {
			t.Errorf("%s: node_exporter %v, sluice %v (want within 1 s)", k, v, ours)
		}
	}
	if cpuSeries == 0 {
		t.Error("node_exporter exposed no node_cpu_seconds_total")
	}
	if oursValues[`site_info{rack=r1}`] != 1 {
		t.Error("the textfile collector's site_info is missing")
	}
}

// ownMetric: node_exporter's metrics about its own process, which Sluice
// reports in its own telemetry instead.
func ownMetric(name string) bool {
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") ||
		strings.HasPrefix(name, "promhttp_") || name == "node_exporter_build_info"
}

func scrape(t *testing.T, url string) map[string]*dtoFamily {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			defer resp.Body.Close()
			p := expfmt.NewTextParser(model.UTF8Validation)
			mfs, err := p.TextToMetricFamilies(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("node_exporter did not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func labelSets(s map[string]bool) string {
	var out []string
	for k := range s {
		out = append(out, "["+k+"]")
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func orNone(s string) string {
	if s == "" {
		return "(missing)"
	}
	return s
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
