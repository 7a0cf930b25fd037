package diskqueue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The child side of TestKillDuringAppend: append numbered records as fast as
// possible and print each number once Append has returned.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DISKQUEUE_CRASH_WRITER"); dir != "" {
		from, _ := strconv.Atoi(os.Getenv("DISKQUEUE_CRASH_FROM"))
		q, err := Open(Options{Dir: dir, SegmentBytes: 4096, MaxBytes: 1 << 30, Sync: SyncNever})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		w := bufio.NewWriter(os.Stdout)
		for i := from; ; i++ {
			if err := q.Append(context.Background(), []byte(fmt.Sprintf("rec-%08d-%s", i, strings.Repeat("x", i%200)))); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(4)
			}
			fmt.Fprintln(w, i)
			w.Flush()
		}
	}
	os.Exit(m.Run())
}

// Kill a writer process with SIGKILL at random moments, many times over one
// queue: every record whose Append returned before the kill must be there
// after reopening, in order, with nothing lost between restarts. (A kill
// of the process keeps what reached the page cache, so SyncNever suffices;
// a machine crash is what the sync policy is for.)
func TestKillDuringAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	next := 0 // first number the next writer appends
	const iterations = 25
	for it := 0; it < iterations; it++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "DISKQUEUE_CRASH_WRITER="+dir, "DISKQUEUE_CRASH_FROM="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked, writing := make(chan int, 1), make(chan struct{})
		go func() {
			last := next - 1
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := strconv.Atoi(sc.Text()); err == nil {
					if last == next-1 {
						close(writing)
					}
					last = n
				}
			}
			acked <- last
		}()
		// Kill at a random moment once the writer is appending (a loaded
		// machine can take longer than the random delay to start it).
		select {
		case <-writing:
		case <-time.After(30 * time.Second):
		}
		time.Sleep(time.Duration(rng.Intn(60)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		lastAcked := <-acked

		// Reopen and check: every acknowledged record present; the writer
		// may have appended one more whose acknowledgement it never printed.
		q, err := Open(Options{Dir: dir, SegmentBytes: 4096, MaxBytes: 1 << 30})
		if err != nil {
			t.Fatalf("iteration %d: reopening after kill -9: %v", it, err)
		}
		got := 0
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			rec, err := q.Next(ctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			wantPrefix := fmt.Sprintf("rec-%08d-", next+got)
			if !strings.HasPrefix(string(rec.Payload), wantPrefix) {
				t.Fatalf("iteration %d: record %q, want %s…", it, rec.Payload, wantPrefix)
			}
			got++
			if err := q.Ack(rec.End); err != nil {
				t.Fatal(err)
			}
		}
		if next+got-1 < lastAcked {
			t.Fatalf("iteration %d: writer acknowledged up to %d, queue held only up to %d", it, lastAcked, next+got-1)
		}
		if st := q.Stats(); st.CorruptRecs != 0 {
			t.Fatalf("iteration %d: %d corrupt records after a kill", it, st.CorruptRecs)
		}
		next += got
		q.Close()
	}
	if next < iterations {
		t.Fatalf("only %d records over %d runs; the writer barely ran", next, iterations)
	}
	t.Logf("%d kills, %d records delivered, none lost", iterations, next)
}
