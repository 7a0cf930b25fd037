package systems

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/bench/sink"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Every reference, started for real against one loopback target and the
// recording sink, must deliver the target's series. A reference that is not
// installed fails the test: run bench/reference/install first (make bench does).
func TestReferencesDeliverToTheSink(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE bench_probe gauge\nbench_probe{kind=\"probe\"} 42\n")
	}))
	defer target.Close()
	for _, sys := range All() {
		t.Run(sys.Name(), func(t *testing.T) {
			if err := sys.Available(); err != nil {
				t.Fatal(err)
			}
			s := sink.New()
			addr, stop, err := s.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			spec := Spec{
				Targets:        []string{strings.TrimPrefix(target.URL, "http://")},
				Interval:       time.Second,
				RemoteWriteURL: "http://" + addr + "/api/v1/write",
				Dir:            t.TempDir(),
				Port:           freePort(t),
			}
			p, err := sys.Start(spec)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := p.Stop(30 * time.Second); err != nil {
					t.Error(err)
				}
			}()
			// The contrib WAL exports every truncate_frequency (1 min by default)
			// when fewer than buffer_size (300) requests are waiting: allow for it.
			deadline := time.Now().Add(2 * time.Minute)
			for {
				for _, series := range s.Series() {
					if strings.Contains(series, `__name__="bench_probe"`) && strings.Contains(series, `kind="probe"`) {
						t.Logf("%s delivered %s (%s)", sys.Name(), series, sys.Version())
						return
					}
				}
				if p.Exited() {
					t.Fatalf("%s exited:\n%s", sys.Name(), p.LogTail(2000))
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s delivered nothing in 2 min; sink %+v; log:\n%s", sys.Name(), s.Stats().RemoteWrite, p.LogTail(2000))
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}
