package diskqueue

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// placed is where one appended record lies in the stream.
type placed struct {
	idx        int
	from, to   int64 // stream offsets of the whole record
	segBase    int64
	headSeg    bool
	payloadLen int
}

// damageQueue writes a queue of n records of varied sizes over several
// segments, closes it, and returns the options and where each record lies.
func damageQueue(t *testing.T, rng *rand.Rand, n int) (Options, []placed) {
	t.Helper()
	o := Options{Dir: t.TempDir(), SegmentBytes: 48 << 10, MaxBytes: 1 << 30}
	q := open(t, o)
	// n records, then more until the head is half full, so that damage in
	// the head can have intact records after it.
	for i := 0; i < n || q.Stats().Bytes%o.SegmentBytes < o.SegmentBytes/2; i++ {
		if err := q.Append(context.Background(), damagePayload(i, rng.Intn(3000))); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	segs, err := listSegments(o.Dir)
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments (%v); the table wants at least 3", len(segs), err)
	}
	var recs []placed
	for si, s := range segs {
		b, err := os.ReadFile(segPath(o.Dir, s.base))
		if err != nil {
			t.Fatal(err)
		}
		for pos := 0; pos < len(b); {
			p, _, size, err := DecodeRecord(b[pos:])
			if err != nil {
				t.Fatalf("fresh queue does not decode at %d: %v", pos, err)
			}
			idx, _ := strconv.Atoi(string(p[4:12]))
			recs = append(recs, placed{idx: idx, from: s.base + int64(pos), to: s.base + int64(pos+size),
				segBase: s.base, headSeg: si == len(segs)-1, payloadLen: len(p)})
			pos += size
		}
	}
	if len(recs) < n {
		t.Fatalf("found %d records on disk, appended at least %d", len(recs), n)
	}
	return o, recs
}

// damagePayload is record i: recognisable, with its index, of varied size.
func damagePayload(i, filler int) []byte {
	return []byte(fmt.Sprintf("rec-%08d-%s", i, strings.Repeat(string(rune('a'+i%26)), filler)))
}

// A damage returns the stream range it spoiled (records overlapping it may
// be lost), or an empty range when it spoiled no record.
type damage func(t *testing.T, rng *rand.Rand, dir string, seg segment, recs []placed) span

func segRecs(recs []placed, base int64) []placed {
	var out []placed
	for _, r := range recs {
		if r.segBase == base {
			out = append(out, r)
		}
	}
	return out
}

