package diskqueue

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The sequence that lost data: a checkpoint pointing past the data (the
// segment was cut after everything was acknowledged) was clamped at Open but
// not written back, so records appended afterwards lay below the stale
// checkpoint and the next Open skipped them.
func TestClampedCheckpointIsWrittenBack(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir}
	q := open(t, o)
	appendN(t, q, 0, 3)
	same(t, drain(t, q, true), want(0, 3))
	q.Close()
	segs, _ := listSegments(dir)
	if err := os.Truncate(segPath(dir, segs[len(segs)-1].base), 0); err != nil {
		t.Fatal(err)
	}
	q = open(t, o)
	appendN(t, q, 3, 2)
	q.Close() // without acknowledging
	q = open(t, o)
	defer q.Close()
	if st := q.Stats(); st.Records != 2 {
		t.Fatalf("after reopen: %d records, want the 2 appended after the clamp", st.Records)
	}
	same(t, drain(t, q, true), want(3, 2))
}

// nextWithin calls Next with ctx and fails the test when it has not
// returned within limit: a Next that spins ignores its context.
func nextWithin(t *testing.T, q *Queue, ctx context.Context, limit time.Duration) (Record, error) {
	t.Helper()
	type res struct {
		rec Record
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := q.Next(ctx); ch <- res{r, err} }()
	select {
	case r := <-ch:
		return r.rec, r.err
	case <-time.After(limit):
		t.Fatalf("Next did not return within %v", limit)
		return Record{}, nil
	}
}

// A segment file removed by someone else while queued (by hand, by a disk
// cleaner): its records are lost and counted, reading goes on with the next
// segment instead of spinning on ENOENT, and Next still honours its context.
func TestSegmentRemovedAtRunTime(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Options{Dir: dir, SegmentBytes: 256, MaxBytes: 1 << 20, SyncInterval: 10 * time.Millisecond})
	defer func() { q.Close() }()
	appendN(t, q, 0, 40)
	segs, _ := listSegments(dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	// Read the first segment, then remove the second before it is opened.
	first := 0
	for {
		rec, err := nextWithin(t, q, context.Background(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		q.Ack(rec.End)
		first++
		if rec.End >= segs[0].end() {
			break
		}
	}
	if err := os.Remove(segPath(dir, segs[1].base)); err != nil {
		t.Fatal(err)
	}
	lostHere := int(countInSeg(t, q, segs[1]))
	var got []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		rec, err := nextWithin(t, q, ctx, 5*time.Second)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(rec.Payload))
		q.Ack(rec.End)
	}
	same(t, got, want(first+lostHere, 40-first-lostHere))
	st := q.Stats()
	if st.CorruptRecs != 1 || st.CorruptBytes != segs[1].size || st.IOErrors != 1 {
		t.Fatalf("stats %+v: want the vanished segment counted once with its %d bytes", st, segs[1].size)
	}

	// The head removed: the queue notices within a sync interval and starts
	// a new head, so what is appended after that survives a restart.
	segs, _ = listSegments(dir)
	os.Remove(segPath(dir, segs[len(segs)-1].base))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if now, _ := listSegments(dir); len(now) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new head within 5 s of the old one being removed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	appendN(t, q, 100, 3)
	q.Close()
	q = open(t, Options{Dir: dir, SegmentBytes: 256, MaxBytes: 1 << 20})
	same(t, drain(t, q, true), want(100, 3))
}

// countInSeg counts the records a segment holds, from the layout the test
// wrote (every record-%06d is the same size).
func countInSeg(t *testing.T, q *Queue, s segment) int64 {
	t.Helper()
	return s.size / int64(headerSize+len("record-000000"))
}

// A rotation that cannot create the next file (here the file system has no
// inodes left; EMFILE or EACCES do the same) leaves the current head in
// use: appends go on, the failure is counted, and the rotation succeeds once
// the cause is gone.
func TestFailedRotationKeepsTheHead(t *testing.T) {
	dir := tmpfs(t, "size=1m,nr_inodes=3") // the root, the checkpoint, one segment
	q := open(t, Options{Dir: dir, SegmentBytes: 256, MaxBytes: 1 << 20})
	defer q.Close()
	appendN(t, q, 0, 30)
	st := q.Stats()
	if st.IOErrors == 0 || !errors.Is(st.LastIOError, syscall.ENOSPC) {
		t.Fatalf("failed rotation not counted: %+v", st)
	}
	t.Logf("counted: %v", st.LastIOError)
	if segs, _ := listSegments(dir); len(segs) != 1 || segs[0].size < 30*29 {
		t.Fatalf("segments %+v, want the head alone holding all 30 records while rotation fails", segs)
	}
	if out, err := exec.Command("mount", "-o", "remount,nr_inodes=100", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
	appendN(t, q, 30, 10)
	if segs, _ := listSegments(dir); len(segs) < 2 {
		t.Fatalf("%d segments: rotation not retried once possible", len(segs))
	}
	same(t, drain(t, q, true), want(0, 40))
}

// A failed fsync (EIO from a failing disk; made here through the fsync
// hook, since this machine has no device-mapper to fail a real one) is
// counted, reported by the next Append, and writing moves to a new segment.
func TestFsyncFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	fail := make(chan struct{}, 1)
	o := Options{Dir: dir, SyncInterval: 10 * time.Millisecond, fsync: func(f *os.File) error {
		select {
		case <-fail:
			return &os.PathError{Op: "fsync", Path: f.Name(), Err: syscall.EIO}
		default:
			return f.Sync()
		}
	}}
	q := open(t, o)
	defer q.Close()
	appendN(t, q, 0, 5)
	fail <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for q.Stats().IOErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the failed fsync was never counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	err := q.Append(context.Background(), []byte("record-000005"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append after a failed fsync: %v, want the EIO reported", err)
	}
	t.Logf("Append said: %v", err)
	appendN(t, q, 5, 3) // said once; the queue goes on
	if segs, _ := listSegments(dir); len(segs) != 2 {
		t.Fatalf("%d segments, want writing moved to a new one after the failed fsync", len(segs))
	}
	same(t, drain(t, q, true), want(0, 8))
}

// A record larger than MaxRecordSize would be skipped as corrupt when read:
// Append refuses it.
func TestRecordOverMaxRecordSizeIsRefused(t *testing.T) {
	q := open(t, Options{Dir: t.TempDir(), MaxBytes: 4 << 30, SegmentBytes: 512 << 20})
	defer q.Close()
	err := q.Append(context.Background(), make([]byte, MaxRecordSize+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of %d bytes: %v, want ErrTooLarge", MaxRecordSize+1, err)
	}
	if st := q.Stats(); st.Bytes != 0 {
		t.Fatalf("%d bytes written for a refused record", st.Bytes)
	}
}
