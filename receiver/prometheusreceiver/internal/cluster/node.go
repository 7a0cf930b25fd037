// Package cluster is the prometheus receiver's membership: members find each
// other by gossip (hashicorp/memberlist, SWIM), and every member computes the
// owner of every target from the same view (rendezvous hashing, assign.go).
//
// Handover is scheduled, not reactive: a member that joins announces, by
// gossip, the time from which it owns targets, and a member that leaves
// announces the time until which it still does, both one handover delay
// ahead. Every member evaluates ownership at a target's scheduled scrape
// times (which are the same on every member), so a moving target is scraped
// by the old owner up to that time and by the new one from its next slot:
// no slot twice, none missed. A member that dies cannot announce anything:
// its targets move when the others declare it dead, and the gap is measured
// and counted.
package cluster

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Config is what a node needs; the receiver fills it from its cluster block.
type Config struct {
	NodeName      string
	BindAddr      string
	BindPort      int
	AdvertiseAddr string // "" for memberlist's choice
	AdvertisePort int
	// Peers are host:port; each host is resolved on every attempt and all
	// its addresses are tried (a Kubernetes headless service).
	Peers          []string
	JoinTimeout    time.Duration
	ProbeInterval  time.Duration
	FailureTimeout time.Duration
	HandoverDelay  time.Duration
	// TLS, when set, carries all gossip over TLS connections (tls.go):
	// ServerTLS for the listener, ClientTLS for dialing.
	ServerTLS, ClientTLS *tls.Config
	Logger               *zap.Logger
	// OnChange is told of every membership change, from memberlist's
	// goroutines: it must not block.
	OnChange func(Change)
}

// ChangeKind is what happened to a member.
type ChangeKind string

// The kinds of membership change.
const (
	Joined  ChangeKind = "joined"  // a member appeared (it owns nothing yet)
	Active  ChangeKind = "active"  // a member announced when it starts owning targets
	Leaving ChangeKind = "leaving" // a member announced when it stops
	Left    ChangeKind = "left"    // a member left gracefully
	Failed  ChangeKind = "failed"  // a member was declared dead
)

// Change is one membership change.
type Change struct {
	Kind   ChangeKind
	Member Member
	// LastHeard is when this node last had an answer from a failed member.
	LastHeard time.Time
}

// departed is a member that failed, kept for a while so that whoever takes
// over its targets can tell how long they went unscraped.
type departed struct {
	member    Member
	lastHeard time.Time
	at        time.Time
}

// Node is this process's membership in the cluster.
type Node struct {
	cfg Config
	ml  *memberlist.Memberlist

	mu        sync.Mutex
	self      Member
	members   map[string]Member
	lastHeard map[string]time.Time
	departed  map[string]departed
	view      atomic.Pointer[View]
	depVer    atomic.Uint64 // bumped when departed changes
	joined    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
}

