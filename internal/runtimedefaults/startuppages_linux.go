package runtimedefaults

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// releaseStartupPages releases the executable's pages now and once more
// StartupPagesDelay after start.
func releaseStartupPages() {
	ReleaseExecutablePages()
	time.AfterFunc(StartupPagesDelay, func() { ReleaseExecutablePages() })
}

// ReleaseExecutablePages asks the kernel to reclaim the resident pages of
// the process's own executable (MADV_PAGEOUT over its read-only mappings)
// and returns how many bytes of mappings it advised. Pages that are used
// again fault back in from the file; pages another process maps as well are
// left to it. Kernels before 5.4 do not know MADV_PAGEOUT: nothing happens
// there.
func ReleaseExecutablePages() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	var n int
	for _, s := range executableSpans(string(maps), exe) {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s.lo, s.hi-s.lo, unix.MADV_PAGEOUT); e != 0 {
			return n, e
		}
		n += int(s.hi - s.lo)
	}
	return n, nil
}
