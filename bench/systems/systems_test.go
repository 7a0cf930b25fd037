package systems

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/internal/freeport"
)

// probeExposition is what the test target serves: a gauge, a counter named
// the usual way and one without _total, so a system that renames, adds
// suffixes or adds labels fails the exact comparison below.
const probeExposition = `# HELP probe_temperature_celsius A gauge.
# TYPE probe_temperature_celsius gauge
probe_temperature_celsius{room="a"} 21.5
probe_temperature_celsius{room="b"} 19
# HELP probe_requests_total A counter.
# TYPE probe_requests_total counter
probe_requests_total{code="200"} 1027
probe_requests_total{code="500"} 3
# HELP probe_events A counter without the _total suffix.
# TYPE probe_events counter
probe_events 7
`

// probeSeries are the series of probeExposition as the sink renders them
// (labels sorted by name) once scraped with job "loadgen" from instance.
func probeSeries(instance string) []string {
	return []string{
		fmt.Sprintf(`{__name__="probe_events", instance=%q, job="loadgen"}`, instance),
		fmt.Sprintf(`{__name__="probe_requests_total", code="200", instance=%q, job="loadgen"}`, instance),
		fmt.Sprintf(`{__name__="probe_requests_total", code="500", instance=%q, job="loadgen"}`, instance),
		fmt.Sprintf(`{__name__="probe_temperature_celsius", instance=%q, job="loadgen", room="a"}`, instance),
		fmt.Sprintf(`{__name__="probe_temperature_celsius", instance=%q, job="loadgen", room="b"}`, instance),
	}
}

