package cluster

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// tlsTransport carries memberlist's gossip over TLS on TCP only: memberlist's
// own transport sends probes and gossip as plain UDP packets, which TLS
// cannot wrap. Each packet is a short connection of its own (a type byte,
// a length, the bytes); a stream (push/pull of the full state) is a
// connection that starts with the other type byte. A handshake per packet
// costs a few milliseconds of CPU: fine for the tens of members a scraping
// cluster has, not for thousands.
type tlsTransport struct {
	server, client *tls.Config
	bindAddr       string
	ln             net.Listener
	log            *zap.Logger

	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

const (
	connPacket byte = 'p'
	connStream byte = 's'
	// maxPacket bounds a packet a peer may send (memberlist's own UDP
	// packets are far smaller).
	maxPacket = 1 << 20
)

var _ memberlist.Transport = (*tlsTransport)(nil)

func newTLSTransport(addr string, port int, server, client *tls.Config, log *zap.Logger) (*tlsTransport, error) {
	ln, err := tls.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), server)
	if err != nil {
		return nil, err
	}
	t := &tlsTransport{
		server: server, client: client, bindAddr: addr, ln: ln, log: log,
		packets: make(chan *memberlist.Packet, 64), streams: make(chan net.Conn, 16), done: make(chan struct{}),
	}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

func (t *tlsTransport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			t.log.Debug("accepting a gossip connection", zap.Error(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.wg.Add(1)
		go func() { defer t.wg.Done(); t.serve(c) }()
	}
}

// serve reads a connection's type and hands it on; a peer that cannot
// complete the TLS handshake (no certificate of the cluster's CA) is
// dropped here.
func (t *tlsTransport) serve(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	kind, err := r.ReadByte()
	if err != nil {
		t.log.Debug("gossip connection refused", zap.String("from", c.RemoteAddr().String()), zap.Error(err))
		c.Close()
		return
	}
	switch kind {
	case connPacket:
		defer c.Close()
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil || n > maxPacket {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		select {
		case t.packets <- &memberlist.Packet{Buf: buf, From: c.RemoteAddr(), Timestamp: time.Now()}:
		case <-t.done:
		}
	case connStream:
		_ = c.SetReadDeadline(time.Time{})
		select {
		case t.streams <- &bufferedConn{Conn: c, r: r}:
		case <-t.done:
			c.Close()
		}
	default:
		c.Close()
	}
}

// bufferedConn is a connection whose first bytes were read through r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (t *tlsTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	bound := t.ln.Addr().(*net.TCPAddr)
	if ip == "" {
		if bound.IP.IsUnspecified() {
			priv, err := sockaddr.GetPrivateIP()
			if err != nil || priv == "" {
				return nil, 0, fmt.Errorf("no private IP address to advertise (set cluster::advertise_address): %v", err)
			}
			ip = priv
		} else {
			ip = bound.IP.String()
		}
		port = bound.Port
	}
	adv := net.ParseIP(ip)
	if adv == nil {
		return nil, 0, fmt.Errorf("advertise address %q is not an IP address", ip)
	}
	if v4 := adv.To4(); v4 != nil {
		adv = v4
	}
	if port == 0 {
		port = bound.Port
	}
	return adv, port, nil
}

func (t *tlsTransport) dial(addr string, timeout time.Duration, kind byte) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: t.client}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (t *tlsTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	c, err := t.dial(addr, 2*time.Second, connPacket)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := c.Write(append(n[:], b...)); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

func (t *tlsTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *tlsTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.dial(addr, timeout, connStream)
}

func (t *tlsTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *tlsTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		err = t.ln.Close()
		t.wg.Wait()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
