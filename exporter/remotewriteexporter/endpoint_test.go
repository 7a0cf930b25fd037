package remotewriteexporter

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/internal/comptest"
)

func seriesNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("series_%03d", i)
	}
	return out
}

// owners maps each series name to the sinks that hold it.
func owners(sinks []*sink.Sink) map[string][]int {
	out := map[string][]int{}
	for i, s := range sinks {
		for _, key := range s.Series() {
			ls, err := sink.ParseSeries(key)
			if err != nil {
				panic(err)
			}
			name := ls.Get("__name__")
			out[name] = append(out[name], i)
		}
	}
	return out
}

func startSinks(t *testing.T, n int) ([]*sink.Sink, []string) {
	var sinks []*sink.Sink
	var urls []string
	for i := 0; i < n; i++ {
		s, u := startSink(t)
		sinks, urls = append(sinks, s), append(urls, u)
	}
	return sinks, urls
}

// balance: series sends each series to exactly one endpoint, always the
// same; an endpoint that is down keeps its share in its own queue (nothing
// is re-routed, which would reorder), and gets it in order once back.
func TestBalanceSeries(t *testing.T) {
	sinks, urls := startSinks(t, 3)
	dir := t.TempDir()
	r := startExporter(t, "", dir, func(c *Config) { c.Endpoints = urls })
	names := seriesNames(300)

	if err := sinks[1].SetFault(sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for round := int64(0); round < 5; round++ {
		if err := r.exp.ConsumeMetrics(context.Background(), gauges("app", 1000+round*1000, float64(round), names...)); err != nil {
			t.Fatal(err)
		}
	}
	comptest.WaitFor(t, 10*time.Second, "the two healthy endpoints to get their share", func() bool {
		return sinks[0].Stats().RemoteWrite.Samples+sinks[2].Stats().RemoteWrite.Samples > 0 &&
			r.exp.queues[0].Stats().Records+r.exp.queues[2*r.cfg.Shards].Stats().Records == 0
	})
	down := owners(sinks[:1])
	for name := range owners(sinks[2:]) {
		down[name] = append(down[name], 2)
	}
	waiting := int64(0)
	for _, q := range r.exp.queues[r.cfg.Shards : 2*r.cfg.Shards] {
		waiting += q.Stats().Records
	}
	if waiting == 0 {
		t.Fatal("nothing waits in the queue of the endpoint that is down")
	}
	for name := range down {
		if own := owners(sinks)[name]; len(own) != 1 {
			t.Errorf("%s is at sinks %v while one endpoint is down", name, own)
		}
	}
	sinks[1].ClearFault()
	comptest.WaitFor(t, 15*time.Second, "every sample delivered", func() bool {
		n := 0
		for _, s := range sinks {
			n += s.Stats().RemoteWrite.Samples
		}
		return n == 5*len(names)
	})
	per := make([]int, 3)
	for name, own := range owners(sinks) {
		if len(own) != 1 {
			t.Fatalf("%s reached sinks %v, want exactly one", name, own)
		}
		per[own[0]]++
	}
	for i, s := range sinks {
		st := s.Stats().RemoteWrite
		if st.Duplicates != 0 || st.OutOfOrder != 0 {
			t.Errorf("sink %d: %d duplicates, %d out of order", i, st.Duplicates, st.OutOfOrder)
		}
		if per[i] < len(names)/6 {
			t.Errorf("sink %d holds %d of %d series: the hash does not spread", i, per[i], len(names))
		}
	}
	t.Logf("series per endpoint: %v", per)
	entries, _ := os.ReadDir(r.exp.dir)
	dirs := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "endpoint-") {
			dirs++
		}
	}
	if dirs != 3 {
		t.Errorf("%d endpoint queue directories under %s, want 3", dirs, r.exp.dir)
	}
}

// balance: replicate sends everything to every endpoint (an HA pair).
func TestBalanceReplicate(t *testing.T) {
	sinks, urls := startSinks(t, 2)
	r := startExporter(t, "", "", func(c *Config) { c.Endpoints, c.Balance = urls, BalanceReplicate })
	names := seriesNames(50)
	if err := r.exp.ConsumeMetrics(context.Background(), gauges("app", 1000, 1, names...)); err != nil {
		t.Fatal(err)
	}
	comptest.WaitFor(t, 10*time.Second, "both endpoints to get everything", func() bool {
		return sinks[0].Stats().RemoteWrite.Samples == len(names) && sinks[1].Stats().RemoteWrite.Samples == len(names)
	})
}

// Rendezvous hashing: removing an endpoint moves only the series it held;
// adding one moves only the series it now wins.
func TestEndpointOfIsStable(t *testing.T) {
	exp := func(urls ...string) *rwExporter {
		e := &rwExporter{}
		for _, u := range urls {
			e.endpoints = append(e.endpoints, &endpoint{url: u, seed: xxhash.Sum64String(u)})
		}
		return e
	}
	three := exp("http://a", "http://b", "http://c")
	two := exp("http://a", "http://c")
	moved, held := 0, 0
	for i := 0; i < 30000; i++ {
		h := xxhash.Sum64String(fmt.Sprint("series", i))
		before := three.endpoints[three.endpointOf(h)].url
		after := two.endpoints[two.endpointOf(h)].url
		if before == "http://b" {
			held++
			continue
		}
		if before != after {
			moved++
		}
	}
	if moved != 0 {
		t.Fatalf("%d series moved between the endpoints that stayed", moved)
	}
	if held < 9000 || held > 11000 {
		t.Fatalf("endpoint b held %d of 30000 series, want about a third", held)
	}
}
