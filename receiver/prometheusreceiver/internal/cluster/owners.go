package cluster

import (
	"sync"
	"time"
)

// Owners answers "who owns this target at this slot" for the scrape loops,
// from the view and the set of targets, caching one assignment per set of
// active members (a view holds at most a few: now, and around an announced
// join or leave).
type Owners struct {
	node *Node

	mu    sync.Mutex
	keys  []uint64
	known map[uint64]bool
	view  *View
	cache map[string]map[uint64]string

	// The assignment with the failed members still in, for TakeoverFrom.
	depVer   uint64
	depBase  *View // the view depView was made with
	depView  *View
	depHeard map[string]time.Time
	depCache map[string]map[uint64]string
}

// NewOwners makes an Owners over n's view.
func NewOwners(n *Node) *Owners { return &Owners{node: n, known: map[uint64]bool{}} }

// SetKeys replaces the set of targets.
func (o *Owners) SetKeys(keys []uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	known := make(map[uint64]bool, len(keys))
	for _, k := range keys {
		known[k] = true
	}
	if len(known) == len(o.known) {
		same := true
		for k := range known {
			if !o.known[k] {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	o.keys, o.known, o.cache, o.depCache = append([]uint64(nil), keys...), known, nil, nil
}

// Owner is the owner of key at t. A key not in the set yet (a target
// discovered a moment ago) is placed by plain rendezvous until SetKeys
// includes it.
func (o *Owners) Owner(key uint64, at time.Time) string {
	v := o.node.View()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.known[key] {
		return v.Owner(key, at)
	}
	if v != o.view {
		o.view, o.cache = v, nil
	}
	if o.cache == nil {
		o.cache = map[string]map[uint64]string{}
	}
	set := v.activeSet(at)
	a, ok := o.cache[set]
	if !ok {
		a = v.Assign(o.keys, at)
		o.cache[set] = a
	}
	return a[key]
}

// TakeoverFrom returns, for a target this member starts owning at slot,
// the failed member that owned it before and when it was last heard from;
// ok is false when the previous owner did not fail.
func (o *Owners) TakeoverFrom(key uint64, slot time.Time) (name string, lastHeard time.Time, ok bool) {
	n := o.node
	o.mu.Lock()
	defer o.mu.Unlock()
	if ver, base := n.depVer.Load(), n.View(); ver != o.depVer || base != o.depBase {
		o.depVer, o.depBase = ver, base
		o.depView, o.depHeard = n.withDeparted()
		o.depCache = nil
	}
	if o.depView == nil {
		return "", time.Time{}, false
	}
	var prev string
	if !o.known[key] {
		prev = o.depView.Owner(key, slot)
	} else {
		if o.depCache == nil {
			o.depCache = map[string]map[uint64]string{}
		}
		set := o.depView.activeSet(slot)
		a, ok := o.depCache[set]
		if !ok {
			a = o.depView.Assign(o.keys, slot)
			o.depCache[set] = a
		}
		prev = a[key]
	}
	heard, failed := o.depHeard[prev]
	return prev, heard, failed
}
