package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A host agent whose procfs_path does not exist yet (a container whose host
// mount comes later) keeps running and healthy instead of exiting: the
// collectors that do not need the path deliver, the one that does reports
// node_scrape_collector_success 0 and the warning names it, and once the
// path appears its metrics arrive without a restart.
func TestUnixMissingProcfsPath(t *testing.T) {
	s, sinkAddr := startSink(t)
	health := freePort(t)
	proc := filepath.Join(t.TempDir(), "proc")
	config := writeFile(t, t.TempDir(), "config.yaml", fmt.Sprintf(`receivers:
  unix:
    collection_interval: 200ms
    instance: agent-1
    procfs_path: %s
    set_collectors: [meminfo, uname]
exporters:
  remote_write:
    endpoint: http://%s/api/v1/write
    queue:
      directory: %s
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [unix]
      exporters: [remote_write]
`, proc, sinkAddr, filepath.Join(t.TempDir(), "queue"), health))
	p := startSluice(t, config)
	p.waitHealthy(t, health, 60*time.Second, "sluice with a missing procfs_path")

	has := func(series string) func() bool {
		return func() bool { return len(s.Samples(series)) > 0 }
	}
	failed := `{__name__="node_scrape_collector_success", collector="meminfo", instance="agent-1", job="node"}`
	waitFor(t, 30*time.Second, "meminfo reported as failed", has(failed))
	if pts := s.Samples(failed); pts[0].V != 0 {
		t.Errorf("node_scrape_collector_success{collector=meminfo} = %v, want 0", pts[0].V)
	}
	waitFor(t, 10*time.Second, "uname's metrics", func() bool {
		for _, ser := range s.Series() {
			if strings.HasPrefix(ser, `{__name__="node_uname_info"`) {
				return true
			}
		}
		return false
	})
	want := `meminfo: failed to open procfs: could not read \"` + proc + `\": stat ` + proc + `: no such file or directory`
	waitFor(t, 10*time.Second, "the warning", func() bool { return strings.Contains(p.out.String(), want) })
	if n := strings.Count(p.out.String(), "Host metrics incomplete"); n != 1 {
		t.Errorf("%d warnings over several failed collections, want 1 (rate-limited):\n%s", n, p.out.String())
	}

	if err := os.Symlink("/proc", proc); err != nil { // the host mount appears
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "meminfo's metrics after the path appeared",
		has(`{__name__="node_memory_MemTotal_bytes", instance="agent-1", job="node"}`))
	waitFor(t, 10*time.Second, "the recovery line", func() bool {
		return strings.Contains(p.out.String(), "Host metrics incomplete: working again")
	})
	if !p.running() || !healthy(health) {
		t.Error("sluice is not running and healthy")
	}
}
