package remotewriteexporter

import (
	"bytes"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/sluicehq/sluice/internal/promseries"
)

// addV1 writes labels and float samples by hand; prompb's generated
// marshalling of the same TimeSeries is the oracle, byte for byte, over
// random series with the values protobuf treats specially (0, -0, NaN,
// StaleNaN, infinities, timestamp 0 and negative, long strings, empty
// names), with exemplars and native histograms mixed in.
func TestAddV1MatchesPrompb(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []float64{0, math.Copysign(0, -1), 1, -2.5, math.NaN(), math.Float64frombits(value.StaleNaN), math.Inf(1), math.Inf(-1), 1e300}
	times := []int64{0, 1, -1, 1_700_000_000_000, math.MaxInt64, math.MinInt64}
	str := func() string {
		switch rng.IntN(4) {
		case 0:
			return ""
		case 1:
			return string(bytes.Repeat([]byte{'x'}, 100+rng.IntN(300))) // multi-byte length
		}
		return string(rune('a' + rng.IntN(26)))
	}
	for i := range 2000 {
		var ls []labels.Label
		for range rng.IntN(6) {
			ls = append(ls, labels.Label{Name: str(), Value: str()})
		}
		s := &promseries.Sample{T: times[rng.IntN(len(times))], V: values[rng.IntN(len(values))]}
		var want prompb.TimeSeries
		for _, l := range ls {
			want.Labels = append(want.Labels, prompb.Label{Name: l.Name, Value: l.Value})
		}
		if rng.IntN(5) == 0 {
			s.H = &histogram.Histogram{Count: 3, Sum: 1.5, ZeroThreshold: 0.001, ZeroCount: 1,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 0}}
			want.Histograms = []prompb.Histogram{prompb.FromIntHistogram(s.T, s.H)}
		} else {
			want.Samples = []prompb.Sample{{Value: s.V, Timestamp: s.T}}
		}
		for range rng.IntN(3) {
			e := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", str()), Value: values[rng.IntN(len(values))], Ts: times[rng.IntN(len(times))]}
			s.Exemplars = append(s.Exemplars, e)
			want.Exemplars = append(want.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts})
		}
		b := newBuilder(false)
		b.addV1(s, ls)
		wantBody := appendMessage(nil, 1, &want)
		if !bytes.Equal(b.body, wantBody) {
			t.Fatalf("case %d (%v %v@%d, %d exemplars, histogram %v): encoded\n%x\nprompb encodes\n%x", i, ls, s.V, s.T, len(s.Exemplars), s.H != nil, b.body, wantBody)
		}
	}
}

// addV2 is written by hand too; prompb's writev2 marshalling of the same
// TimeSeries, with the symbols taken in the same order, is the oracle.
func TestAddV2MatchesPrompb(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	values := []float64{0, math.Copysign(0, -1), 1, -2.5, math.NaN(), math.Float64frombits(value.StaleNaN), math.Inf(1)}
	times := []int64{0, 1, -1, 1_700_000_000_000, math.MaxInt64, math.MinInt64}
	types := []model.MetricType{"", model.MetricTypeCounter, model.MetricTypeGauge, model.MetricTypeHistogram, model.MetricTypeSummary, model.MetricTypeUnknown}
	str := func() string {
		switch rng.IntN(4) {
		case 0:
			return ""
		case 1:
			return string(bytes.Repeat([]byte{'y'}, 100+rng.IntN(300)))
		}
		return string(rune('a' + rng.IntN(26)))
	}
	b := newBuilder(true)
	for i := range 2000 {
		if rng.IntN(50) == 0 {
			b.reset(true)
		}
		var ls []labels.Label
		for range rng.IntN(6) {
			ls = append(ls, labels.Label{Name: str(), Value: str()})
		}
		s := &promseries.Sample{T: times[rng.IntN(len(times))], StartT: times[rng.IntN(len(times))], V: values[rng.IntN(len(values))],
			Meta: promseries.Metadata{Type: types[rng.IntN(len(types))], Help: str(), Unit: str()}}
		if rng.IntN(5) == 0 {
			s.H = &histogram.Histogram{Count: 3, Sum: 1.5, ZeroThreshold: 0.001, ZeroCount: 1,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 0}}
		}
		for range rng.IntN(3) {
			s.Exemplars = append(s.Exemplars, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", str()), Value: values[rng.IntN(len(values))], Ts: times[rng.IntN(len(times))]})
		}

		// The oracle: the same symbols, taken in the same order, into
		// prompb's own TimeSeries.
		syms := b.syms
		syms.list = slices.Clone(b.syms.list)
		syms.refs = maps.Clone(b.syms.refs)
		var want writev2.TimeSeries
		for _, l := range ls {
			want.LabelsRefs = append(want.LabelsRefs, syms.ref(l.Name), syms.ref(l.Value))
		}
		if s.H != nil {
			want.Histograms = []writev2.Histogram{writev2.FromIntHistogram(s.StartT, s.T, s.H)}
		} else {
			want.Samples = []writev2.Sample{{Value: s.V, Timestamp: s.T, StartTimestamp: s.StartT}}
		}
		for _, e := range s.Exemplars {
			var refs []uint32
			e.Labels.Range(func(l labels.Label) { refs = append(refs, syms.ref(l.Name), syms.ref(l.Value)) })
			want.Exemplars = append(want.Exemplars, writev2.Exemplar{LabelsRefs: refs, Value: e.Value, Timestamp: e.Ts})
		}
		if s.Meta.Type != "" {
			want.Metadata = writev2.Metadata{Type: writev2.FromMetadataType(s.Meta.Type), HelpRef: syms.ref(s.Meta.Help), UnitRef: syms.ref(s.Meta.Unit)}
		}
		wantBody := appendMessage(nil, 5, &want)

		n := len(b.body)
		b.addV2(s, ls)
		if got := b.body[n:]; !bytes.Equal(got, wantBody) {
			t.Fatalf("case %d (%v %v@%d st %d, %d exemplars, histogram %v, meta %+v): encoded\n%x\nprompb encodes\n%x", i, ls, s.V, s.T, s.StartT, len(s.Exemplars), s.H != nil, s.Meta, got, wantBody)
		}
		if !slices.Equal(b.syms.list, syms.list) {
			t.Fatalf("case %d: symbols %q, want %q", i, b.syms.list, syms.list)
		}
	}
}

// Queues on disk were sharded by this hash: it must stay xxhash of name,
// 0xff, value, 0xff for every label, whatever the code computing it.
func TestSeriesHashIsStable(t *testing.T) {
	ls := []labels.Label{{Name: "__name__", Value: "up"}, {Name: "instance", Value: "a:9100"}, {Name: "job", Value: "node"}}
	d := xxhash.New()
	for _, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{0xff})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{0xff})
	}
	got, buf := seriesHash(nil, ls)
	if got != d.Sum64() {
		t.Fatalf("seriesHash = %x, want %x", got, d.Sum64())
	}
	if again, _ := seriesHash(buf[:0], ls); again != got {
		t.Fatalf("a reused buffer changes the hash: %x, want %x", again, got)
	}
}
