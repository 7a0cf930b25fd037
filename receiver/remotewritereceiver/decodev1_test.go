package remotewritereceiver

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluicehq/sluice/internal/promseries"
)

// The reference for v1Decoder: prompb's generated decoding, then the same
// conversion done on its structs.

// addV1 adds a 1.0 request to b.
func addV1(b *promseries.Builder, req *prompb.WriteRequest) (counts, error) {
	var c counts
	for _, md := range req.Metadata {
		b.SetMetadata(md.MetricFamilyName, promseries.Metadata{
			Type: metricType(md.Type.String()), Help: md.Help, Unit: md.Unit,
		})
	}
	hasExemplars := false
	for i := range req.Timeseries {
		hasExemplars = hasExemplars || len(req.Timeseries[i].Exemplars) > 0
	}
	p := newPending(hasExemplars)
	var sb labels.ScratchBuilder
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		ls := ts.ToLabels(&sb, nil)
		if err := checkSeries(ls); err != nil {
			return c, fmt.Errorf("timeseries %d: %w", i, err)
		}
		for _, s := range ts.Samples {
			p.add(b, &c, ls, s.Timestamp, s.Value, 0)
		}
		for _, h := range ts.Histograms {
			if err := addHistogram(b, ls, &v1Histogram{h}, &c, p, nil); err != nil {
				return c, fmt.Errorf("timeseries %d: %w", i, err)
			}
		}
		for _, e := range ts.Exemplars {
			p.ex = append(p.ex, pendingExemplar{ls: ls, e: exemplar.Exemplar{
				Labels: e.ToExemplar(&sb, nil).Labels, Value: e.Value, Ts: e.Timestamp, HasTs: true,
			}})
		}
	}
	p.flush(b, &c)
	return c, nil
}

type decoded struct {
	ok      bool
	counts  counts
	metrics []byte // the pdata, protobuf-encoded (deterministic: pdata keeps insertion order)
}

func (d decoded) String() string {
	if !d.ok {
		return "refused"
	}
	return fmt.Sprintf("%+v, %d bytes of pdata", d.counts, len(d.metrics))
}

func finish(b *promseries.Builder, c counts, err error) decoded {
	if err != nil {
		return decoded{}
	}
	raw, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(b.Metrics())
	if err != nil {
		panic(err)
	}
	return decoded{ok: true, counts: c, metrics: raw}
}

func viaPrompb(raw []byte) decoded {
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		return decoded{}
	}
	b := promseries.NewBuilder("test")
	c, err := addV1(b, &wr)
	return finish(b, c, err)
}

func viaDecoder(raw []byte) decoded {
	b := promseries.NewBuilder("test")
	var d v1Decoder
	c, err := d.decode(b, raw)
	return finish(b, c, err)
}

func sameDecoding(a, b decoded) bool {
	return a.ok == b.ok && a.counts == b.counts && bytes.Equal(a.metrics, b.metrics)
}

// randomRequest is a request with what a real one can hold, in any order:
// labels unsorted, series of histogram and summary families with and
// without metadata, stale markers, exemplars (some without a sample),
// native histograms (integer, float, fractional), several samples per
// series, unknown fields, and now and then a series without a name.
func randomRequest(r *rand.Rand) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	families := []string{"http_requests_total", "rpc_seconds", "gc_seconds", "temp", "mystery"}
	types := []prompb.MetricMetadata_MetricType{prompb.MetricMetadata_COUNTER, prompb.MetricMetadata_HISTOGRAM,
		prompb.MetricMetadata_SUMMARY, prompb.MetricMetadata_GAUGE, prompb.MetricMetadata_UNKNOWN}
	for i, f := range families {
		if r.IntN(3) > 0 {
			req.Metadata = append(req.Metadata, prompb.MetricMetadata{Type: types[i], MetricFamilyName: f, Help: "help of " + f, Unit: "u"})
		}
	}
	suffixes := map[string][]string{"rpc_seconds": {"_bucket", "_sum", "_count", ""}, "gc_seconds": {"", "_sum", "_count"}}
	for range 1 + r.IntN(40) {
		fam := families[r.IntN(len(families))]
		name := fam
		if s := suffixes[fam]; s != nil {
			name += s[r.IntN(len(s))]
		}
		ls := []prompb.Label{{Name: "__name__", Value: name}, {Name: "job", Value: []string{"a", "b", "ns/c"}[r.IntN(3)]},
			{Name: "instance", Value: fmt.Sprintf("h%d:9100", r.IntN(2))}, {Name: "path", Value: []string{"/x", "/y"}[r.IntN(2)]}}
		if fam == "rpc_seconds" {
			ls = append(ls, prompb.Label{Name: "le", Value: []string{"0.1", "1", "+Inf"}[r.IntN(3)]})
		}
		if fam == "gc_seconds" {
			ls = append(ls, prompb.Label{Name: "quantile", Value: []string{"0.5", "0.99"}[r.IntN(2)]})
		}
		if r.IntN(30) == 0 {
			ls = ls[1:] // no name: the request is refused
		}
		r.Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
		ts := prompb.TimeSeries{Labels: ls}
		for range r.IntN(4) {
			v := float64(r.IntN(100))
			if r.IntN(10) == 0 {
				v = math.Float64frombits(value.StaleNaN)
			}
			ts.Samples = append(ts.Samples, prompb.Sample{Value: v, Timestamp: int64(1000 * (1 + r.IntN(3)))})
		}
		if r.IntN(5) == 0 {
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{
				Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprint(r.IntN(1000))}}, Value: 1.5, Timestamp: 1000})
		}
		if fam == "temp" && r.IntN(3) == 0 {
			h := &histogram.Histogram{Schema: 1, Count: 5, Sum: 2.5, ZeroCount: 1, ZeroThreshold: 1e-128,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{2, 0}}
			if r.IntN(2) == 0 {
				fh := h.ToFloat(nil)
				if r.IntN(2) == 0 {
					fh.Count, fh.ZeroCount, fh.PositiveBuckets = 5.5, 1.5, []float64{2, 2} // fractional
				}
				ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(3000, fh))
			} else {
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(3000, h))
			}
		}
		if r.IntN(8) == 0 {
			ts.XXX_unrecognized = protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 42)
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	if r.IntN(8) == 0 {
		req.XXX_unrecognized = protowire.AppendString(protowire.AppendTag(nil, 7, protowire.BytesType), "x")
	}
	return req
}