// Start creates the node and joins the peers: it returns once joined, or
// once JoinTimeout has passed without reaching any peer (the node then runs
// on its own and keeps trying in the background). Either way the node starts
// owning targets one handover delay later.
func Start(cfg Config) (*Node, error) {
	n := &Node{
		cfg: cfg, self: Member{Name: cfg.NodeName},
		members: map[string]Member{}, lastHeard: map[string]time.Time{}, departed: map[string]departed{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	n.publish()
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr, mc.BindPort = cfg.BindAddr, cfg.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = cfg.AdvertiseAddr, cfg.AdvertisePort
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = min(mc.ProbeTimeout, cfg.ProbeInterval/2)
	// A suspected member is declared dead after FailureTimeout (for up to
	// 9 members; memberlist scales it by log10 of the count beyond), not
	// after up to 6 times that when too few others confirm the suspicion:
	// the takeover bound is then one number.
	mc.SuspicionMult = max(1, int((cfg.FailureTimeout+cfg.ProbeInterval-1)/cfg.ProbeInterval))
	mc.SuspicionMaxTimeoutMult = 1
	mc.PushPullInterval = 10 * time.Second
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	mc.Ping = (*pings)(n)
	mc.Logger = log.New(&logWriter{log: cfg.Logger}, "", 0)
	if cfg.ServerTLS != nil {
		tr, err := newTLSTransport(cfg.BindAddr, cfg.BindPort, cfg.ServerTLS, cfg.ClientTLS, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("starting the cluster member's TLS listener on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
		}
		mc.Transport = tr
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		if mc.Transport != nil {
			_ = mc.Transport.Shutdown()
		}
		return nil, fmt.Errorf("starting the cluster member on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	n.ml = ml
	joined := n.joinUntil(time.Now().Add(cfg.JoinTimeout))
	if !joined {
		cfg.Logger.Warn("no cluster peer reached within join_timeout: running as a cluster of one and trying again in the background",
			zap.Strings("peers", cfg.Peers), zap.Duration("join_timeout", cfg.JoinTimeout))
	}
	n.joined.Store(joined)
	n.mu.Lock()
	n.self.ActiveFrom = time.Now().Add(cfg.HandoverDelay)
	n.mu.Unlock()
	n.publish()
	if err := ml.UpdateNode(cfg.HandoverDelay); err != nil {
		cfg.Logger.Warn("announcing this member's start to the cluster", zap.Error(err))
	}
	go n.rejoin()
	return n, nil
}

// joinUntil tries the peers until one answers or the deadline passes; it
// reports true also when there is no peer but this node.
func (n *Node) joinUntil(deadline time.Time) bool {
	for {
		addrs := n.peerAddrs()
		if len(addrs) == 0 {
			return true
		}
		if c, err := n.ml.Join(addrs); err == nil && c > 0 {
			n.cfg.Logger.Info("joined the cluster", zap.Int("peers_contacted", c), zap.Int("members", n.ml.NumMembers()))
			return true
		} else if err != nil {
			n.cfg.Logger.Debug("joining the cluster", zap.Error(err))
		}
		if time.Now().Add(time.Second).After(deadline) {
			return false
		}
		select {
		case <-n.stop:
			return false
		case <-time.After(time.Second):
		}
	}
}

// peerAddrs resolves the peers, leaving this node out.
func (n *Node) peerAddrs() []string {
	self := n.ml.LocalNode().Address()
	var out []string
	for _, p := range n.cfg.Peers {
		host, port, err := net.SplitHostPort(p)
		if err != nil {
			continue // Validate rejected these
		}
		ips, err := net.LookupHost(host)
		if err != nil {
			n.cfg.Logger.Debug("resolving a cluster peer", zap.String("peer", p), zap.Error(err))
			continue
		}
		for _, ip := range ips {
			if a := net.JoinHostPort(ip, port); a != self {
				out = append(out, a)
			}
		}
	}
	return out
}

// rejoin keeps trying the peers while this node is alone, so that members
// that started apart (or a healed partition) form one cluster.
func (n *Node) rejoin() {
	defer close(n.done)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
			if n.ml.NumMembers() <= 1 && len(n.cfg.Peers) > 0 {
				if c, err := n.ml.Join(n.peerAddrs()); err == nil && c > 0 {
					n.joined.Store(true)
					n.cfg.Logger.Info("joined the cluster", zap.Int("peers_contacted", c))
				}
			}
		}
	}
}

// Name is this member's name.
func (n *Node) Name() string { return n.cfg.NodeName }

// View is the current view of the members, this one included.
func (n *Node) View() *View { return n.view.Load() }

// Leave hands this member's targets over: it announces that it owns them
// until one handover delay from now, and returns that time. The caller keeps
// scraping until then, and calls Shutdown after.
func (n *Node) Leave() time.Time {
	n.mu.Lock()
	n.self.LeaveAt = time.Now().Add(n.cfg.HandoverDelay)
	at := n.self.LeaveAt
	n.mu.Unlock()
	n.publish()
	if err := n.ml.UpdateNode(n.cfg.HandoverDelay); err != nil {
		n.cfg.Logger.Warn("announcing this member's leave to the cluster", zap.Error(err))
	}
	return at
}

// Shutdown leaves the memberlist (the others see "left", not "failed") and
// stops.
func (n *Node) Shutdown() error {
	close(n.stop)
	<-n.done
	err := n.ml.Leave(time.Second)
	return errors.Join(err, n.ml.Shutdown())
}

// withDeparted is the current view plus the members that failed lately,
// as if they were still active, and when each was last heard from: the
// view in which the owner before a failure is found.
func (n *Node) withDeparted() (*View, map[string]time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.departed) == 0 {
		return nil, nil
	}
	all := make([]Member, 0, len(n.members)+len(n.departed)+1)
	all = append(all, n.self)
	for _, m := range n.members {
		all = append(all, m)
	}
	heard := make(map[string]time.Time, len(n.departed))
	for name, d := range n.departed {
		m := d.member
		m.LeaveAt = time.Time{}
		all = append(all, m)
		heard[name] = d.lastHeard
	}
	return NewView(all), heard
}

// publish makes a new view from the members known now.
func (n *Node) publish() {
	n.mu.Lock()
	all := make([]Member, 0, len(n.members)+1)
	all = append(all, n.self)
	for name, m := range n.members {
		if name != n.self.Name {
			all = append(all, m)
		}
	}
	n.mu.Unlock()
	n.view.Store(NewView(all))
}

// meta is a member's window on the wire: version, then the two times in
// Unix nanoseconds (0 for unset).
func encodeMeta(m Member) []byte {
	var b bytes.Buffer
	b.WriteByte(1)
	_ = binary.Write(&b, binary.BigEndian, unixNano(m.ActiveFrom))
	_ = binary.Write(&b, binary.BigEndian, unixNano(m.LeaveAt))
	return b.Bytes()
}

func decodeMeta(name string, meta []byte) Member {
	m := Member{Name: name}
	if len(meta) != 17 || meta[0] != 1 {
		return m // not one of ours (or an older format): it owns nothing
	}
	m.ActiveFrom = fromNano(int64(binary.BigEndian.Uint64(meta[1:9])))
	m.LeaveAt = fromNano(int64(binary.BigEndian.Uint64(meta[9:17])))
	return m
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// logWriter hands memberlist's log lines to zap: warnings and errors as
// warnings, the rest at debug.
type logWriter struct{ log *zap.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	switch {
	case bytes.Contains(p, []byte("[ERR]")), bytes.Contains(p, []byte("[WARN]")):
		w.log.Warn(line)
	default:
		w.log.Debug(line)
	}
	return len(p), nil
}

// addrString is host:port of a memberlist node.
func addrString(nd *memberlist.Node) string {
	return net.JoinHostPort(nd.Addr.String(), strconv.Itoa(int(nd.Port)))
}
