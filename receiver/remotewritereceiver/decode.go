package remotewritereceiver

import (
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/sluicehq/sluice/internal/promseries"
)

// counts are what a request carried, for the 2.0 written headers and the
// receiver's telemetry.
type counts struct {
	samples, histograms, exemplars int
	// exemplars of a series with no sample in the same request: pdata keeps
	// exemplars on data points, so these cannot be carried.
	orphanExemplars int
	// native histograms pdata's exponential histogram cannot carry, by
	// reason (promseries.Native*): custom buckets, a schema out of range,
	// fractional counts, gaps too wide to fill.
	unfitHistograms unfit
}

type unfit struct{ customBuckets, schema, fractional, tooWide int }

func (u *unfit) add(reason string) {
	switch reason {
	case promseries.NativeCustomBuckets:
		u.customBuckets++
	case promseries.NativeSchema:
		u.schema++
	case promseries.NativeFractional:
		u.fractional++
	case promseries.NativeTooWide:
		u.tooWide++
	}
}

func (u *unfit) total() int { return u.customBuckets + u.schema + u.fractional + u.tooWide }

// pending holds a request's exemplars until every sample is added, so each
// goes to the newest point of its series in the request.
type pending struct {
	newest map[string]int64 // series (labels string) → newest sample time
	ex     []pendingExemplar
}

type pendingExemplar struct {
	ls labels.Labels
	e  exemplar.Exemplar
}

// newPending tracks the newest sample of each series only when the request
// carries exemplars at all (rendering every series' labels costs).
func newPending(exemplars bool) *pending {
	if !exemplars {
		return nil
	}
	return &pending{newest: map[string]int64{}}
}

// add adds a float sample of the series ls to b.
func (p *pending) add(b *promseries.Builder, c *counts, ls labels.Labels, t int64, v float64, startT int64) {
	b.Add(ls, t, v, startT)
	p.sample(ls, t)
	c.samples++
}

func (p *pending) sample(ls labels.Labels, t int64) {
	if p == nil {
		return
	}
	k := ls.String()
	if old, ok := p.newest[k]; !ok || t > old {
		p.newest[k] = t
	}
}

func (p *pending) flush(b *promseries.Builder, c *counts) {
	if p == nil {
		return
	}
	for _, x := range p.ex {
		t, ok := p.newest[x.ls.String()]
		if !ok {
			c.orphanExemplars++
			continue
		}
		b.AddExemplar(x.ls, t, x.e)
		c.exemplars++
	}
}

// addV2 adds a 2.0 request to b: metadata comes with each series, start
// timestamps with each sample. lim's label limits apply to each series, and
// bud is charged for what is added (prescanV2 charged for the structs).
func addV2(b *promseries.Builder, req *writev2.Request, lim Limits, bud *budget) (counts, error) {
	var c counts
	hasExemplars := false
	for i := range req.Timeseries {
		hasExemplars = hasExemplars || len(req.Timeseries[i].Exemplars) > 0
	}
	p := newPending(hasExemplars)
	var sb labels.ScratchBuilder
	chk := seriesChecker{lim: lim}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		if err := checkRefs(ts, len(req.Symbols)); err != nil {
			return c, fmt.Errorf("timeseries %d: %w", i, err)
		}
		if err := checkLabelsV2(&chk, ts.LabelsRefs, req.Symbols); err != nil {
			return c, fmt.Errorf("timeseries %d: %w", i, err)
		}
		ls, err := ts.ToLabels(&sb, req.Symbols)
		if err != nil {
			return c, fmt.Errorf("timeseries %d: %w", i, err)
		}
		if err := checkSeries(ls); err != nil {
			return c, fmt.Errorf("timeseries %d: %w", i, err)
		}
		md, err := ts.ToMetadata(req.Symbols)
		if err != nil {
			return c, fmt.Errorf("timeseries %d metadata: %w", i, err)
		}
		if md.Type != "" && md.Type != model.MetricTypeUnknown || md.Help != "" || md.Unit != "" {
			b.SetMetadata(promseries.FamilyName(ls.Get(model.MetricNameLabel), md.Type),
				promseries.Metadata{Type: md.Type, Help: md.Help, Unit: md.Unit})
		}
		for _, s := range ts.Samples {
			if err := bud.point(ls.Len()); err != nil {
				return c, fmt.Errorf("timeseries %d: %w", i, err)
			}
			p.add(b, &c, ls, s.Timestamp, s.Value, s.StartTimestamp)
		}
		for _, h := range ts.Histograms {
			if err := addHistogram(b, ls, &v2Histogram{h}, &c, p, bud); err != nil {
				return c, fmt.Errorf("timeseries %d: %w", i, err)
			}
		}
		for _, e := range ts.Exemplars {
			if err := bud.point(len(e.LabelsRefs) / 2); err != nil {
				return c, fmt.Errorf("timeseries %d: %w", i, err)
			}
			ex, err := e.ToExemplar(&sb, req.Symbols)
			if err != nil {
				return c, fmt.Errorf("timeseries %d exemplar: %w", i, err)
			}
			p.ex = append(p.ex, pendingExemplar{ls: ls, e: ex})
		}
	}
	p.flush(b, &c)
	return c, nil
}

