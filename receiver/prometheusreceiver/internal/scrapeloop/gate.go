package scrapeloop

import (
	"time"
)

// Gate decides, for each scheduled scrape of a target, whether this process
// scrapes it: the prometheus receiver's cluster membership is one. With a
// gate every process runs a loop for every target (cheap: a timer each),
// and the loops of all processes share each target's schedule (the offset
// seed is then the same everywhere), so a target that moves between
// processes is scraped by exactly one of them at each of its slots.
type Gate interface {
	// Owns reports whether this process scrapes the target identified by
	// key at slot, its scheduled scrape time; ownedBefore says whether it
	// scraped the target's previous slot.
	Owns(key uint64, slot time.Time, ownedBefore bool) bool
}

// slot is the scheduled time of the scrape due now: the loop's phase in
// the interval, nearest to now. Every process computes the same slot for a
// target whatever the small delay of its own timer, which is what lets
// them agree on who scrapes it.
func (l *loop) slot(now time.Time) time.Time {
	iv := int64(l.interval)
	phase := int64((l.targetHash ^ l.offsetSeed) % uint64(iv))
	ns := now.UnixNano() - phase + iv/2
	k := ns / iv
	if ns < 0 && ns%iv != 0 {
		k-- // floor, for times before 1970
	}
	return time.Unix(0, k*iv+phase)
}

// gated reports whether the loop skips the scrape due at now. A loop that
// stops owning its target forgets the target's series without stale
// markers: the new owner goes on writing them. One that owns it again later
// starts afresh.
func (l *loop) gated(now time.Time) bool {
	if l.gate == nil {
		return false
	}
	owns := l.gate.Owns(l.targetHash, l.slot(now), l.owned.Load())
	if !owns && l.owned.Load() {
		l.state.forget()
		l.keep(nil, "")
		l.series.Store(0)
	}
	l.owned.Store(owns)
	return !owns
}

// owning reports whether the loop scrapes its target (always true without a
// gate).
func (l *loop) owning() bool { return l.gate == nil || l.owned.Load() }

// TargetKeys returns the key a Gate is asked about for each active target,
// by job.
func (m *Manager) TargetKeys() map[string][]uint64 {
	out := map[string][]uint64{}
	for job, p := range m.poolsNow() {
		p.mu.Lock()
		keys := make([]uint64, 0, len(p.loops))
		for h := range p.loops {
			keys = append(keys, h)
		}
		p.mu.Unlock()
		out[job] = keys
	}
	return out
}
