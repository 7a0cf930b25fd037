package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T, o Options) *Queue {
	t.Helper()
	q, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func appendN(t *testing.T, q *Queue, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := q.Append(context.Background(), []byte(fmt.Sprintf("record-%06d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

// drain reads everything available (without waiting), acking as it goes
// when ack is true, and returns the payloads.
func drain(t *testing.T, q *Queue, ack bool) []string {
	t.Helper()
	var out []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		rec, err := q.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(rec.Payload))
		if ack {
			if err := q.Ack(rec.End); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func want(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf("record-%06d", i))
	}
	return out
}

func same(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d\n got %v\nwant %v", len(got), len(want), head(got), head(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

func TestOrderAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, SegmentBytes: 256, MaxBytes: 1 << 20}
	q := open(t, o)
	appendN(t, q, 0, 100)
	if segs, _ := listSegments(dir); len(segs) < 5 {
		t.Fatalf("%d segments; small segments should rotate often", len(segs))
	}
	same(t, drain(t, q, false)[:40], want(0, 40))
	// Acknowledge the first 40 only: a reader that read further but did not
	// ack must get the rest again after a restart.
	q.Close()
	q = open(t, o)
	got := drain(t, q, false)
	same(t, got, want(0, 100))
	q.Close()

	q = open(t, o)
	for i := 0; i < 40; i++ {
		rec, err := q.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(rec.End); err != nil {
			t.Fatal(err)
		}
	}
	if st := q.Stats(); st.Records != 60 {
		t.Fatalf("records = %d, want 60 unacknowledged", st.Records)
	}
	q.Close()
	q = open(t, o)
	defer q.Close()
	if st := q.Stats(); st.Records != 60 || st.Oldest.IsZero() {
		t.Fatalf("after reopen: %+v, want 60 records and an oldest time", st)
	}
	if st := q.Stats(); st.PendingBytes <= 0 || st.PendingBytes >= st.Bytes {
		t.Fatalf("after reopen: %d bytes pending of %d on disk, want some but not all (40 of 100 were acknowledged)", st.PendingBytes, st.Bytes)
	}
	same(t, drain(t, q, true), want(40, 60))
	if st := q.Stats(); st.PendingBytes != 0 || st.Bytes == 0 {
		t.Fatalf("all acknowledged: %d bytes pending of %d on disk, want 0 pending while the head still holds them", st.PendingBytes, st.Bytes)
	}
	if segs, _ := listSegments(dir); len(segs) != 1 {
		t.Fatalf("%d segments left after everything was acknowledged, want only the head", len(segs))
	}
}

func TestTornTailIsRepaired(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir}
	q := open(t, o)
	appendN(t, q, 0, 10)
	q.Close()
	segs, _ := listSegments(dir)
	path := segPath(dir, segs[len(segs)-1].base)
	// Half a record: a header promising 100 bytes, and 10 of them.
	torn := encode(1, make([]byte, 100))[:headerSize+10]
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(torn)
	f.Close()

	q = open(t, o)
	if st := q.Stats(); st.RepairedBytes != int64(len(torn)) {
		t.Fatalf("repaired %d bytes, want %d", st.RepairedBytes, len(torn))
	}
	appendN(t, q, 10, 5) // the queue goes on after the cut
	same(t, drain(t, q, true), want(0, 15))
	q.Close()
}

func TestCorruptRecordIsSkippedAndCounted(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, SegmentBytes: 200, MaxBytes: 1 << 20}
	q := open(t, o)
	appendN(t, q, 0, 20)
	q.Close()
	// Flip a payload byte of the first record of the first segment.
	segs, _ := listSegments(dir)
	path := segPath(dir, segs[0].base)
	b, _ := os.ReadFile(path)
	b[headerSize+2] ^= 0xff
	os.WriteFile(path, b, 0o644)

	q = open(t, o)
	defer q.Close()
	got := drain(t, q, true)
	same(t, got, want(1, 19))
	if st := q.Stats(); st.CorruptRecs != 1 {
		t.Fatalf("corrupt = %d, want 1", st.CorruptRecs)
	}
}

func TestDamagedCheckpointSlotFallsBack(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir}
	q := open(t, o)
	appendN(t, q, 0, 10)
	for i := 0; i < 4; i++ {
		rec, _ := q.Next(context.Background())
		q.Ack(rec.End)
	}
	q.Close()
	// Spoil the newest slot (seq 4 lives in slot 0): the older one (3 acked) wins.
	path := filepath.Join(dir, ckptName)
	b, _ := os.ReadFile(path)
	b[3] ^= 0xff
	os.WriteFile(path, b, 0o644)
	q = open(t, o)
	defer q.Close()
	same(t, drain(t, q, true), want(3, 7))
}

func TestFullDropsOldestAndCounts(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Options{Dir: dir, MaxBytes: 4096, SegmentBytes: 1024})
	defer q.Close()
	appendN(t, q, 0, 300) // ~28 bytes each: far over 4 KiB
	st := q.Stats()
	if st.Bytes > 4096 || st.DroppedRecs == 0 || st.DroppedRecs+st.Records != 300 {
		t.Fatalf("stats %+v: want at most 4096 bytes and dropped+kept = 300", st)
	}
	got := drain(t, q, true)
	same(t, got, want(300-len(got), len(got))) // the newest survive, in order
}

func TestFullBlocksUntilAcked(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Options{Dir: dir, MaxBytes: 4096, SegmentBytes: 1024, Full: Block})
	defer q.Close()
	n := 0
	for ; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := q.Append(ctx, []byte(fmt.Sprintf("record-%06d", n)))
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("full queue: %v, want the context's deadline", err)
			}
			break
		}
	}
	done := make(chan error, 1)
	go func() { done <- q.Append(context.Background(), []byte(fmt.Sprintf("record-%06d", n))) }()
	select {
	case err := <-done:
		t.Fatalf("Append on a full queue returned %v before anything was acknowledged", err)
	case <-time.After(50 * time.Millisecond):
	}
	same(t, drain(t, q, true)[:n], want(0, n))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.DroppedRecs != 0 {
		t.Fatalf("block policy dropped %d records", st.DroppedRecs)
	}
}

func TestConcurrentAppendersKeepTheirOrder(t *testing.T) {
	q := open(t, Options{Dir: t.TempDir(), SegmentBytes: 4096})
	defer q.Close()
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := q.Append(context.Background(), []byte(fmt.Sprintf("%d:%06d", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	got := make(chan []string)
	go func() {
		var out []string
		for len(out) < writers*each {
			rec, err := q.Next(context.Background())
			if err != nil {
				t.Error(err)
				break
			}
			out = append(out, string(rec.Payload))
			q.Ack(rec.End)
		}
		got <- out
	}()
	wg.Wait()
	out := <-got
	last := map[string]string{}
	for _, r := range out {
		w, seq := r[:1], r[2:]
		if seq <= last[w] && last[w] != "" {
			t.Fatalf("writer %s: %s after %s", w, seq, last[w])
		}
		last[w] = seq
	}
}

func TestClosedQueue(t *testing.T) {
	q := open(t, Options{Dir: t.TempDir()})
	waiting := make(chan error, 1)
	go func() { _, err := q.Next(context.Background()); waiting <- err }()
	time.Sleep(20 * time.Millisecond)
	q.Close()
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next on close: %v", err)
	}
	if err := q.Append(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after close: %v", err)
	}
}