// checkLabelsV2 applies the label limits to a series' references (already
// checked to be inside symbols).
func checkLabelsV2(chk *seriesChecker, refs []uint32, symbols []string) error {
	chk.reset()
	for i := 0; i+1 < len(refs); i += 2 {
		seen := func() string {
			return seriesString(func(yield func(string, string) bool) {
				for j := 0; j < i && yield(symbols[refs[j]], symbols[refs[j+1]]); j += 2 {
				}
			}, true)
		}
		if err := chk.label(symbols[refs[i]], symbols[refs[i+1]], seen); err != nil {
			return err
		}
	}
	return nil
}

// prescanV2 counts the series of a 2.0 request and charges bud for what
// prompb's decoding will allocate for it, before it does: a message of two
// bytes on the wire is a struct of hundreds. Malformed input is left for
// prompb to refuse.
func prescanV2(raw []byte, lim Limits, bud *budget) error {
	const (
		fieldRequestSymbols    = 4
		fieldRequestTimeseries = 5
		fieldV2LabelsRefs      = 1
		fieldV2Samples         = 2
		fieldV2Histograms      = 3
		fieldV2Exemplars       = 4
	)
	series := 0
	var cost int64
	_ = eachField(raw, "Request", func(num int32, typ int, v []byte) error {
		switch {
		case num == fieldRequestSymbols:
			cost += costV2SymbolBase + int64(len(v))
		case num == fieldRequestTimeseries && typ == wireBytes:
			series++
			cost += costSeries
			return eachField(v, "TimeSeries", func(num int32, typ int, v []byte) error {
				switch num {
				case fieldV2LabelsRefs:
					cost += costV2LabelRef * int64(max(1, len(v))) // packed: at least a byte a reference
				case fieldV2Samples:
					cost += costV2Sample
				case fieldV2Histograms:
					cost += costV2Histogram + costMessageByte*int64(len(v))
				case fieldV2Exemplars:
					cost += costV2Exemplar + costMessageByte*int64(len(v))
				}
				return nil
			})
		}
		return nil
	})
	if err := checkSeriesCount(lim, series); err != nil {
		return err
	}
	return bud.charge(cost)
}

