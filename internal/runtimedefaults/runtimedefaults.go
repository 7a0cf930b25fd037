// Package runtimedefaults gives the Go runtime Sluice's defaults where the
// user has set none: a GC target of 50% (GOGC=50), and a soft memory limit
// of 90% of the container's (cgroup) memory limit (GOMEMLIMIT). The sluice
// binary applies them before anything else runs (distributions/sluice
// calls Apply from an init function); the environment variables win.
//
// Why: with Go's default GOGC=100 the heap grows to twice what is live
// before a collection, and that headroom, not the live data, is most of a
// scraping agent's peak memory. Halving it costs some CPU in the collector
// (vmagent makes the same choice). The memory limit makes the collector
// work harder as the container's limit nears instead of the process being
// killed there; it is soft, so it never fails an allocation.
package runtimedefaults

import (
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// GCPercent is the GOGC Sluice runs with unless GOGC is set.
const GCPercent = 50

// MemoryLimitFraction is the part of the cgroup memory limit that becomes
// the soft memory limit unless GOMEMLIMIT is set.
const MemoryLimitFraction = 0.9

// cgroupRoot is where the cgroup filesystem is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// Settings is what Apply decided; zero fields were left as they were.
type Settings struct {
	GCPercent   int
	MemoryLimit int64 // bytes
}

// Apply sets the defaults the environment does not set and returns them.
func Apply() Settings {
	s := Decide(os.Getenv, func() (int64, bool) {
		self, _ := os.ReadFile("/proc/self/cgroup")
		return readCgroupLimit(os.DirFS(cgroupRoot), string(self))
	})
	if s.GCPercent != 0 {
		debug.SetGCPercent(s.GCPercent)
	}
	if s.MemoryLimit != 0 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	return s
}

// Decide works out the settings from the environment (getenv) and the
// cgroup memory limit (limit; ok false when there is none).
func Decide(getenv func(string) string, limit func() (int64, bool)) Settings {
	var s Settings
	if getenv("GOGC") == "" {
		s.GCPercent = GCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		if l, ok := limit(); ok {
			s.MemoryLimit = int64(float64(l) * MemoryLimitFraction)
		}
	}
	return s
}

// readCgroupLimit finds the memory limit of the process's cgroup in root
// (the cgroup filesystem): its own cgroup v2 directory, named in self
// (/proc/self/cgroup: "0::/system.slice/sluice.service" under systemd's
// MemoryMax=), then the root of the mount, which is the process's own
// cgroup inside a container, for v2 and for v1.
func readCgroupLimit(root fs.FS, self string) (int64, bool) {
	var files []string
	for _, line := range strings.Split(self, "\n") {
		if p, ok := strings.CutPrefix(line, "0::/"); ok && p != "" {
			files = append(files, path.Join(p, "memory.max"))
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
