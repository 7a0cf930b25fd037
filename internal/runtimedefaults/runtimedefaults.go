// Package runtimedefaults gives the Go runtime Sluice's defaults where the
// user has set none: a soft memory limit of 90% of the process's cgroup
// memory limit (GOMEMLIMIT), so the collector works harder as a container's
// or a systemd unit's limit nears instead of being killed there. It is soft:
// it never fails an allocation. The sluice binary applies it before
// anything else runs (distributions/sluice calls Apply from an init
// function); GOMEMLIMIT in the environment wins.
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

// cgroupRoot is where the cgroup filesystem is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// Settings is what Apply decided; zero fields were left as they were.
type Settings struct {
	MemoryLimit int64 // bytes
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
