package prometheusreceiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/config/configtls"
)

// ClusterConfig is `cluster:`: replicas that share the targets by gossip
// membership instead of a fixed shard (cluster.go).
type ClusterConfig struct {
	// Enabled turns clustering on.
	Enabled bool `mapstructure:"enabled"`
	// NodeName names this member, unique in the cluster; empty for the
	// host name (a StatefulSet pod's name).
	NodeName string `mapstructure:"node_name"`
	// ListenAddress is the host:port the member gossips on (TCP and UDP).
	ListenAddress string `mapstructure:"listen_address"`
	// AdvertiseAddress is the ip:port the other members reach this one
	// at; empty for the listen address (or, when that is 0.0.0.0, the
	// first private address of the host).
	AdvertiseAddress string `mapstructure:"advertise_address"`
	// Peers are host:port of members to join; every address a host name
	// resolves to is tried, so a Kubernetes headless service names them all.
	Peers []string `mapstructure:"peers"`
	// JoinTimeout is how long start waits to reach a peer before running
	// as a cluster of one (and trying again in the background).
	JoinTimeout time.Duration `mapstructure:"join_timeout"`
	// ProbeInterval is how often a member probes another one.
	ProbeInterval time.Duration `mapstructure:"probe_interval"`
	// FailureTimeout is how long a member that stopped answering is
	// suspected before it is declared dead and its targets move.
	FailureTimeout time.Duration `mapstructure:"failure_timeout"`
	// HandoverDelay is how far ahead a joining or leaving member announces
	// the scrape slot at which its targets change hands; it must exceed
	// the time gossip takes to reach every member plus the clock skew
	// between members.
	HandoverDelay time.Duration `mapstructure:"handover_delay"`
	// TLS, when set, carries all gossip over mutually authenticated TLS
	// (TCP only): cert_file and key_file are this member's certificate,
	// which it serves and dials with, ca_file the CA every member's
	// certificate must be signed by; server_name_override the name the
	// certificates carry (members dial IP addresses).
	TLS *configtls.ClientConfig `mapstructure:"tls"`
}

// validate checks the cluster block of c.
func (cc *ClusterConfig) validate(c *Config) []error {
	if !cc.Enabled {
		return nil
	}
	var errs []error
	if c.Shard.Count > 0 {
		errs = append(errs, errors.New("cluster::enabled and shard::count are exclusive: a cluster shares the targets by membership, a shard by a fixed index"))
	}
	if c.ScrapeLoop != LoopSluice {
		errs = append(errs, fmt.Errorf("cluster::enabled needs scrape_loop %q (it schedules the handover), got %q", LoopSluice, c.ScrapeLoop))
	}
	if _, _, err := splitAddr(cc.ListenAddress, false); err != nil {
		errs = append(errs, fmt.Errorf("cluster::listen_address: %w", err))
	}
	if cc.AdvertiseAddress != "" {
		if _, _, err := splitAddr(cc.AdvertiseAddress, true); err != nil {
			errs = append(errs, fmt.Errorf("cluster::advertise_address: %w", err))
		}
	}
	for i, p := range cc.Peers {
		if _, _, err := splitAddr(p, false); err != nil {
			errs = append(errs, fmt.Errorf("cluster::peers[%d]: %w", i, err))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"join_timeout", cc.JoinTimeout}, {"probe_interval", cc.ProbeInterval}, {"failure_timeout", cc.FailureTimeout}, {"handover_delay", cc.HandoverDelay}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("cluster::%s must be > 0, got %s", d.key, d.v))
		}
	}
	if t := cc.TLS; t != nil {
		for _, f := range []struct{ key, v string }{{"cert_file", t.CertFile}, {"key_file", t.KeyFile}, {"ca_file", t.CAFile}} {
			if f.v == "" {
				errs = append(errs, fmt.Errorf("cluster::tls::%s is required: members authenticate each other with certificates of one CA", f.key))
			}
		}
		if t.Insecure || t.InsecureSkipVerify {
			errs = append(errs, errors.New("cluster::tls::insecure and cluster::tls::insecure_skip_verify are not taken: a member would accept any peer"))
		}
	}
	if cc.ProbeInterval > 0 && cc.FailureTimeout > 0 && cc.FailureTimeout < cc.ProbeInterval {
		errs = append(errs, fmt.Errorf("cluster::failure_timeout (%s) must be at least cluster::probe_interval (%s)", cc.FailureTimeout, cc.ProbeInterval))
	}
	return errs
}

// splitAddr splits host:port; the port must be a number, and with needIP
// the host an IP address (memberlist advertises addresses, not names).
func splitAddr(addr string, needIP bool) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: the port must be a number in [0, 65535]", addr)
	}
	if needIP && net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q: the host must be an IP address", addr)
	}
	return host, port, nil
}

// tlsConfigs loads the gossip's TLS: the listener requires and verifies a
// peer certificate of ca_file, the dialer presents the same certificate.
func (cc *ClusterConfig) tlsConfigs(ctx context.Context) (server, client *tls.Config, err error) {
	if cc.TLS == nil {
		return nil, nil, nil
	}
	client, err = cc.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster::tls: %w", err)
	}
	srv := configtls.ServerConfig{Config: cc.TLS.Config, ClientCAFile: cc.TLS.CAFile}
	server, err = srv.LoadTLSConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster::tls: %w", err)
	}
	return server, client, nil
}
