package cluster

import (
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// How long a failed member is remembered for TakeoverFrom: longer than any
// failure timeout plus a scrape interval.
const departedFor = 10 * time.Minute

// delegate gives memberlist this member's window as its node meta; the
// window is all a member gossips.
type delegate Node

func (d *delegate) NodeMeta(int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return encodeMeta(d.self)
}
func (d *delegate) NotifyMsg([]byte)                {}
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *delegate) LocalState(bool) []byte          { return nil }
func (d *delegate) MergeRemoteState([]byte, bool)   {}

// events keeps the members and their windows as memberlist learns of them.
type events Node

func (e *events) NotifyJoin(nd *memberlist.Node) {
	n := (*Node)(e)
	if nd.Name == n.cfg.NodeName {
		return
	}
	m := decodeMeta(nd.Name, nd.Meta)
	n.mu.Lock()
	n.members[nd.Name] = m
	n.lastHeard[nd.Name] = time.Now()
	delete(n.departed, nd.Name)
	n.depVer.Add(1)
	n.mu.Unlock()
	n.publish()
	n.changed(Change{Kind: Joined, Member: m}, zap.String("address", addrString(nd)))
	if !m.ActiveFrom.IsZero() {
		n.changed(Change{Kind: Active, Member: m})
	}
}

func (e *events) NotifyUpdate(nd *memberlist.Node) {
	n := (*Node)(e)
	if nd.Name == n.cfg.NodeName {
		return
	}
	m := decodeMeta(nd.Name, nd.Meta)
	n.mu.Lock()
	old := n.members[nd.Name]
	n.members[nd.Name] = m
	n.lastHeard[nd.Name] = time.Now()
	n.mu.Unlock()
	n.publish()
	if !m.ActiveFrom.Equal(old.ActiveFrom) && !m.ActiveFrom.IsZero() {
		n.changed(Change{Kind: Active, Member: m})
	}
	if !m.LeaveAt.Equal(old.LeaveAt) && !m.LeaveAt.IsZero() {
		n.changed(Change{Kind: Leaving, Member: m})
	}
}

func (e *events) NotifyLeave(nd *memberlist.Node) {
	n := (*Node)(e)
	if nd.Name == n.cfg.NodeName {
		return
	}
	now := time.Now()
	n.mu.Lock()
	m, ok := n.members[nd.Name]
	if !ok {
		m = decodeMeta(nd.Name, nd.Meta)
	}
	heard := n.lastHeard[nd.Name]
	delete(n.members, nd.Name)
	delete(n.lastHeard, nd.Name)
	// memberlist does not tell a leave from a death here (the node's State
	// field is not updated); a member that hands over announces its
	// LeaveAt first, one that died did not.
	kind := Left
	if m.LeaveAt.IsZero() {
		kind = Failed
		n.departed[nd.Name] = departed{member: m, lastHeard: heard, at: now}
	}
	for name, d := range n.departed {
		if now.Sub(d.at) > departedFor {
			delete(n.departed, name)
		}
	}
	n.depVer.Add(1)
	n.mu.Unlock()
	n.publish()
	n.changed(Change{Kind: kind, Member: m, LastHeard: heard})
}

// pings records when each member last answered a probe: for a member that
// then fails, the start of the time its targets may have gone unscraped.
type pings Node

func (p *pings) AckPayload() []byte { return nil }
func (p *pings) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	n := (*Node)(p)
	n.mu.Lock()
	if _, ok := n.members[other.Name]; ok {
		n.lastHeard[other.Name] = time.Now()
	}
	n.mu.Unlock()
}

// changed logs a membership change and passes it on.
func (n *Node) changed(c Change, fields ...zap.Field) {
	fields = append(fields, zap.String("member", c.Member.Name), zap.String("change", string(c.Kind)))
	switch c.Kind {
	case Active:
		fields = append(fields, zap.Time("owns_targets_from", c.Member.ActiveFrom))
	case Leaving:
		fields = append(fields, zap.Time("owns_targets_until", c.Member.LeaveAt))
	case Failed:
		fields = append(fields, zap.Time("last_heard", c.LastHeard))
	}
	if c.Kind == Failed {
		n.cfg.Logger.Warn("cluster member failed: its targets move to the others", fields...)
	} else {
		n.cfg.Logger.Info("cluster membership changed", fields...)
	}
	if n.cfg.OnChange != nil {
		n.cfg.OnChange(c)
	}
}
