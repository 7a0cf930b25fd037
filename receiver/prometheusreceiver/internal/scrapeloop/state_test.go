package scrapeloop

import (
	"math/rand/v2"
	"testing"
)

// The table is a power of two, filled to at most 3/4 and, past its
// minimum, to more than 3/8: what the comment on seriesState promises.
func TestStateTableSize(t *testing.T) {
	for n := 0; n < 70000; n += 1 + n/7 {
		size := sizeFor(n)
		if size&(size-1) != 0 {
			t.Fatalf("sizeFor(%d) = %d, not a power of two", n, size)
		}
		if 4*n > 3*size {
			t.Errorf("sizeFor(%d) = %d: more than 3/4 full", n, size)
		}
		if size > 64 && 8*n <= 3*size {
			t.Errorf("sizeFor(%d) = %d: 3/8 full or less, half of it would do", n, size)
		}
	}
}

// Series inserted over several passes, with some dropped between passes,
// are found exactly while kept, and the table never fills past 3/4.
func TestStateKeepsWhatItTracks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s seriesState
	successful := 0
	present := map[uint64]bool{}
	for pass := 0; pass < 6; pass++ {
		// Half of the last pass's series again, and new ones.
		next := map[uint64]bool{}
		for h := range present {
			if rng.IntN(2) == 0 {
				next[h] = true
			}
		}
		for len(next) < 20000 {
			next[rng.Uint64()&^1] = true // key() sets the low bit: keep hashes distinct after it
		}
		for h := range next {
			s.flags[s.slot(h)] |= fSeen | fCurTracked
			if 4*s.n > 3*len(s.keys) {
				t.Fatalf("pass %d: %d of %d slots used", pass, s.n, len(s.keys))
			}
		}
		s.done(true, &successful)
		if s.n != len(next) || successful != len(next) {
			t.Fatalf("pass %d: state holds %d series (successful %d), want %d", pass, s.n, successful, len(next))
		}
		for h := range next {
			if i := s.find(h); i < 0 || s.flags[i] != fKnown|fTracked {
				t.Fatalf("pass %d: series %x lost or has flags %b", pass, h, s.flags[max(i, 0)])
			}
		}
		for h := range present {
			if !next[h] && s.find(h) >= 0 {
				t.Fatalf("pass %d: series %x dropped from the scrape is still kept", pass, h)
			}
		}
		present = next
	}
}
