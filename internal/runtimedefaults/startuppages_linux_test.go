package runtimedefaults

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile reads the process's resident file-backed memory (RssFile, kB).
func rssFile(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// The test binary's own pages leave its RSS once released, and the process
// goes on running code from them.
func TestReleaseExecutablePagesShrinksRssFile(t *testing.T) {
	before := rssFile(t)
	n, err := ReleaseExecutablePages()
	if err != nil {
		t.Fatalf("released %d bytes of mappings, then: %v", n, err)
	}
	after := rssFile(t)
	t.Logf("RssFile %d kB -> %d kB (%d MiB of read-only executable mappings advised)", before, after, n>>20)
	if n == 0 {
		t.Fatal("no read-only mapping of the executable found in /proc/self/maps")
	}
	if after >= before {
		t.Errorf("RssFile %d kB after releasing the executable's pages, %d kB before", after, before)
	}
}
