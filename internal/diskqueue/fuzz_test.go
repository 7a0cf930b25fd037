package diskqueue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// fuzzBase is a small valid queue, as file name → bytes: 80 records over
// several segments, the first 10 acknowledged.
func fuzzBase(f *testing.F) map[string][]byte {
	dir := f.TempDir()
	o := Options{Dir: dir, SegmentBytes: 1024, MaxBytes: 1 << 20, Sync: SyncNever}
	q, err := Open(o)
	if err != nil {
		f.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 80; i++ {
		if err := q.Append(context.Background(), damagePayload(i, rng.Intn(120))); err != nil {
			f.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		rec, err := q.Next(context.Background())
		if err != nil {
			f.Fatal(err)
		}
		q.Ack(rec.End)
	}
	q.Close()
	files := map[string][]byte{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// mutate applies a script of edits to the queue's files: each 4 bytes pick
// a file, an edit and an offset (bit flips, a zeroed run, a truncation,
// bytes appended, a 4-byte overwrite such as a length field).
func mutate(files map[string][]byte, script []byte) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for len(script) >= 4 {
		name := names[int(script[0])%len(names)]
		b := files[name]
		off := int(binary.LittleEndian.Uint16(script[2:4])) % (len(b) + 1)
		op := script[1] % 5
		script = script[4:]
		switch op {
		case 0:
			if off < len(b) && len(script) > 0 {
				b[off] ^= script[0] | 1
			}
		case 1:
			clear(b[off:min(off+64, len(b))])
		case 2:
			b = b[:off]
		case 3:
			n := min(len(script), 32)
			b = append(b, script[:n]...)
		case 4:
			if off+4 <= len(b) && len(script) >= 4 {
				copy(b[off:], script[:4])
			}
		}
		files[name] = b
	}
}

// FuzzOpen: whatever is done to a queue's files, Open neither panics nor
// hangs, counts exactly what it will deliver, and the reader delivers only
// records that were appended, each once, in order.
func FuzzOpen(f *testing.F) {
	base := fuzzBase(f)
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 2})                 // a zeroed run in a segment
	f.Add([]byte{2, 4, 40, 0, 0xff, 0, 0, 0}) // a length overwritten
	f.Add([]byte{0, 2, 9, 0, 3, 3, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, script []byte) {
		files := map[string][]byte{}
		for n, b := range base {
			files[n] = slices.Clone(b)
		}
		mutate(files, script)
		dir := t.TempDir()
		for n, b := range files {
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- openAndDrain(dir) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Open and drain did not finish in 20 s")
		}
	})
}

func openAndDrain(dir string) error {
	q, err := Open(Options{Dir: dir, SegmentBytes: 1024, MaxBytes: 1 << 20, Sync: SyncNever})
	if err != nil {
		return fmt.Errorf("Open: %w", err)
	}
	defer q.Close()
	n := q.Stats().Records
	last := -1
	for k := int64(0); k < n; k++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rec, err := q.Next(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("record %d of the %d counted at Open: %w", k, n, err)
		}
		p := rec.Payload
		if len(p) < 13 {
			return fmt.Errorf("delivered a payload never appended: %q", p)
		}
		i, err := strconv.Atoi(string(p[4:12]))
		if err != nil || string(p) != string(damagePayload(i, len(p)-13)) || i >= 80 {
			return fmt.Errorf("delivered a payload never appended: %.40q", p)
		}
		if i <= last {
			return fmt.Errorf("record %d delivered after %d", i, last)
		}
		last = i
		if err := q.Ack(rec.End); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if rec, err := q.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("more than the %d records counted at Open: %.40q, %v", n, rec.Payload, err)
	}
	return nil
}