// TestDecoderMatchesPrompb: on a thousand random requests, reading the wire
// format in place gives exactly what prompb's decoding and the same
// conversion give: the same pdata, the same counts, the same refusals.
func TestDecoderMatchesPrompb(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	refused, withExemplars, withHistograms := 0, 0, 0
	for i := range 1000 {
		raw, err := randomRequest(r).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, got := viaPrompb(raw), viaDecoder(raw)
		if !sameDecoding(want, got) {
			t.Fatalf("request %d: decoder gives %s, prompb %s", i, got, want)
		}
		if !want.ok {
			refused++
		}
		if want.counts.exemplars+want.counts.orphanExemplars > 0 {
			withExemplars++
		}
		if want.counts.histograms+want.counts.unfitHistograms.total() > 0 {
			withHistograms++
		}
	}
	// The generator must have exercised each path.
	if refused == 0 || withExemplars == 0 || withHistograms == 0 {
		t.Fatalf("generator too narrow: %d refused, %d with exemplars, %d with histograms", refused, withExemplars, withHistograms)
	}
	t.Logf("1000 requests: %d refused, %d with exemplars, %d with native histograms", refused, withExemplars, withHistograms)
}

// TestDecoderRefusesMalformed: truncated and mangled requests are refused
// as malformed, as prompb refuses them.
func TestDecoderRefusesMalformed(t *testing.T) {
	raw, err := randomRequest(rand.New(rand.NewPCG(3, 4))).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for cut := 1; cut < len(raw); cut += 7 {
		want, got := viaPrompb(raw[:cut]), viaDecoder(raw[:cut])
		if !sameDecoding(want, got) {
			t.Fatalf("cut at %d of %d: decoder gives %s, prompb %s", cut, len(raw), got, want)
		}
	}
	bad := [][]byte{
		{0x0a, 0x05, 0x0a},             // timeseries longer than the request
		{0x08, 0x01},                   // timeseries as a varint
		{0x0a, 0x02, 0x12, 0x05},       // a sample longer than its series
		{0x0a, 0x03, 0x12, 0x01, 0x09}, // a sample value cut short
		{0x0c},                         // end group without a group
		{0x00},                         // field number 0
	}
	for _, raw := range bad {
		b := promseries.NewBuilder("test")
		var d v1Decoder
		if _, err := d.decode(b, raw); !isMalformed(err) {
			t.Errorf("% x: error %v, want a malformed request", raw, err)
		}
		var wr prompb.WriteRequest
		if err := wr.Unmarshal(raw); err == nil {
			t.Errorf("% x: prompb takes it", raw)
		}
	}
}

// FuzzDecodeV1 compares the decoder with prompb's on arbitrary bytes: never
// a panic; whatever one accepts the other accepts, with the same result.
func FuzzDecodeV1(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		raw, err := randomRequest(r).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, got := viaPrompb(raw), viaDecoder(raw)
		if !sameDecoding(want, got) {
			t.Fatalf("decoder gives %s, prompb %s", got, want)
		}
	})
}