// Every reference, started for real against one loopback target and the
// recording sink, must deliver exactly the target's series, listen on
// loopback only, pick up after kill -9 from the same directory, and stop
// cleanly on SIGTERM. An uninstalled reference is skipped with the install
// hint, or fails when SLUICE_BENCH_REQUIRE=1 (the benchmark's own check).
func TestReferencesDeliverToTheSink(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, probeExposition)
	}))
	defer target.Close()
	instance := strings.TrimPrefix(target.URL, "http://")
	want := probeSeries(instance)

	for _, sys := range All() {
		t.Run(sys.Name(), func(t *testing.T) {
			if err := sys.Available(); err != nil {
				if os.Getenv("SLUICE_BENCH_REQUIRE") == "1" {
					t.Fatal(err)
				}
				t.Skip(err)
			}
			sk := sink.New()
			addr, stopSink, err := sk.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer stopSink()
			spec := Spec{
				Targets:        []string{instance},
				Interval:       time.Second,
				RemoteWriteURL: "http://" + addr + "/api/v1/write",
				Dir:            t.TempDir(),
				Port:           freePort(t),
			}
			p, err := sys.Start(spec)
			if err != nil {
				t.Fatal(err)
			}
			// On a failure, kill whichever process is current (p is reassigned
			// at the restart below); after Stop this does nothing.
			defer func() { _ = p.Kill() }()

			start := time.Now()
			waitFor(t, p, sk, 60*time.Second, "the probe series", func() bool {
				return hasAll(sk.Series(), want)
			})
			t.Logf("%s (%s) delivered the probe series in %s", sys.Name(), sys.Version(), time.Since(start).Round(100*time.Millisecond))
			if extra := unexpected(sk.Series(), want); len(extra) > 0 {
				t.Errorf("series of the probe that the target does not serve: %q", extra)
			}
			assertLoopbackOnly(t, p.Pid())

			// kill -9, then Start with the same Spec: it must come back on its
			// own state and deliver scrapes made after the restart.
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
			killedAt := time.Now().UnixMilli()
			if p, err = sys.Start(spec); err != nil {
				t.Fatal(err)
			}
			waitFor(t, p, sk, 60*time.Second, "a sample scraped after kill -9 and restart", func() bool {
				pts := sk.Samples(want[0])
				return len(pts) > 0 && pts[len(pts)-1].T > killedAt
			})

			if err := p.Stop(30 * time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// waitFor polls cond until it holds, failing with the system's log and the
// sink's counts when the process ends or the time is up.
func waitFor(t *testing.T, p *Process, sk *sink.Sink, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if p.Exited() {
			t.Fatalf("exited while waiting for %s (%v); log:\n%s", what, p.Wait(), p.LogTail(3000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; sink %+v, series %q; log:\n%s",
				what, limit, sk.Stats().RemoteWrite, sk.Series(), p.LogTail(3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func hasAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// unexpected returns the received series of the probe's metrics that are
// not among want: the same names with other labels, or renamed ones.
func unexpected(got, want []string) []string {
	var out []string
	for _, g := range got {
		if strings.HasPrefix(g, `{__name__="probe_`) && !slices.Contains(want, g) {
			out = append(out, g)
		}
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// assertLoopbackOnly fails when the process has a listening TCP socket on
// anything but 127.0.0.1 or ::1, read from /proc: its socket inodes, matched
// against the kernel's tables of listening sockets.
func assertLoopbackOnly(t *testing.T, pid int) {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var listening []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, l := range listenersIn(t, table) {
			if inodes[l.inode] {
				listening = append(listening, l.addr)
				if !l.loopback {
					t.Errorf("listens on %s, not on loopback", l.addr)
				}
			}
		}
	}
	if len(listening) == 0 {
		t.Errorf("no listening socket found for pid %d", pid)
	}
	t.Logf("listening on %v", listening)
}

type listener struct {
	addr, inode string
	loopback    bool
}

// listenersIn parses a /proc/net/tcp{,6} table: local address (hex IP:port),
// state 0A (LISTEN), inode in the tenth column.
func listenersIn(t *testing.T, table string) []listener {
	f, err := os.Open(table)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []listener
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" {
			continue
		}
		hexIP, hexPort, _ := strings.Cut(fields[1], ":")
		ip, port := procIP(hexIP), ""
		if n, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
			port = strconv.FormatUint(n, 10)
		}
		out = append(out, listener{addr: net.JoinHostPort(ip.String(), port), inode: fields[9], loopback: ip.IsLoopback()})
	}
	return out
}

// procIP decodes /proc/net's hex address: 32-bit words in host (little
// endian, on the machines this runs on) byte order.
func procIP(h string) net.IP {
	ip := make(net.IP, 0, len(h)/2)
	for w := 0; w+8 <= len(h); w += 8 {
		for b := 6; b >= 0; b -= 2 {
			n, _ := strconv.ParseUint(h[w+b:w+b+2], 16, 8)
			ip = append(ip, byte(n))
		}
	}
	return ip
}

func TestSpecErrorsNameTheField(t *testing.T) {
	good := Spec{Targets: []string{"127.0.0.1:1"}, Interval: time.Second, RemoteWriteURL: "http://127.0.0.1:2/api/v1/write", Dir: t.TempDir(), Port: 3}
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no targets", func(s *Spec) { s.Targets = nil }, "Spec.Targets is empty"},
		{"no interval", func(s *Spec) { s.Interval = 0 }, "Spec.Interval must be >= 1ms, got 0s"},
		{"no url", func(s *Spec) { s.RemoteWriteURL = "" }, "Spec.RemoteWriteURL is empty"},
		{"no dir", func(s *Spec) { s.Dir = "" }, "Spec.Dir is empty"},
		{"no port", func(s *Spec) { s.Port = 0 }, "Spec.Port must be a TCP port, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.edit(&s)
			for _, sys := range All() {
				_, err := sys.Start(s)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: got %v, want an error containing %q", sys.Name(), err, tc.want)
				}
			}
		})
	}
}

// Prometheus-style configs reject Go's "1.5s" and "1m0s", and a timeout
// longer than the interval.
func TestDurationsArePrometheusStyle(t *testing.T) {
	for _, tc := range []struct {
		in                time.Duration
		interval, timeout string
	}{
		{time.Second, "1s", "1s"},
		{1500 * time.Millisecond, "1500ms", "1500ms"},
		{10 * time.Second, "10s", "10s"},
		{time.Minute, "60s", "10s"},
	} {
		s := Spec{Interval: tc.in}
		if got := s.interval(); got != tc.interval {
			t.Errorf("interval %s: got %q, want %q", tc.in, got, tc.interval)
		}
		if got := s.timeout(); got != tc.timeout {
			t.Errorf("timeout for %s: got %q, want %q", tc.in, got, tc.timeout)
		}
	}
}

func TestMissingContribBuildSaysHowToGetIt(t *testing.T) {
	t.Setenv("SLUICE_REPO", t.TempDir())
	err := contrib{}.Available()
	if err == nil || !strings.Contains(err.Error(), "bench/reference/install") {
		t.Fatalf("got %v, want the install hint", err)
	}
}
