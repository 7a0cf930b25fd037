package prometheusreceiver

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	promconfig "github.com/prometheus/prometheus/config"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/sluicehq/sluice/internal/statusapi"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/cluster"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/scrapeloop"
)

// clusterMember is the receiver's side of the cluster: the scrape loops'
// Gate (who scrapes a target at a slot), the telemetry of the membership,
// and the graceful leave.
type clusterMember struct {
	node   *cluster.Node
	owners *cluster.Owners
	tel    *telemetry
	log    *zap.Logger
	// margin is how long the leave waits past its handover time, so that a
	// loop whose timer fires late still scrapes the last slot it owns:
	// half the shortest scrape interval, at most a second.
	margin time.Duration

	counts atomic.Pointer[map[string]int64] // targets per member, from watchTargets
	mu     sync.Mutex
	logged map[string]int64 // counts last logged
}

var _ scrapeloop.Gate = (*clusterMember)(nil)

// startCluster joins the cluster; it returns once joined or after
// join_timeout, which is what keeps the collector's health check not ready
// until then.
func startCluster(cc ClusterConfig, logger *zap.Logger, tel *telemetry, interval time.Duration) (*clusterMember, error) {
	name := cc.NodeName
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cluster::node_name is not set and the host name is unknown: %w", err)
		}
		name = h
	}
	bindHost, bindPort, _ := splitAddr(cc.ListenAddress, false)
	var advHost string
	var advPort int
	if cc.AdvertiseAddress != "" {
		advHost, advPort, _ = splitAddr(cc.AdvertiseAddress, true)
	}
	serverTLS, clientTLS, err := cc.tlsConfigs(context.Background())
	if err != nil {
		return nil, err
	}
	c := &clusterMember{tel: tel, log: logger.With(zap.String("cluster_member", name)), margin: min(interval/2, time.Second), logged: map[string]int64{}}
	c.counts.Store(&map[string]int64{})
	node, err := cluster.Start(cluster.Config{
		NodeName: name, BindAddr: bindHost, BindPort: bindPort, AdvertiseAddr: advHost, AdvertisePort: advPort,
		Peers: cc.Peers, JoinTimeout: cc.JoinTimeout, ProbeInterval: cc.ProbeInterval,
		FailureTimeout: cc.FailureTimeout, HandoverDelay: cc.HandoverDelay,
		ServerTLS: serverTLS, ClientTLS: clientTLS,
		Logger: c.log,
		OnChange: func(ch cluster.Change) {
			tel.tb.PrometheusReceiverClusterMembershipChanges.Add(context.Background(), 1,
				metric.WithAttributes(tel.id, attribute.String("change", string(ch.Kind))))
		},
	})
	if err != nil {
		return nil, err
	}
	c.node, c.owners = node, cluster.NewOwners(node)
	if err := tel.tb.RegisterPrometheusReceiverClusterMembersCallback(c.observeMembers); err != nil {
		_ = node.Shutdown()
		return nil, err
	}
	if err := tel.tb.RegisterPrometheusReceiverClusterTargetsCallback(c.observeTargets); err != nil {
		_ = node.Shutdown()
		return nil, err
	}
	return c, nil
}

// Owns is the Gate: this member scrapes the target at slot when it is the
// target's owner at slot in its view. On a takeover from a failed member,
// the time the target went unscraped (at most) is counted.
func (c *clusterMember) Owns(key uint64, slot time.Time, ownedBefore bool) bool {
	mine := c.owners.Owner(key, slot) == c.node.Name()
	if mine && !ownedBefore {
		if from, heard, failed := c.owners.TakeoverFrom(key, slot); failed && !heard.IsZero() {
			ctx := context.Background()
			c.tel.tb.PrometheusReceiverClusterTakeovers.Add(ctx, 1, metric.WithAttributes(c.tel.id))
			gap := slot.Sub(heard)
			c.tel.tb.PrometheusReceiverClusterTakeoverGapSeconds.Record(ctx, gap.Seconds(), metric.WithAttributes(c.tel.id))
			c.log.Debug("took over a target of a failed member", zap.String("from", from), zap.Duration("unscraped_at_most", gap))
		}
	}
	return mine
}

