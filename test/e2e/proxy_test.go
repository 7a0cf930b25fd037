package e2e

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// pausableProxy forwards TCP to a backend; paused, it refuses connections
// and cuts the open ones, as a network partition between one member and the
// backend would.
type pausableProxy struct {
	addr   string
	paused atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func startPausableProxy(t *testing.T, backend string) *pausableProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pausableProxy{addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.pause() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.paused.Load() {
				c.Close()
				continue
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[b] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); b.Close() }()
			go func() { _, _ = io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

func (p *pausableProxy) pause() {
	p.paused.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *pausableProxy) resume() { p.paused.Store(false) }
