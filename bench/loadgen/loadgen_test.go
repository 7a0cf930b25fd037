package loadgen

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

func gen(t *testing.T, cfg Config) *Generator {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func expose(t *testing.T, g *Generator, target, scrape int, format expfmt.Format) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, format)
	for _, mf := range g.Families(target, scrape) {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		c.Close()
	}
	return b.Bytes()
}

// parse reads an exposition with Prometheus' own parser: series -> value.
func parse(t *testing.T, body []byte, contentType string) map[string]float64 {
	t.Helper()
	p, err := textparse.New(body, contentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("parsing: %v", err)
		}
		if e != textparse.EntrySeries {
			continue
		}
		var ls labels.Labels
		p.Labels(&ls)
		_, _, v := p.Series()
		out[ls.String()] = v
	}
}

var textFmt = expfmt.NewFormat(expfmt.TypeTextPlain)

func TestExactSeriesCountInEveryFormat(t *testing.T) {
	for _, m := range []int{100, 1000, 20000} {
		g := gen(t, Config{Targets: 1, SeriesPerTarget: m, Seed: 1})
		if g.Lines() != m {
			t.Fatalf("Lines() = %d for %d", g.Lines(), m)
		}
		for _, f := range []struct {
			format expfmt.Format
			ct     string
		}{{textFmt, "text/plain; version=0.0.4"}, {expfmt.NewFormat(expfmt.TypeOpenMetrics), "application/openmetrics-text; version=1.0.0"}} {
			got := parse(t, expose(t, g, 0, 3, f.format), f.ct)
			// OpenMetrics adds a _created line for counters, histograms and summaries that carry one; ours carry none.
			if len(got) != m {
				t.Errorf("%d series asked, %s parses to %d", m, f.ct, len(got))
			}
		}
	}
}

func TestDeterministicFromSeed(t *testing.T) {
	a := gen(t, Config{Targets: 2, SeriesPerTarget: 500, Seed: 7})
	b := gen(t, Config{Targets: 2, SeriesPerTarget: 500, Seed: 7})
	c := gen(t, Config{Targets: 2, SeriesPerTarget: 500, Seed: 8})
	if !bytes.Equal(expose(t, a, 1, 5, textFmt), expose(t, b, 1, 5, textFmt)) {
		t.Error("same seed, same target and scrape: different exposition")
	}
	if bytes.Equal(expose(t, a, 1, 5, textFmt), expose(t, c, 1, 5, textFmt)) {
		t.Error("different seeds gave the same exposition")
	}
	if bytes.Equal(expose(t, a, 0, 5, textFmt), expose(t, a, 1, 5, textFmt)) {
		t.Error("two targets serve the same values")
	}
}

func TestValuesChangeAndCountersNeverDecrease(t *testing.T) {
	g := gen(t, Config{Targets: 1, SeriesPerTarget: 1000, Seed: 1})
	prev := parse(t, expose(t, g, 0, 1, textFmt), "text/plain")
	for k := 2; k < 6; k++ {
		cur := parse(t, expose(t, g, 0, k, textFmt), "text/plain")
		changed := 0
		for s, v := range cur {
			if v != prev[s] {
				changed++
			}
			if (strings.Contains(s, "_total") || strings.Contains(s, "_count") || strings.Contains(s, "_bucket")) && v < prev[s] {
				t.Fatalf("scrape %d: %s went down from %v to %v", k, s, prev[s], v)
			}
		}
		if changed < len(cur)*9/10 {
			t.Fatalf("scrape %d: only %d of %d series changed value", k, changed, len(cur))
		}
		prev = cur
	}
}

