package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsAreBelowTheEphemeralRangeDistinctAndBindable(t *testing.T) {
	start := ephemeralStart()
	seen := map[int]bool{}
	for range 200 {
		p, err := Get()
		if err != nil {
			t.Fatal(err)
		}
		if start-1-lowest >= 1000 && (p < lowest || p >= start) {
			t.Fatalf("port %d outside %d-%d", p, lowest, start-1)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d handed out but not bindable: %v", p, err)
		}
		ln.Close()
	}
}

func TestSkipsPortsInUse(t *testing.T) {
	p, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	// Take the port that would come next, then ask again: Get must skip it.
	mu.Lock()
	taken := next
	mu.Unlock()
	// (If someone else holds it already, it is in use all the same.)
	if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(taken))); err == nil {
		defer ln.Close()
	}
	q, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	if q == taken || q == p {
		t.Fatalf("got port %d; %d is in use and %d was handed out already", q, taken, p)
	}
}
