// Package runtimedefaults gives the Go runtime Sluice's defaults where the
// user has set none: a soft memory limit of 90% of the process's cgroup
// memory limit (GOMEMLIMIT), so the collector works harder as a container's
// or a systemd unit's limit nears instead of being killed there. It is soft:
// it never fails an allocation. The sluice binary applies it before the
// collector starts (distributions/sluice calls Apply from its main
// package's init function, which runs after every other package's);
// GOMEMLIMIT in the environment wins.
//
// It also releases the executable's pages that only starting touched. The
// binary is about 100 MB (Prometheus' service discovery with the cloud SDKs
// it uses, and the collector); the runtime and the init functions of its
// ~720 packages touch most of it once, and the kernel maps the cached
// pages around each page touched, so 60-80 MiB of it would stay resident
// for the life of the process although a running collector uses about a
// third of that. Apply asks the kernel to reclaim the read-only mappings of
// the executable (MADV_PAGEOUT) right away, after the packages' init
// functions, and again StartupPagesDelay after start, when the components
// have started; what is used again faults back in from the file. These are
// clean file pages, reclaimable under memory pressure in any case: what
// changes is that they leave the process's RSS, its container's memory
// usage and the page cache instead of waiting for pressure. Pages another
// process maps too (a second Sluice on the host) are left alone by the
// kernel. SLUICE_KEEP_STARTUP_PAGES, set to anything, turns it off.
//
// The GC target is left at Go's GOGC=100. GOGC=50 (vmagent's choice) was
// measured on the benchmarks' workloads (bench/RESULTS.md): on W1 it cut
// the peak anonymous memory by about a quarter (61-68 -> 46-50 MiB) with
// no CPU difference the machine's noise showed, but as a gateway it cost
// 30% more CPU per sample (3.5-4.0 -> 5.0-5.3 s per million). Agents short
// of memory can set GOGC=50 themselves.
package runtimedefaults

import (
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// MemoryLimitFraction is the part of the cgroup memory limit that becomes
// the soft memory limit unless GOMEMLIMIT is set.
const MemoryLimitFraction = 0.9

// KeepStartupPagesEnv, set to anything, keeps the executable's pages
// resident instead of releasing them after start.
const KeepStartupPagesEnv = "SLUICE_KEEP_STARTUP_PAGES"

// cgroupRoot is where the cgroup filesystem is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// Settings is what Apply decided; zero fields were left as they were.
type Settings struct {
	MemoryLimit int64 // bytes
	// ReleaseStartupPages: the executable's resident pages are released
	// after package initialisation and again StartupPagesDelay after start.
	ReleaseStartupPages bool
}

// Apply sets the defaults the environment does not set and returns them.
func Apply() Settings {
	s := Decide(os.Getenv, func() (int64, bool) {
		self, _ := os.ReadFile("/proc/self/cgroup")
		return readCgroupLimit(os.DirFS(cgroupRoot), string(self))
	})
	if s.MemoryLimit != 0 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	if s.ReleaseStartupPages {
		releaseStartupPages()
	}
	return s
}

// Decide works out the settings from the environment (getenv) and the
// cgroup memory limit (limit; ok false when there is none).
func Decide(getenv func(string) string, limit func() (int64, bool)) Settings {
	var s Settings
	if getenv("GOMEMLIMIT") == "" {
		if l, ok := limit(); ok {
			s.MemoryLimit = int64(float64(l) * MemoryLimitFraction)
		}
	}
	s.ReleaseStartupPages = getenv(KeepStartupPagesEnv) == ""
	return s
}

// readCgroupLimit finds the memory limit of the process's cgroup in root
// (the cgroup filesystem): its own cgroup directory, named in self
// (/proc/self/cgroup: "0::/system.slice/sluice.service" for v2, as under
// systemd's MemoryMax=, or "4:memory:/some/group" for v1), then the root of
// the mount, which is the process's own cgroup inside a container.
func readCgroupLimit(root fs.FS, self string) (int64, bool) {
	var files []string
	for _, line := range strings.Split(self, "\n") {
		if p, ok := strings.CutPrefix(line, "0::/"); ok && p != "" {
			files = append(files, path.Join(p, "memory.max"))
		}
		if _, p, ok := strings.Cut(line, ":memory:/"); ok && p != "" {
			files = append(files, path.Join("memory", p, "memory.limit_in_bytes"))
		}
	}
	files = append(files, "memory.max", "memory/memory.limit_in_bytes")
	for _, f := range files {
		b, err := fs.ReadFile(root, f)
		if err != nil {
			continue
		}
		if n, ok := parseLimit(string(b)); ok {
			return n, true
		}
	}
	return 0, false
}

// parseLimit reads a cgroup memory limit: "max" (v2) or a figure at or
// near the largest int64 (v1's "unlimited", page-rounded) mean none.
func parseLimit(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0, false
	}
	return n, true
}