// addHistogram adds a native histogram sample; an invalid one fails the
// request (as Prometheus refuses it), and one pdata cannot carry (a float
// histogram whose counts are not whole numbers, say) is counted and left out.
func addHistogram(b *promseries.Builder, ls labels.Labels, h histogramSample, c *counts, p *pending, bud *budget) error {
	var reason string
	var pos, neg []histogram.Span
	if h.IsFloatHistogram() {
		fh := h.ToFloatHistogram()
		if err := fh.Validate(); err != nil {
			return fmt.Errorf("series %s: invalid native histogram at %d: %w", cutLabels(ls, false), h.GetTimestamp(), err)
		}
		reason = b.AddHistogram(ls, h.GetTimestamp(), nil, fh, h.startTimestamp())
		pos, neg = fh.PositiveSpans, fh.NegativeSpans
	} else {
		ih := h.ToIntHistogram()
		if err := ih.Validate(); err != nil {
			return fmt.Errorf("series %s: invalid native histogram at %d: %w", cutLabels(ls, false), h.GetTimestamp(), err)
		}
		reason = b.AddHistogram(ls, h.GetTimestamp(), ih, nil, h.startTimestamp())
		pos, neg = ih.PositiveSpans, ih.NegativeSpans
	}
	if reason != "" {
		c.unfitHistograms.add(reason)
		return nil
	}
	// Charged once taken: the builder keeps the sparse buckets, and writes
	// them densely only when the pdata is made, after the whole push is in.
	if err := bud.charge(costPoint + costPointLabel*int64(ls.Len()) +
		costDenseBucket*(bucketsWritten(pos)+bucketsWritten(neg))); err != nil {
		return err
	}
	p.sample(ls, h.GetTimestamp())
	c.histograms++
	return nil
}

// histogramSample is what the 1.0 and 2.0 histogram messages share.
type histogramSample interface {
	IsFloatHistogram() bool
	ToFloatHistogram() *histogram.FloatHistogram
	ToIntHistogram() *histogram.Histogram
	GetTimestamp() int64
	startTimestamp() int64
}

type v1Histogram struct{ prompb.Histogram }

func (h v1Histogram) startTimestamp() int64 { return 0 }

type v2Histogram struct{ writev2.Histogram }

func (h v2Histogram) startTimestamp() int64 { return h.StartTimestamp }

// checkRefs rejects label references outside the symbol table (which the
// protobuf library would otherwise index blindly).
func checkRefs(ts *writev2.TimeSeries, symbols int) error {
	if len(ts.LabelsRefs)%2 != 0 {
		return fmt.Errorf("odd number of label references (%d)", len(ts.LabelsRefs))
	}
	for _, r := range ts.LabelsRefs {
		if int(r) >= symbols {
			return fmt.Errorf("label reference %d outside the %d symbols", r, symbols)
		}
	}
	for _, e := range ts.Exemplars {
		for _, r := range e.LabelsRefs {
			if int(r) >= symbols {
				return fmt.Errorf("exemplar label reference %d outside the %d symbols", r, symbols)
			}
		}
	}
	for _, r := range []uint32{ts.Metadata.HelpRef, ts.Metadata.UnitRef} {
		if int(r) >= symbols {
			return fmt.Errorf("metadata reference %d outside the %d symbols", r, symbols)
		}
	}
	return nil
}

// checkSeries rejects what no backend would store: a series without a name.
func checkSeries(ls labels.Labels) error {
	if ls.Get(model.MetricNameLabel) == "" {
		return fmt.Errorf("series %s has no __name__", cutLabels(ls, false))
	}
	return nil
}

// metricType maps a 1.0 metadata type (prompb's enum name) to Prometheus'.
func metricType(s string) model.MetricType {
	switch s {
	case "COUNTER":
		return model.MetricTypeCounter
	case "GAUGE":
		return model.MetricTypeGauge
	case "HISTOGRAM":
		return model.MetricTypeHistogram
	case "GAUGEHISTOGRAM":
		return model.MetricTypeGaugeHistogram
	case "SUMMARY":
		return model.MetricTypeSummary
	case "INFO":
		return model.MetricTypeInfo
	case "STATESET":
		return model.MetricTypeStateset
	}
	return model.MetricTypeUnknown
}
