package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tinyDisk mounts a 1 MiB tmpfs for the test (root only, as `make test`
// runs) and returns its path.
func tinyDisk(t *testing.T) string {
	t.Helper()
	return tmpfs(t, "size=1m")
}

// tmpfs mounts a tmpfs with the given options for the test and returns its path.
func tmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs (%s; needs root, as make test runs): %v: %s", opts, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// A full disk: Append fails with ENOSPC instead of pretending, nothing
// written before is lost, and once records are acknowledged and space is
// freed the queue takes records again, with no damage from the failed write.
func TestDiskFull(t *testing.T) {
	dir := tinyDisk(t)
	q := open(t, Options{Dir: dir, MaxBytes: 64 << 20, SegmentBytes: 128 << 10, Sync: SyncAlways})
	defer q.Close()
	payload := func(i int) []byte { return []byte(fmt.Sprintf("%06d-%s", i, strings.Repeat("x", 3000))) }
	n := 0
	var err error
	for ; n < 10000; n++ {
		if err = q.Append(context.Background(), payload(n)); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("after %d records: err %v, want ENOSPC", n, err)
	}
	got := drain(t, q, true)
	if len(got) != n {
		t.Fatalf("read back %d records, %d were acknowledged by Append", len(got), n)
	}
	for i, p := range got {
		if p != string(payload(i)) {
			t.Fatalf("record %d differs", i)
		}
	}
	// Acknowledged segments are gone: room for more.
	for i := n; i < n+100; i++ {
		if err := q.Append(context.Background(), payload(i)); err != nil {
			t.Fatalf("after freeing space, record %d: %v", i, err)
		}
	}
	got = drain(t, q, true)
	if len(got) != 100 || got[0] != string(payload(n)) || got[99] != string(payload(n+99)) {
		t.Fatalf("after the disk-full error: read %d records, want the 100 appended since", len(got))
	}
	if st := q.Stats(); st.CorruptRecs != 0 {
		t.Fatalf("%d corrupt records: the failed write left a partial record behind", st.CorruptRecs)
	}
	t.Logf("%d records of 3 KiB fit on the 1 MiB disk; ENOSPC reported; 100 more taken after the acknowledgements", n)
}
