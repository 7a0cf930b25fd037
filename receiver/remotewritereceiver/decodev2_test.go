package remotewritereceiver

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/sluicehq/sluice/internal/promseries"
)

// The 2.0 path is prompb's decoding followed by addV2. FuzzDecodeV2 holds it
// against prompb read independently: a 2.0 request is the 1.0 request of the
// same series with the symbols looked up (by the test, with its own bounds
// checks), start timestamps and per-series metadata aside; decoded by the
// 1.0 path it must give the same pdata, counts and refusals.

// viaV2 is the receiver's 2.0 path on raw, without limits.
func viaV2(raw []byte) decoded {
	if err := prescanV2(raw, Limits{}, nil); err != nil {
		return decoded{}
	}
	var wr writev2.Request
	if err := wr.Unmarshal(raw); err != nil {
		return decoded{}
	}
	b := promseries.NewBuilder("test")
	c, err := addV2(b, &wr, Limits{}, nil)
	return finish(b, c, err)
}

// symbol looks a reference up, reporting one outside the table.
func symbol(symbols []string, ref uint32) (string, bool) {
	if int(ref) >= len(symbols) {
		return "", false
	}
	return symbols[ref], true
}

// pairs turns label references into prompb labels.
func pairs(symbols []string, refs []uint32) ([]prompb.Label, bool) {
	if len(refs)%2 != 0 {
		return nil, false
	}
	var out []prompb.Label
	for i := 0; i < len(refs); i += 2 {
		name, ok1 := symbol(symbols, refs[i])
		value, ok2 := symbol(symbols, refs[i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out = append(out, prompb.Label{Name: name, Value: value})
	}
	return out, true
}

// asV1 is wr as a 1.0 request and wr itself with what 1.0 cannot say
// (start timestamps, metadata) cleared; ok false when a reference is
// outside the symbol table, which the receiver must refuse.
func asV1(wr *writev2.Request) (*prompb.WriteRequest, bool) {
	v1 := &prompb.WriteRequest{}
	for i := range wr.Timeseries {
		ts := &wr.Timeseries[i]
		ls, ok := pairs(wr.Symbols, ts.LabelsRefs)
		_, okHelp := symbol(wr.Symbols, ts.Metadata.HelpRef)
		_, okUnit := symbol(wr.Symbols, ts.Metadata.UnitRef)
		if !ok || !okHelp || !okUnit {
			return nil, false
		}
		ts.Metadata = writev2.Metadata{}
		out := prompb.TimeSeries{Labels: ls}
		for j := range ts.Samples {
			ts.Samples[j].StartTimestamp = 0
			out.Samples = append(out.Samples, prompb.Sample{Value: ts.Samples[j].Value, Timestamp: ts.Samples[j].Timestamp})
		}
		for j := range ts.Histograms {
			h := &ts.Histograms[j]
			h.StartTimestamp = 0
			if h.IsFloatHistogram() {
				out.Histograms = append(out.Histograms, prompb.FromFloatHistogram(h.Timestamp, h.ToFloatHistogram()))
			} else {
				out.Histograms = append(out.Histograms, prompb.FromIntHistogram(h.Timestamp, h.ToIntHistogram()))
			}
		}
		for _, e := range ts.Exemplars {
			els, ok := pairs(wr.Symbols, e.LabelsRefs)
			if !ok {
				return nil, false
			}
			out.Exemplars = append(out.Exemplars, prompb.Exemplar{Labels: els, Value: e.Value, Timestamp: e.Timestamp})
		}
		v1.Timeseries = append(v1.Timeseries, out)
	}
	return v1, true
}

// checkV2 compares the receiver's 2.0 path on raw with prompb's reading.
func checkV2(t *testing.T, raw []byte) {
	got := viaV2(raw)
	var wr writev2.Request
	if err := wr.Unmarshal(raw); err != nil {
		if got.ok {
			t.Fatalf("prompb refuses the request (%v), the receiver takes it: %s", err, got)
		}
		return
	}
	v1, ok := asV1(&wr)
	if !ok {
		if got.ok {
			t.Fatalf("a reference outside the %d symbols, and the receiver takes the request: %s", len(wr.Symbols), got)
		}
		return
	}
	// wr without start timestamps and metadata, through the receiver's
	// 2.0 conversion, against the same through the 1.0 path.
	b := promseries.NewBuilder("test")
	c, err := addV2(b, &wr, Limits{}, nil)
	bare := finish(b, c, err)
	raw1, err := v1.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := viaPrompb(raw1); !sameDecoding(bare, want) {
		t.Fatalf("2.0 path gives %s, the same request as 1.0 %s", bare, want)
	}
	if got.ok != bare.ok || got.counts != bare.counts {
		t.Fatalf("with its start timestamps and metadata the request gives %s, without %s", got, bare)
	}
}

// randomRequestV2 is randomRequest in 2.0: symbolized, with start
// timestamps and each series' metadata.
func randomRequestV2(r *rand.Rand) *writev2.Request {
	v1 := randomRequest(r)
	meta := map[string]prompb.MetricMetadata{}
	for _, m := range v1.Metadata {
		meta[m.MetricFamilyName] = m
	}
	st := writev2.NewSymbolTable()
	wr := &writev2.Request{}
	var sb labels.ScratchBuilder
	for _, ts := range v1.Timeseries {
		ls := ts.ToLabels(&sb, nil)
		out := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(ls, nil)}
		if m, ok := meta[ls.Get("__name__")]; ok {
			out.Metadata = writev2.Metadata{Type: writev2.FromMetadataType(metricType(m.Type.String())),
				HelpRef: st.Symbolize(m.Help), UnitRef: st.Symbolize(m.Unit)}
		}
		startT := int64(r.IntN(2)) * 500
		for _, s := range ts.Samples {
			out.Samples = append(out.Samples, writev2.Sample{Value: s.Value, Timestamp: s.Timestamp, StartTimestamp: startT})
		}
		for _, h := range ts.Histograms {
			if h.IsFloatHistogram() {
				out.Histograms = append(out.Histograms, writev2.FromFloatHistogram(startT, h.Timestamp, h.ToFloatHistogram()))
			} else {
				out.Histograms = append(out.Histograms, writev2.FromIntHistogram(startT, h.Timestamp, h.ToIntHistogram()))
			}
		}
		for _, e := range ts.Exemplars {
			out.Exemplars = append(out.Exemplars, writev2.Exemplar{
				LabelsRefs: st.SymbolizeLabels(e.ToExemplar(&sb, nil).Labels, nil), Value: e.Value, Timestamp: e.Timestamp})
		}
		wr.Timeseries = append(wr.Timeseries, out)
	}
	wr.Symbols = st.Symbols()
	return wr
}

// brokenV2 are the 2.0 requests a sender can get wrong, as fuzz seeds.
func brokenV2(r *rand.Rand) []*writev2.Request {
	var out []*writev2.Request
	mangle := func(f func(wr *writev2.Request)) {
		wr := randomRequestV2(r)
		f(wr)
		out = append(out, wr)
	}
	mangle(func(wr *writev2.Request) { wr.Symbols = wr.Symbols[:len(wr.Symbols)/2] })                   // symbols cut short
	mangle(func(wr *writev2.Request) { wr.Timeseries[0].LabelsRefs[1] = uint32(len(wr.Symbols)) })      // a reference just past the table
	mangle(func(wr *writev2.Request) { wr.Timeseries[0].LabelsRefs = wr.Timeseries[0].LabelsRefs[1:] }) // odd references
	mangle(func(wr *writev2.Request) { wr.Symbols[0] = "not empty" })                                   // symbol 0 must be ""
	mangle(func(wr *writev2.Request) { wr.Timeseries[0].LabelsRefs[0] = 0 })                            // a label named ""
	mangle(func(wr *writev2.Request) { wr.Timeseries[0].Metadata.HelpRef = 1 << 20 })                   // metadata past the table
	mangle(func(wr *writev2.Request) { wr.Timeseries[0].Metadata.UnitRef = uint32(len(wr.Symbols)) })
	mangle(func(wr *writev2.Request) { // an exemplar's reference past the table
		wr.Timeseries[0].Exemplars = append(wr.Timeseries[0].Exemplars, writev2.Exemplar{LabelsRefs: []uint32{1, 1 << 30}, Value: 1, Timestamp: 1000})
	})
	mangle(func(wr *writev2.Request) { // spans covering more buckets than there are, and fewer
		wr.Timeseries[0].Histograms = append(wr.Timeseries[0].Histograms,
			writev2.Histogram{Count: &writev2.Histogram_CountInt{CountInt: 3}, Timestamp: 1000,
				PositiveSpans: []writev2.BucketSpan{{Offset: 0, Length: 5}}, PositiveDeltas: []int64{1, 1}},
			writev2.Histogram{Count: &writev2.Histogram_CountFloat{CountFloat: 3}, Timestamp: 2000,
				NegativeSpans: []writev2.BucketSpan{{Offset: -2, Length: 1}}, NegativeCounts: []float64{1, 2}})
	})
	return out
}

// TestDecodeV2MatchesPrompb: on a thousand random 2.0 requests and the
// broken ones, the receiver's 2.0 path agrees with prompb's reading.
func TestDecodeV2MatchesPrompb(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	reqs := brokenV2(r)
	for range 1000 {
		reqs = append(reqs, randomRequestV2(r))
	}
	refused := 0
	for _, wr := range reqs {
		raw, err := wr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		checkV2(t, raw)
		if !viaV2(raw).ok {
			refused++
		}
	}
	if refused < 8 { // the broken ones but symbol 0 and the empty name, and the random ones without a name
		t.Fatalf("only %d of %d requests refused", refused, len(reqs))
	}
}

// FuzzDecodeV2 holds the receiver's 2.0 path against prompb's reading on
// arbitrary bytes: never a panic; the same refusals, pdata and counts.
// make test runs it for 20 s (make fuzz-short); longer by hand:
// go test -run '^$' -fuzz FuzzDecodeV2 -fuzztime 10m ./receiver/remotewritereceiver/
func FuzzDecodeV2(f *testing.F) {
	r := rand.New(rand.NewPCG(11, 12))
	seeds := brokenV2(r)
	for range 20 {
		seeds = append(seeds, randomRequestV2(r))
	}
	for _, wr := range seeds {
		raw, err := wr.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(checkV2)
}
