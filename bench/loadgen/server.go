package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
)

// TargetStats counts what one target served.
type TargetStats struct {
	Addr    string `json:"addr"`
	Scrapes int64  `json:"scrapes"`
	Samples int64  `json:"samples"` // stored series served, summed over scrapes
}

// Stats is what the server served so far.
type Stats struct {
	Targets        []TargetStats `json:"targets"`
	Scrapes        int64         `json:"scrapes"`
	Samples        int64         `json:"samples"`
	LinesPerScrape int           `json:"lines_per_scrape"`
}

type target struct {
	gen    *Generator
	index  int
	addr   string
	next   atomic.Int64 // the next scrape number
	served atomic.Int64 // completed scrapes
	srv    *http.Server
}

// Server serves the targets of a generator on consecutive loopback ports.
type Server struct {
	gen     *Generator
	targets []*target
	stats   *http.Server
	once    sync.Once
}

// Start listens for cfg.Targets targets from base ("127.0.0.1:20000" means
// ports 20000, 20001, …; port 0 picks free ports) and serves /metrics on each.
func Start(cfg Config, base string) (*Server, error) {
	gen, err := New(cfg)
	if err != nil {
		return nil, err
	}
	host, portStr, err := net.SplitHostPort(base)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", base, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("loadgen listens on loopback only, not %q", host)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: bad port", base)
	}
	s := &Server{gen: gen}
	for i := 0; i < cfg.Targets; i++ {
		addr := net.JoinHostPort(host, "0")
		if port != 0 {
			addr = net.JoinHostPort(host, strconv.Itoa(port+i))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("target %d: %w", i, err)
		}
		t := &target{gen: gen, index: i, addr: ln.Addr().String()}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", t)
		t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = t.srv.Serve(ln) }()
		s.targets = append(s.targets, t)
	}
	return s, nil
}

// ServeHTTP serves the target's next scrape in the format the scraper asks for.
func (t *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := int(t.next.Add(1) - 1)
	format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
	w.Header().Set("Content-Type", string(format))
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range t.gen.Families(t.index, k) {
		if err := enc.Encode(mf); err != nil {
			return // the scraper went away: not served
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return
		}
	}
	if bw.Flush() == nil {
		t.served.Add(1)
	}
}

// Addrs returns the targets' host:port, in order.
func (s *Server) Addrs() []string {
	out := make([]string, len(s.targets))
	for i, t := range s.targets {
		out[i] = t.addr
	}
	return out
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	st := Stats{LinesPerScrape: s.gen.Lines()}
	for _, t := range s.targets {
		n := t.served.Load()
		ts := TargetStats{Addr: t.addr, Scrapes: n, Samples: n * int64(s.gen.Lines())}
		st.Targets = append(st.Targets, ts)
		st.Scrapes += ts.Scrapes
		st.Samples += ts.Samples
	}
	return st
}

// SamplesServed is the total of stored series served over all scrapes.
func (s *Server) SamplesServed() int64 { return s.Stats().Samples }

// ServeStats serves Stats as JSON at GET /stats on a loopback address.
func (s *Server) ServeStats(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("stats address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("loadgen serves stats on loopback only, not %q", host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	})
	s.stats = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.stats.Serve(ln) }()
	return ln.Addr().String(), nil
}

// Stop closes every listener; scrapes after it fail.
func (s *Server) Stop() {
	s.once.Do(func() {
		for _, t := range s.targets {
			_ = t.srv.Close()
		}
		if s.stats != nil {
			_ = s.stats.Close()
		}
	})
}
