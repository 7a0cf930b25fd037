package cluster

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func activeMembers(t0 time.Time, names ...string) []Member {
	out := make([]Member, len(names))
	for i, n := range names {
		out[i] = Member{Name: n, ActiveFrom: t0}
	}
	return out
}

func keys(n int) []uint64 {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]uint64, n)
	for i := range out {
		out[i] = r.Uint64()
	}
	return out
}

// Targets spread evenly, and adding a member moves only the targets it wins
// (and removing one only the targets it held).
func TestOwnerBalanceAndMinimalMovement(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := t0.Add(time.Second)
	ks := keys(6000)
	three := NewView(activeMembers(t0, "a", "b", "c"))
	four := NewView(activeMembers(t0, "a", "b", "c", "d"))
	counts := map[string]int{}
	moved := 0
	for _, k := range ks {
		o3, o4 := three.Owner(k, at), four.Owner(k, at)
		counts[o3]++
		if o3 != o4 {
			moved++
			if o4 != "d" {
				t.Fatalf("key %x moved from %s to %s, not to the new member", k, o3, o4)
			}
		}
	}
	for _, m := range []string{"a", "b", "c"} {
		if c := counts[m]; c < 1800 || c > 2200 {
			t.Errorf("member %s owns %d of 6000 targets, want 2000 ± 10%%", m, c)
		}
	}
	if moved < 1300 || moved > 1700 {
		t.Errorf("adding a fourth member moved %d of 6000 targets, want about 1500", moved)
	}
}

// A joining member owns nothing before the time it announced, a leaving
// member nothing from the time it announced: the switch is at one instant,
// the same for every member that holds the view.
func TestOwnerHandoverWindows(t *testing.T) {
	t0 := time.Unix(1000, 0)
	join, leave := t0.Add(10*time.Second), t0.Add(20*time.Second)
	ms := activeMembers(t0, "a", "b")
	ms = append(ms, Member{Name: "c", ActiveFrom: join})
	ms[0].LeaveAt = leave
	v := NewView(ms)
	before := NewView(activeMembers(t0, "a", "b"))
	during := NewView(activeMembers(t0, "a", "b", "c"))
	after := NewView(activeMembers(t0, "b", "c"))
	for _, k := range keys(1000) {
		for _, c := range []struct {
			at   time.Time
			want *View
		}{
			{join.Add(-time.Nanosecond), before}, {join, during},
			{leave.Add(-time.Nanosecond), during}, {leave, after},
		} {
			if got, want := v.Owner(k, c.at), c.want.Owner(k, c.at); got != want {
				t.Fatalf("key %x at %s: owner %s, want %s", k, c.at.Sub(t0), got, want)
			}
		}
	}
	if o := NewView([]Member{{Name: "x"}}).Owner(1, t0); o != "" {
		t.Errorf("a view of only a joining member gives owner %q, want none", o)
	}
}

// The owner depends on the set of members only, not on the order they are
// given in.
func TestOwnerIsAFunctionOfTheSet(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var names []string
	for i := 0; i < 20; i++ {
		names = append(names, fmt.Sprintf("m%d", i))
	}
	a := NewView(activeMembers(t0, names...))
	r := rand.New(rand.NewPCG(3, 4))
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	b := NewView(activeMembers(t0, names...))
	for _, k := range keys(1000) {
		if a.Owner(k, t0) != b.Owner(k, t0) {
			t.Fatalf("key %x: owner depends on member order", k)
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	m := Member{Name: "a", ActiveFrom: time.Unix(5, 7), LeaveAt: time.Unix(9, 11)}
	got := decodeMeta("a", encodeMeta(m))
	if !got.ActiveFrom.Equal(m.ActiveFrom) || !got.LeaveAt.Equal(m.LeaveAt) {
		t.Fatalf("meta round trip: got %+v, want %+v", got, m)
	}
	if got := decodeMeta("a", encodeMeta(Member{Name: "a"})); !got.ActiveFrom.IsZero() || !got.LeaveAt.IsZero() {
		t.Fatalf("unset times came back as %+v", got)
	}
	if got := decodeMeta("a", []byte("junk")); !got.ActiveFrom.IsZero() {
		t.Fatalf("foreign meta decoded as active: %+v", got)
	}
}

// With the load bound, 60 targets over 3 members are within +10% / -20% of
// an even share for every key set, and the bounded assignment is still a
// function of the key set and the active members.
func TestAssignBoundedLoad(t *testing.T) {
	t0 := time.Unix(1000, 0)
	v := NewView(activeMembers(t0, "m0", "m1", "m2"))
	r := rand.New(rand.NewPCG(5, 6))
	worst := 0
	for trial := 0; trial < 200; trial++ {
		ks := make([]uint64, 60)
		for i := range ks {
			ks[i] = r.Uint64()
		}
		a := v.Assign(ks, t0)
		counts := map[string]int{}
		for _, k := range ks {
			counts[a[k]]++
		}
		for m, c := range counts {
			if c < 16 || c > 22 {
				t.Fatalf("trial %d: %s owns %d of 60", trial, m, c)
			}
			worst = max(worst, abs(c-20))
		}
		r.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
		b := v.Assign(ks, t0)
		for _, k := range ks {
			if a[k] != b[k] {
				t.Fatalf("trial %d: the assignment depends on the order of the keys", trial)
			}
		}
	}
	t.Logf("200 key sets of 60 over 3 members: at most %d off an even 20", worst)
}

// A member joining moves about its share under the bound too.
func TestAssignBoundedMovement(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ks := keys(6000)
	a := NewView(activeMembers(t0, "a", "b", "c")).Assign(ks, t0)
	b := NewView(activeMembers(t0, "a", "b", "c", "d")).Assign(ks, t0)
	moved, toD := 0, 0
	for _, k := range ks {
		if a[k] != b[k] {
			moved++
			if b[k] == "d" {
				toD++
			}
		}
	}
	t.Logf("a fourth member: %d of 6000 targets moved, %d of them to it", moved, toD)
	if moved > 6000*35/100 || toD < 1400 {
		t.Errorf("a fourth member moved %d targets (%d to it), want about 1500", moved, toD)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