func TestChurn(t *testing.T) {
	ids := func(g *Generator, k int) map[string]bool {
		out := map[string]bool{}
		for s := range parse(t, expose(t, g, 0, k, textFmt), "text/plain") {
			out[s] = true
		}
		return out
	}
	still := gen(t, Config{Targets: 1, SeriesPerTarget: 1000, Seed: 1})
	a, b := ids(still, 1), ids(still, 2)
	for s := range a {
		if !b[s] {
			t.Fatalf("churn 0: %s disappeared", s)
		}
	}
	churning := gen(t, Config{Targets: 1, SeriesPerTarget: 1000, Seed: 1, ChurnRate: 0.1})
	for k := 1; k < 30; k++ {
		a, b := ids(churning, k), ids(churning, k+1)
		gone := 0
		for s := range a {
			if !b[s] {
				gone++
			}
		}
		churnable := churning.counters + churning.gauges
		if want := churnable / 10; gone != want || len(b) != 1000 {
			t.Fatalf("scrape %d->%d: %d series replaced (want %d), %d series (want 1000)", k, k+1, gone, want, len(b))
		}
	}
}

func TestNativeHistogramsOnlyWhenAsked(t *testing.T) {
	proto := expfmt.NewFormat(expfmt.TypeProtoDelim)
	for _, native := range []bool{false, true} {
		g := gen(t, Config{Targets: 1, SeriesPerTarget: 200, Seed: 1, NativeHistograms: native})
		p, err := textparse.New(expose(t, g, 0, 3, proto), string(proto), labels.NewSymbolTable(), textparse.ParserOptions{KeepClassicOnClassicAndNativeHistograms: true})
		if err != nil {
			t.Fatal(err)
		}
		natives := 0
		for {
			e, err := p.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if e == textparse.EntryHistogram {
				_, _, h, _ := p.Histogram()
				if h != nil {
					if err := h.Validate(); err != nil {
						t.Fatalf("invalid native histogram: %v", err)
					}
				}
				natives++
			}
		}
		if (natives > 0) != native {
			t.Fatalf("native=%v: %d native histograms in the protobuf exposition", native, natives)
		}
	}
}

func TestServer(t *testing.T) {
	if _, err := Start(Config{Targets: 1, SeriesPerTarget: 100}, "0.0.0.0:0"); err == nil {
		t.Fatal("listening on 0.0.0.0 accepted; loopback only")
	}
	s, err := Start(Config{Targets: 3, SeriesPerTarget: 200, Seed: 1}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if len(s.Addrs()) != 3 {
		t.Fatalf("addrs %v", s.Addrs())
	}
	for i := 0; i < 2; i++ {
		resp, err := http.Get("http://" + s.Addrs()[1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := len(parse(t, body, resp.Header.Get("Content-Type"))); got != 200 {
			t.Fatalf("scrape %d: %d series", i, got)
		}
	}
	st := s.Stats()
	if st.Targets[1].Scrapes != 2 || st.Targets[0].Scrapes != 0 || st.Samples != 400 || s.SamplesServed() != 400 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := s.ServeStats("0.0.0.0:0"); err == nil {
		t.Fatal("stats on 0.0.0.0 accepted; loopback only")
	}
	if err := (&Config{Targets: 1, SeriesPerTarget: 100, ChurnRate: math.NaN()}).Validate(); err == nil {
		t.Fatal("a NaN churn rate passed validation")
	}
	statsAddr, err := s.ServeStats("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + statsAddr + "/stats")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /stats: %v %v", err, resp)
	}
	resp.Body.Close()

	// Consecutive ports from a fixed base (a few bases tried: another
	// process may hold one of the ports).
	var s2 *Server
	var base int
	for try := 0; try < 5 && s2 == nil; try++ {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		base = ln.Addr().(*net.TCPAddr).Port + 100
		ln.Close()
		s2, _ = Start(Config{Targets: 3, SeriesPerTarget: 100}, "127.0.0.1:"+strconv.Itoa(base))
	}
	if s2 == nil {
		t.Fatal("no three consecutive free ports found in five tries")
	}
	defer s2.Stop()
	for i, a := range s2.Addrs() {
		if a != "127.0.0.1:"+strconv.Itoa(base+i) {
			t.Fatalf("target %d at %s, want port %d", i, a, base+i)
		}
	}
}

func BenchmarkScrape(b *testing.B) {
	g, _ := New(Config{Targets: 1, SeriesPerTarget: 20000, Seed: 1})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		enc := expfmt.NewEncoder(io.Discard, textFmt)
		for _, mf := range g.Families(0, i) {
			_ = enc.Encode(mf)
		}
	}
}
