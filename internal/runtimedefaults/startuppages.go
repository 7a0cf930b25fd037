package runtimedefaults

import (
	"strconv"
	"strings"
	"time"
)

// StartupPagesDelay is when, after the process starts, its executable's
// pages are released the second time: by then the collector has read its
// config and started its components, and what they touched only to start is
// not needed again.
const StartupPagesDelay = 15 * time.Second

// span is an address range [lo, hi).
type span struct{ lo, hi uintptr }

// executableSpans returns the read-only mappings of exe (text, rodata,
// pclntab) in maps, the text of /proc/self/maps. Writable mappings (data,
// bss) are left out: their pages may be dirty and are the heap's to manage.
func executableSpans(maps, exe string) []span {
	var out []span
	for _, line := range strings.Split(maps, "\n") {
		// address perms offset dev inode path; the path may hold spaces
		f := strings.Fields(line)
		if len(f) < 6 || strings.Contains(f[1], "w") {
			continue
		}
		if path := strings.Join(f[5:], " "); path != exe {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		out = append(out, span{uintptr(a), uintptr(b)})
	}
	return out
}
