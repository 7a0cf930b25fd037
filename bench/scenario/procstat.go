package scenario

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports for this harness.
const clockTicks = 100

// usage is what the harness reads of a process from /proc at one moment.
type usage struct {
	cpuSeconds float64 // user + system CPU time so far
	rssBytes   int64   // resident set size now
	hwmBytes   int64   // peak resident set size so far (VmHWM)
	anonBytes  int64   // of rssBytes, anonymous memory (heap, stacks): RssAnon
	writeBytes int64   // bytes this process caused to be written to storage
}

// readUsage reads /proc/<pid>/{stat,status,io}.
func readUsage(pid int) (usage, error) {
	var u usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces; fields after its ')' are fixed.
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(f))
	}
	utime, _ := strconv.ParseFloat(f[11], 64) // field 14 overall
	stime, _ := strconv.ParseFloat(f[12], 64) // field 15 overall
	u.cpuSeconds = (utime + stime) / clockTicks

	if err := scanKV(fmt.Sprintf("/proc/%d/status", pid), func(k, v string) {
		switch k {
		case "VmRSS":
			u.rssBytes = kiB(v)
		case "VmHWM":
			u.hwmBytes = kiB(v)
		case "RssAnon":
			u.anonBytes = kiB(v)
		}
	}); err != nil {
		return u, err
	}
	// /proc/<pid>/io needs the same user or root; without it the column stays 0.
	_ = scanKV(fmt.Sprintf("/proc/%d/io", pid), func(k, v string) {
		if k == "write_bytes" {
			u.writeBytes, _ = strconv.ParseInt(v, 10, 64)
		}
	})
	return u, nil
}

func scanKV(path string, fn func(k, v string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			fn(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return sc.Err()
}

// kiB parses "1234 kB".
func kiB(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	return n * 1024
}

// ProcessCPU is the user + system CPU time pid has used so far, and its
// peak resident set size, for harnesses outside this package.
func ProcessCPU(pid int) (cpuSeconds float64, peakRSS int64, err error) {
	u, err := readUsage(pid)
	return u.cpuSeconds, u.hwmBytes, err
}