// observe counts, from this member's view, the targets each member owns
// now, and logs the counts when they changed.
func (c *clusterMember) observe(keys map[string][]uint64) {
	c.setKeys(keys)
	now := time.Now()
	counts := map[string]int64{}
	for _, m := range c.node.View().Members() {
		counts[m.Name] = 0
	}
	for _, ks := range keys {
		for _, k := range ks {
			if o := c.owners.Owner(k, now); o != "" {
				counts[o]++
			}
		}
	}
	c.counts.Store(&counts)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !mapsEqual(counts, c.logged) {
		c.logged = counts
		names := make([]string, 0, len(counts))
		for n := range counts {
			names = append(names, n)
		}
		slices.Sort(names)
		fields := make([]zap.Field, 0, len(names))
		for _, n := range names {
			fields = append(fields, zap.Int64(n, counts[n]))
		}
		c.log.Info("cluster targets per member", zap.Dict("targets", fields...))
	}
}

// setKeys hands the owners the targets of every job; the scrape manager
// calls it right after each reload (a new target's loop may meet its first
// slot a moment before: it is then placed by plain rendezvous hashing).
func (c *clusterMember) setKeys(keys map[string][]uint64) {
	var all []uint64
	for _, ks := range keys {
		all = append(all, ks...)
	}
	c.owners.SetKeys(all)
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (c *clusterMember) observeMembers(_ context.Context, o metric.Int64Observer) error {
	o.Observe(int64(len(c.node.View().Members())), metric.WithAttributes(c.tel.id))
	return nil
}

func (c *clusterMember) observeTargets(_ context.Context, o metric.Int64Observer) error {
	for m, n := range *c.counts.Load() {
		o.Observe(n, metric.WithAttributes(c.tel.id, attribute.String("member", m)))
	}
	return nil
}

// leave hands this member's targets over: announce the handover time, keep
// scraping until it (and the margin, for a late timer), then leave the
// membership.
// The caller stops the loops after.
func (c *clusterMember) leave(ctx context.Context) {
	at := c.node.Leave()
	c.log.Info("leaving the cluster: targets hand over to the others", zap.Time("at", at))
	select {
	case <-time.After(time.Until(at) + c.margin):
	case <-ctx.Done():
		c.log.Warn("shutdown deadline before the handover completed: targets may miss a scrape")
	}
	if err := c.node.Shutdown(); err != nil {
		c.log.Warn("leaving the cluster", zap.Error(err))
	}
}

// status is the membership for the status page: every member in the view,
// its state and the targets it owns now (from the last observe).
func (c *clusterMember) status() *statusapi.Cluster {
	now, counts := time.Now(), *c.counts.Load()
	out := &statusapi.Cluster{Member: c.node.Name()}
	for _, m := range c.node.View().Members() {
		state := "active"
		switch {
		case m.ActiveFrom.IsZero() || now.Before(m.ActiveFrom):
			state = "joining"
		case !m.LeaveAt.IsZero():
			state = "leaving"
		}
		out.Members = append(out.Members, statusapi.ClusterMember{
			Name: m.Name, State: state, Targets: counts[m.Name], Self: m.Name == c.node.Name(),
		})
	}
	return out
}

// shortestInterval is the shortest scrape_interval of the scrape configs.
func shortestInterval(scfgs []*promconfig.ScrapeConfig) time.Duration {
	iv := time.Duration(0)
	for _, sc := range scfgs {
		if d := time.Duration(sc.ScrapeInterval); d > 0 && (iv == 0 || d < iv) {
			iv = d
		}
	}
	if iv == 0 {
		iv = time.Minute
	}
	return iv
}

// drainTime is how long a leaving member's receiver waits after its last
// scrape before it returns from Shutdown: the collector stops the
// exporters right after the receivers, and an exporter leaves what it has
// not sent by then in its queue for the next start, which for a member
// removed by a scale-down may never come (and when it does, the backend
// has newer samples of those series). A second covers a batch processor's
// timeout and a send on a healthy backend.
const drainTime = time.Second

func (c *clusterMember) drain(ctx context.Context) {
	select {
	case <-time.After(drainTime):
	case <-ctx.Done():
	}
}
