package scrapeloop

import "math/bits"

// Flags of a series in a target's state.
const (
	// known: the series is what Prometheus' scrape cache would hold, so it
	// is not counted in scrape_series_added again.
	fKnown uint8 = 1 << iota
	// tracked: a stale marker is due if the series is missing from the next
	// scrape (Prometheus' seriesPrev).
	fTracked
	// seen: the series was met in the scrape being appended (a second sample
	// of it without a timestamp is a duplicate).
	fSeen
	// curTracked: appended in the scrape being appended and to be tracked.
	fCurTracked
	// marked: its stale marker has been written in this pass (a series may
	// appear twice in the body the marker's labels are read from).
	fMarked
)

// seriesState is what a target's loop remembers between scrapes, per
// series: the hash of its final labels and a few flags — 9 bytes a slot,
// 12 to 18 bytes a series at the table's load (more than 1/2, at most 3/4
// after a rebuild), no pointers for the collector to scan. The
// labels themselves are not kept: when a stale marker is due, they are read
// again from the previous scrape's body (see loop.staleMarkers).
//
// It is an open-addressing hash table (linear probing) of the hashes, with
// 0 meaning an empty slot (hashes are stored with the lowest bit set).
type seriesState struct {
	keys  []uint64
	flags []uint8
	n     int // used slots
}

func key(h uint64) uint64 { return h | 1 }

// slot returns the index of h's slot, inserting h (with no flags) if absent.
func (s *seriesState) slot(h uint64) int {
	if 4*(s.n+1) > 3*len(s.keys) {
		s.grow()
	}
	i := s.probe(key(h))
	if s.keys[i] == 0 {
		s.keys[i] = key(h)
		s.n++
	}
	return i
}

// find returns h's slot or -1.
func (s *seriesState) find(h uint64) int {
	if len(s.keys) == 0 {
		return -1
	}
	if i := s.probe(key(h)); s.keys[i] != 0 {
		return i
	}
	return -1
}

// probe returns the slot holding k, or the empty slot where k belongs. The
// table always has an empty slot (it is at most 3/4 full).
func (s *seriesState) probe(k uint64) int {
	mask := len(s.keys) - 1
	i := int(k) & mask
	for s.keys[i] != k && s.keys[i] != 0 {
		i = (i + 1) & mask
	}
	return i
}

func (s *seriesState) grow() {
	size := 64
	if len(s.keys) > 0 {
		size = 2 * len(s.keys)
	}
	s.rebuild(size, func(f uint8) uint8 { return f })
}

// rebuild copies every slot whose flags keep maps to non-zero into a new
// table of size slots (a power of two), dropping the others. The old table
// is left to the collector rather than kept as a spare: a spare would
// double what the state holds between scrapes, for an allocation that is a
// few percent of what a scrape allocates anyway.
func (s *seriesState) rebuild(size int, keep func(uint8) uint8) {
	oldKeys, oldFlags := s.keys, s.flags
	s.keys, s.flags, s.n = make([]uint64, size), make([]uint8, size), 0
	mask := size - 1
	for i, k := range oldKeys {
		if k == 0 {
			continue
		}
		f := keep(oldFlags[i])
		if f == 0 {
			continue
		}
		j := int(k) & mask
		for s.keys[j] != 0 {
			j = (j + 1) & mask
		}
		s.keys[j], s.flags[j] = k, f
		s.n++
	}
}

// sizeFor is the table size for n series: the smallest power of two they
// fill to at most 3/4 (so more than 3/8), where linear probing still finds
// a present hash in under two probes on average.
func sizeFor(n int) int {
	if n < 48 {
		return 64
	}
	return 1 << bits.Len(uint((4*n+2)/3-1))
}

// count returns how many series have all of the flags in f.
func (s *seriesState) count(f uint8) int {
	n := 0
	for i, k := range s.keys {
		if k != 0 && s.flags[i]&f == f {
			n++
		}
	}
	return n
}

// stale reports whether any series is tracked but was not appended now:
// its stale marker is due.
func (s *seriesState) stale() bool {
	for i, k := range s.keys {
		if k != 0 && s.flags[i]&(fTracked|fCurTracked) == fTracked {
			return true
		}
	}
	return false
}

// staleDue reports whether the series with hash h needs a stale marker
// that has not been written yet, and marks it written.
func (s *seriesState) staleDue(h uint64) bool {
	i := s.find(h)
	if i < 0 || s.flags[i]&(fTracked|fCurTracked|fMarked) != fTracked {
		return false
	}
	s.flags[i] |= fMarked
	return true
}

// done ends an append pass. After a pass that succeeded, Prometheus' cache
// holds exactly the series met in it; after one that failed, it keeps what
// it held and adds what the pass added. Either way the series tracked for
// staleness are those the pass appended and tracked. successful counts
// what the state held after the last successful pass: failed passes may grow
// it to twice that plus 1,000 before it is flushed anyway, as Prometheus'
// cache is, so a target failing with ever new series does not grow it
// without bound.
func (s *seriesState) done(ok bool, successful *int) {
	if !ok && s.n > 2*(*successful)+1000 {
		ok = true
	}
	keep := func(f uint8) uint8 {
		out := uint8(0)
		if f&fSeen != 0 || (!ok && f&fKnown != 0) {
			out |= fKnown
		}
		if f&fCurTracked != 0 {
			out |= fTracked
		}
		return out
	}
	n := 0
	for i, k := range s.keys {
		if k != 0 && keep(s.flags[i]) != 0 {
			n++
		}
	}
	s.rebuild(sizeFor(n), keep)
	if ok {
		*successful = s.n
	}
}

// forget ends tracking without an append pass (a failed scrape): every
// tracked series got its stale marker; the cache is kept.
func (s *seriesState) forget() {
	s.rebuild(sizeFor(s.count(fKnown)), func(f uint8) uint8 { return f & fKnown })
}