func rewrite(t *testing.T, dir string, seg segment, edit func(b []byte) []byte) {
	t.Helper()
	path := segPath(dir, seg.base)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// inner picks a stream range of n bytes well inside the segment, so that
// intact records follow it.
func inner(rng *rand.Rand, seg segment, n int64, align int64) int64 {
	lo, hi := seg.size/8, seg.size*5/8
	off := lo + rng.Int63n(hi-lo)
	return off / align * align
}

var damages = map[string]damage{
	"zeroed page": func(t *testing.T, rng *rand.Rand, dir string, seg segment, recs []placed) span {
		off := inner(rng, seg, 4096, 4096)
		rewrite(t, dir, seg, func(b []byte) []byte { clear(b[off : off+4096]); return b })
		return span{seg.base + off, seg.base + off + 4096}
	},
	"flipped bits": func(t *testing.T, rng *rand.Rand, dir string, seg segment, recs []placed) span {
		off := inner(rng, seg, 64, 1)
		rewrite(t, dir, seg, func(b []byte) []byte {
			for i := 0; i < 5; i++ {
				b[off+int64(rng.Intn(64))] ^= 1 << rng.Intn(8)
			}
			return b
		})
		return span{seg.base + off, seg.base + off + 64}
	},
	"length overwritten": func(t *testing.T, rng *rand.Rand, dir string, seg segment, recs []placed) span {
		rs := segRecs(recs, seg.base)
		r := rs[len(rs)/3+rng.Intn(len(rs)/3)]
		lengths := []uint32{0, 1, uint32(r.payloadLen + 1), uint32(r.payloadLen - 1), uint32(r.payloadLen * 3), 0xffffffff, MaxRecordSize}
		l := lengths[rng.Intn(len(lengths))]
		rewrite(t, dir, seg, func(b []byte) []byte {
			p := r.from - seg.base
			b[p], b[p+1], b[p+2], b[p+3] = byte(l), byte(l>>8), byte(l>>16), byte(l>>24)
			return b
		})
		return span{r.from, r.from + 4}
	},
	"garbage appended": func(t *testing.T, rng *rand.Rand, dir string, seg segment, recs []placed) span {
		g := make([]byte, 100+rng.Intn(5000))
		rng.Read(g)
		rewrite(t, dir, seg, func(b []byte) []byte { return append(b, g...) })
		return span{} // no record is spoiled: nothing may be lost
	},
	"zero-filled tail": func(t *testing.T, rng *rand.Rand, dir string, seg segment, recs []placed) span {
		rewrite(t, dir, seg, func(b []byte) []byte { return append(b, make([]byte, 4096+rng.Intn(8192))...) })
		return span{}
	},
	"truncated": func(t *testing.T, rng *rand.Rand, dir string, seg segment, recs []placed) span {
		off := inner(rng, seg, 1, 1)
		if err := os.Truncate(segPath(dir, seg.base), off); err != nil {
			t.Fatal(err)
		}
		return span{seg.base + off, seg.end()}
	},
}

// Every damage, in a segment in the middle and in the head, at random
// offsets under several seeds: after a restart everything the damage did not
// touch is delivered, in order, nothing that was not appended is delivered,
// what is lost is at most the records overlapping the damage, and a loss is
// counted.
func TestDamagedQueueLosesOnlyDamagedRecords(t *testing.T) {
	for name, dmg := range damages {
		for _, where := range []string{"middle", "head"} {
			for seed := int64(1); seed <= 4; seed++ {
				t.Run(fmt.Sprintf("%s/%s/%d", name, where, seed), func(t *testing.T) {
					rng := rand.New(rand.NewSource(seed))
					o, recs := damageQueue(t, rng, 400)
					segs, _ := listSegments(o.Dir)
					seg := segs[len(segs)/2]
					if where == "head" {
						seg = segs[len(segs)-1]
					}
					hit := dmg(t, rng, o.Dir, seg, recs)
					checkAfterDamage(t, o, recs, hit)
				})
			}
		}
	}
}

func checkAfterDamage(t *testing.T, o Options, recs []placed, hit span) {
	t.Helper()
	q := open(t, o)
	defer q.Close()
	st0 := q.Stats()
	got := drainIdx(t, q)
	if int64(len(got)) != st0.Records {
		t.Errorf("Open counted %d records, %d were delivered", st0.Records, len(got))
	}
	delivered := map[int]bool{}
	last := -1
	for _, i := range got {
		if i <= last {
			t.Fatalf("record %d delivered after %d", i, last)
		}
		if i < 0 || i >= len(recs) {
			t.Fatalf("delivered record %d that was never appended", i)
		}
		last = i
		delivered[i] = true
	}
	lost := 0
	for _, r := range recs {
		overlaps := r.from < hit.to && r.to > hit.from
		if !delivered[r.idx] {
			lost++
			if !overlaps {
				t.Errorf("record %d [%d,%d) lost, but the damage spoiled only [%d,%d)", r.idx, r.from, r.to, hit.from, hit.to)
			}
		}
	}
	st := q.Stats()
	if lost > 0 && st.CorruptRecs == 0 && st.RepairedBytes == 0 {
		t.Errorf("%d records lost and none counted: %+v", lost, st)
	}
	if st.CorruptRecs > 0 && st.CorruptBytes == 0 {
		t.Errorf("corrupt ranges counted without their bytes: %+v", st)
	}
	t.Logf("damage [%d,%d): %d of %d records lost; corrupt ranges %d (%d bytes), torn tail %d bytes",
		hit.from, hit.to, lost, len(recs), st.CorruptRecs, st.CorruptBytes, st.RepairedBytes)
}

// drainIdx reads and acknowledges everything, returning the record indexes.
func drainIdx(t *testing.T, q *Queue) []int {
	t.Helper()
	var out []int
	for _, p := range drain(t, q, true) {
		if len(p) < 13 {
			t.Fatalf("delivered a payload that was never appended: %q", p)
		}
		i, err := strconv.Atoi(p[4:12])
		if err != nil || !strings.HasPrefix(p, "rec-") || p != string(damagePayload(i, len(p)-13)) {
			t.Fatalf("delivered a payload that was never appended: %.40q", p)
		}
		out = append(out, i)
	}
	return out
}

// Both checkpoint slots spoiled: the queue replays from its oldest segment,
// so acknowledged records may come again but nothing unacknowledged is lost.
func TestBothCheckpointSlotsCorrupted(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	o, recs := damageQueue(t, rng, 300)
	q := open(t, o)
	const acked = 120
	for i := 0; i < acked; i++ {
		rec, err := q.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		q.Ack(rec.End)
	}
	q.Close()
	path := filepath.Join(o.Dir, ckptName)
	b, _ := os.ReadFile(path)
	for i := range b {
		b[i] ^= 0x5a
	}
	os.WriteFile(path, b, 0o644)
	q = open(t, o)
	defer q.Close()
	got := drainIdx(t, q)
	if len(got) == 0 || got[len(got)-1] != len(recs)-1 {
		t.Fatalf("replay ended at %v, want through record %d", got[len(got)-5:], len(recs)-1)
	}
	for k := 1; k < len(got); k++ {
		if got[k] != got[k-1]+1 {
			t.Fatalf("replay skipped from %d to %d", got[k-1], got[k])
		}
	}
	if got[0] > acked {
		t.Fatalf("replay started at %d, after the last acknowledged record %d", got[0], acked-1)
	}
}
