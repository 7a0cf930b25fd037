// Package freeport hands out loopback TCP ports for tests and benchmarks that
// pass a port to another process (or to a component that binds it later).
//
// A port taken from 127.0.0.1:0 lies in the kernel's ephemeral range, which is
// also where outgoing connections get their source ports: between the moment
// such a port is handed out and the moment the other process binds it, any
// connection made on the machine may take it, and the bind fails with
// "address already in use". Ports handed out here come from below the
// ephemeral range instead, in sequence from a random start, and each was free
// when it was handed out.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

const (
	// lowest is the first port considered: above the ports services
	// commonly use (Prometheus 9090, node_exporter 9100, VictoriaMetrics
	// 8428, Sluice's own 8888 and 13133 are all below it or skipped when
	// taken).
	lowest = 15000
	// defaultEphemeral is Linux's default start of the ephemeral range.
	defaultEphemeral = 32768
)

var (
	mu     sync.Mutex
	hi     int // last port of the range
	next   int // next port to try
	inited bool
)

// Get returns a TCP port on 127.0.0.1 that was free when it was handed out and
// that no outgoing connection will take. Within one process it never returns
// the same port twice until the range (some 17,000 ports) is used up.
func Get() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if !inited {
		hi = ephemeralStart() - 1
		if hi-lowest < 1000 {
			// An unusual ephemeral range leaves no room below it:
			// fall back to letting the kernel choose.
			hi = 0
		} else {
			next = lowest + rand.IntN(hi-lowest+1)
		}
		inited = true
	}
	if hi == 0 {
		return kernelPort()
	}
	for range hi - lowest + 1 {
		p := next
		next++
		if next > hi {
			next = lowest
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ln.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free loopback port in %d-%d", lowest, hi)
}

// ephemeralStart reads the start of the kernel's ephemeral port range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemeral
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return defaultEphemeral
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return defaultEphemeral
	}
	return n
}

func kernelPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
