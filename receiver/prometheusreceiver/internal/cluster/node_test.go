package cluster

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/freeport"
)

const (
	testProbe    = 200 * time.Millisecond
	testFailure  = time.Second
	testHandover = 500 * time.Millisecond
)

// changeLog collects the changes a node reports.
type changeLog struct {
	mu  sync.Mutex
	all []Change
}

func (c *changeLog) add(ch Change) { c.mu.Lock(); c.all = append(c.all, ch); c.mu.Unlock() }
func (c *changeLog) find(kind ChangeKind, member string) (Change, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.all {
		if ch.Kind == kind && ch.Member.Name == member {
			return ch, true
		}
	}
	return Change{}, false
}

// startNode starts a real member on loopback joining peers.
func startNode(t testing.TB, name string, peers []string) (*Node, string, *changeLog) {
	t.Helper()
	return startNodeTLS(t, name, peers, nil, nil)
}

// startNodeTLS is startNode gossiping over TLS when server is set.
func startNodeTLS(t testing.TB, name string, peers []string, server, client *tls.Config) (*Node, string, *changeLog) {
	t.Helper()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	log := &changeLog{}
	n, err := Start(Config{
		NodeName: name, BindAddr: "127.0.0.1", BindPort: port, Peers: peers,
		JoinTimeout: 2 * time.Second, ProbeInterval: testProbe, FailureTimeout: testFailure, HandoverDelay: testHandover,
		ServerTLS: server, ClientTLS: client, Logger: testLogger(), OnChange: log.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, fmt.Sprintf("127.0.0.1:%d", port), log
}

// kill stops a node as kill -9 would: no leave message.
func (n *Node) kill() {
	close(n.stop)
	<-n.done
	_ = n.ml.Shutdown()
}

// activeNames is the sorted names of the members active at t in n's view.
func activeNames(n *Node, at time.Time) string {
	var out []string
	for _, m := range n.View().Members() {
		if m.activeAt(at) {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Three real members on loopback: each sees all three active, and all agree
// on every target's owner.
func TestNodesJoinAndAgree(t *testing.T) {
	a, addrA, _ := startNode(t, "a", nil)
	defer a.Shutdown()
	b, _, _ := startNode(t, "b", []string{addrA})
	defer b.Shutdown()
	c, _, logC := startNode(t, "c", []string{addrA})
	defer c.Shutdown()
	nodes := []*Node{a, b, c}
	waitUntil(t, 10*time.Second, "three active members everywhere", func() bool {
		now := time.Now()
		for _, n := range nodes {
			if activeNames(n, now) != "a,b,c" {
				return false
			}
		}
		return true
	})
	if _, ok := logC.find(Active, "a"); !ok {
		t.Error("c was not told a is active")
	}
	at := time.Now()
	for _, k := range keys(1000) {
		o := a.View().Owner(k, at)
		if b.View().Owner(k, at) != o || c.View().Owner(k, at) != o {
			t.Fatalf("key %x: members disagree on the owner", k)
		}
	}
}

// A leaving member announces a time one handover delay ahead, which the
// others learn before it comes; once it shut down they see it left, not
// failed.
func TestNodeLeaveIsAnnouncedAhead(t *testing.T) {
	a, addrA, logA := startNode(t, "a", nil)
	defer a.Shutdown()
	b, _, _ := startNode(t, "b", []string{addrA})
	waitUntil(t, 10*time.Second, "b active in a's view", func() bool { return activeNames(a, time.Now()) == "a,b" })
	leaveAt := b.Leave()
	waitUntil(t, testHandover, "a learning when b leaves", func() bool {
		_, ok := logA.find(Leaving, "b")
		return ok
	})
	if time.Now().After(leaveAt) {
		t.Fatal("a learnt of b's leave only after its time had come")
	}
	if got := activeNames(a, leaveAt); got != "a" {
		t.Errorf("a's view at b's leave time: %s active, want a", got)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "a seeing b left", func() bool { _, ok := logA.find(Left, "b"); return ok })
	if _, ok := logA.find(Failed, "b"); ok {
		t.Error("a graceful leave was reported as a failure")
	}
}

// A member that stops without a word is declared failed within the worst
// case for 3 members (a survivor probes it at the latest 3 probe intervals
// after it stopped, learns of the failure one later, and failure_timeout
// after that declares it; plus a second of scheduling slack), and a survivor that takes
// over one of its targets is told whose it was and since when unheard.
func TestNodeFailureDetectedWithinBound(t *testing.T) {
	a, addrA, logA := startNode(t, "a", nil)
	defer a.Shutdown()
	b, _, _ := startNode(t, "b", []string{addrA})
	defer b.Shutdown()
	c, _, _ := startNode(t, "c", []string{addrA})
	waitUntil(t, 10*time.Second, "three active", func() bool { return activeNames(a, time.Now()) == "a,b,c" })
	var key uint64
	for _, k := range keys(100) {
		if a.View().Owner(k, time.Now()) == "c" {
			key = k
			break
		}
	}
	killed := time.Now()
	c.kill()
	bound := 2*(3-1)*testProbe + testFailure + time.Second
	waitUntil(t, bound, "c declared failed", func() bool { _, ok := logA.find(Failed, "c"); return ok })
	t.Logf("c declared failed %s after it stopped (bound %s)", time.Since(killed).Round(time.Millisecond), bound)
	now := time.Now()
	if o := a.View().Owner(key, now); o == "c" || o == "" {
		t.Fatalf("c's target is owned by %q after c failed", o)
	}
	prev, heard, ok := NewOwners(a).TakeoverFrom(key, now)
	if !ok || prev != "c" {
		t.Fatalf("TakeoverFrom = %q, %v; want c, true", prev, ok)
	}
	if heard.After(killed) || killed.Sub(heard) > 2*time.Second {
		t.Errorf("c last heard %s before it was killed", killed.Sub(heard))
	}
}

// The membership soak: 200 random joins, graceful leaves and kills over
// two minutes among up to 8 members (never fewer than 2). Once gossip
// settles after the last event, every live member holds the same set of
// active members and so assigns every target to exactly one live member,
// the same one everywhere.
func TestMembershipSoak(t *testing.T) {
	const events, span = 200, 2 * time.Minute
	r := rand.New(rand.NewPCG(7, 8))
	type live struct {
		n    *Node
		addr string
	}
	var members []live
	seq := 0
	join := func() {
		var peers []string
		for _, m := range members {
			peers = append(peers, m.addr)
		}
		if len(peers) > 2 {
			peers = peers[len(peers)-2:]
		}
		n, addr, _ := startNode(t, fmt.Sprintf("m%d", seq), peers)
		seq++
		members = append(members, live{n, addr})
	}
	for i := 0; i < 3; i++ {
		join()
	}
	defer func() {
		for _, m := range members {
			_ = m.n.Shutdown()
		}
	}()
	joins, leaves, kills := 0, 0, 0
	for i := 0; i < events; i++ {
		time.Sleep(span / events)
		switch op := r.IntN(3); {
		case len(members) < 8 && (op == 0 || len(members) <= 2):
			join()
			joins++
		default:
			j := r.IntN(len(members))
			m := members[j]
			members = append(members[:j], members[j+1:]...)
			if op == 1 {
				m.n.Leave()
				go func() { time.Sleep(testHandover); _ = m.n.Shutdown() }()
				leaves++
			} else {
				m.n.kill()
				kills++
			}
		}
	}
	t.Logf("%d events: %d joins, %d graceful leaves, %d kills; %d members live", events, joins, leaves, kills, len(members))
	var want []string
	for _, m := range members {
		want = append(want, m.n.Name())
	}
	sort.Strings(want)
	wantSet := strings.Join(want, ",")
	waitUntil(t, 30*time.Second, "every live member's view to hold exactly the live members, all active", func() bool {
		at := time.Now()
		for _, m := range members {
			if activeNames(m.n, at) != wantSet {
				return false
			}
		}
		return true
	})
	at := time.Now()
	owned := map[string]int{}
	ks := keys(5000)
	owners := make([]*Owners, len(members))
	for i, m := range members {
		owners[i] = NewOwners(m.n)
		owners[i].SetKeys(ks)
	}
	for _, k := range ks {
		o := owners[0].Owner(k, at)
		if !strings.Contains(","+wantSet+",", ","+o+",") {
			t.Fatalf("key %x owned by %q, not a live member", k, o)
		}
		for i, m := range members[1:] {
			if got := owners[i+1].Owner(k, at); got != o {
				t.Fatalf("key %x: %s says %s owns it, %s says %s", k, members[0].n.Name(), o, m.n.Name(), got)
			}
		}
		owned[o]++
	}
	t.Logf("settled: %d members %s, 5000 targets owned %v", len(members), wantSet, owned)
}

func testLogger() *zap.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		l, _ := zap.NewDevelopment(zap.AddStacktrace(zap.ErrorLevel))
		return l
	}
	return zap.NewNop()
}
