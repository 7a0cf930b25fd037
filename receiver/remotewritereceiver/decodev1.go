package remotewritereceiver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sluicehq/sluice/internal/promseries"
)

// Field numbers of the remote write 1.0 messages (prometheus/prompb).
const (
	fieldRequestTimeseries = 1
	fieldRequestMetadata   = 3

	fieldSeriesLabels     = 1
	fieldSeriesSamples    = 2
	fieldSeriesExemplars  = 3
	fieldSeriesHistograms = 4

	fieldLabelName  = 1
	fieldLabelValue = 2

	fieldSampleValue     = 1
	fieldSampleTimestamp = 2
)

// v1Decoder reads a remote write 1.0 request straight into a Builder: the
// wire format is walked in place, label names and values are viewed in the
// decompressed body until the series' labels are built (one allocation per
// series), and samples are read where they lie. Decoding the request into
// prompb's structs first, as the generated code does, costs a string per
// label name and value, a slice per series and the structs themselves: most
// of what a push costs. Exemplars, histograms and metadata, which are rare,
// go through prompb's own decoders.
//
// The result is the same as prompb's decoding followed by the same
// conversion (decodev1_test.go holds the two side by side, and a fuzz target
// compares them on arbitrary bytes).
type v1Decoder struct {
	lim     Limits  // label limits and max_series_per_request; zero: none
	bud     *budget // charged for what the request takes as it is read; nil: no limit
	chk     seriesChecker
	sb      labels.ScratchBuilder
	samples []rawSample // the current series' samples
	other   [][]byte    // its exemplar and histogram messages, with their field numbers in kinds
	kinds   []int32
}

// rawSample is a sample as read, until its series' labels are known: 16
// bytes, where prompb.Sample takes 48 (its XXX_ fields). A push of a
// million samples is refused only once they are read, so this is what it
// holds until then (costSampleRead).
type rawSample struct {
	v float64
	t int64
}

// errV1 is a malformed 1.0 request.
type errV1 struct{ err error }

func (e errV1) Error() string { return e.err.Error() }
func (e errV1) Unwrap() error { return e.err }

func malformed(format string, args ...any) error {
	return errV1{fmt.Errorf(format, args...)}
}

// decode adds the request in raw to b. A malformed request is an errV1; a
// well-formed one with a series no backend would take (no name, an invalid
// histogram) is another error.
func (d *v1Decoder) decode(b *promseries.Builder, raw []byte) (counts, error) {
	var c counts
	// First the metadata, which decides how the series are grouped into
	// metrics, and whether any series carries exemplars.
	hasExemplars := false
	series := 0
	err := eachField(raw, "WriteRequest", func(num int32, typ int, v []byte) error {
		switch num {
		case fieldRequestTimeseries:
			if typ != wireBytes {
				return malformed("WriteRequest: wrong wire type %d for timeseries", typ)
			}
			series++
			if !hasExemplars {
				return eachField(v, "TimeSeries", func(num int32, typ int, _ []byte) error {
					hasExemplars = hasExemplars || num == fieldSeriesExemplars
					return nil
				})
			}
		case fieldRequestMetadata:
			if typ != wireBytes {
				return malformed("WriteRequest: wrong wire type %d for metadata", typ)
			}
			var md prompb.MetricMetadata
			if err := md.Unmarshal(v); err != nil {
				return errV1{err}
			}
			b.SetMetadata(md.MetricFamilyName, promseries.Metadata{
				Type: metricType(md.Type.String()), Help: md.Help, Unit: md.Unit,
			})
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	if err := checkSeriesCount(d.lim, series); err != nil {
		return c, err
	}
	d.chk.lim = d.lim
	p := newPending(hasExemplars)
	i := 0
	err = eachField(raw, "WriteRequest", func(num int32, _ int, v []byte) error {
		if num != fieldRequestTimeseries {
			return nil
		}
		if err := d.series(b, v, &c, p); err != nil {
			return fmt.Errorf("timeseries %d: %w", i, err)
		}
		i++
		return nil
	})
	if err != nil {
		return c, err
	}
	p.flush(b, &c)
	return c, nil
}

// series adds one TimeSeries message.
func (d *v1Decoder) series(b *promseries.Builder, msg []byte, c *counts, p *pending) error {
	d.sb.Reset()
	d.chk.reset()
	d.samples, d.other, d.kinds = d.samples[:0], d.other[:0], d.kinds[:0]
	if err := d.bud.charge(costSeries); err != nil {
		return err
	}
	err := eachField(msg, "TimeSeries", func(num int32, typ int, v []byte) error {
		if num < fieldSeriesLabels || num > fieldSeriesHistograms {
			return nil
		}
		if typ != wireBytes {
			return malformed("TimeSeries: wrong wire type %d for field %d", typ, num)
		}
		switch num {
		case fieldSeriesLabels:
			name, value, err := label(v)
			if err != nil {
				return err
			}
			// Checked before it is kept, so a series of a million
			// labels is refused after label_limit of them.
			if err := d.chk.label(name, value, d.seen); err != nil {
				return err
			}
			if err := d.bud.charge(costLabel + int64(len(name)+len(value))); err != nil {
				return err
			}
			d.sb.Add(name, value)
		case fieldSeriesSamples:
			v, t, err := sample(v)
			if err != nil {
				return err
			}
			if err := d.bud.charge(costSampleRead); err != nil {
				return err
			}
			d.samples = append(d.samples, rawSample{v: v, t: t})
		default:
			if err := d.bud.charge(costPoint + costMessageByte*int64(len(v))); err != nil {
				return err
			}
			d.other = append(d.other, v)
			d.kinds = append(d.kinds, num)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.sb.Sort()
	ls := d.sb.Labels()
	var hs []prompb.Histogram
	var exs []prompb.Exemplar
	for i, v := range d.other {
		if d.kinds[i] == fieldSeriesHistograms {
			var h prompb.Histogram
			if err := h.Unmarshal(v); err != nil {
				return errV1{err}
			}
			hs = append(hs, h)
		} else {
			var e prompb.Exemplar
			if err := e.Unmarshal(v); err != nil {
				return errV1{err}
			}
			exs = append(exs, e)
		}
	}
	if err := checkSeries(ls); err != nil {
		return err
	}
	if err := d.bud.charge(int64(len(d.samples)) * (costPoint + costPointLabel*int64(ls.Len()))); err != nil {
		return err
	}
	for _, s := range d.samples {
		p.add(b, c, ls, s.t, s.v, 0)
	}
	for _, h := range hs {
		if err := addHistogram(b, ls, &v1Histogram{h}, c, p, d.bud); err != nil {
			return err
		}
	}
	for _, e := range exs {
		p.ex = append(p.ex, pendingExemplar{ls: ls, e: exemplar.Exemplar{
			Labels: e.ToExemplar(&d.sb, nil).Labels, Value: e.Value, Ts: e.Timestamp, HasTs: true,
		}})
	}
	return nil
}

// seen renders the labels of the current series read so far.
func (d *v1Decoder) seen() string {
	d.sb.Sort()
	return cutLabels(d.sb.Labels(), true)
}

// label reads a Label message. The strings view msg: they are only used
// until the series' labels are built, which copies them.
func label(msg []byte) (name, value string, err error) {
	err = eachField(msg, "Label", func(num int32, typ int, v []byte) error {
		if num != fieldLabelName && num != fieldLabelValue {
			return nil
		}
		if typ != wireBytes {
			return malformed("Label: wrong wire type %d for field %d", typ, num)
		}
		s := unsafe.String(unsafe.SliceData(v), len(v))
		if num == fieldLabelName {
			name = s
		} else {
			value = s
		}
		return nil
	})
	return name, value, err
}

// sample reads a Sample message.
func sample(msg []byte) (v float64, t int64, err error) {
	err = eachField(msg, "Sample", func(num int32, typ int, f []byte) error {
		switch num {
		case fieldSampleValue:
			if typ != wireFixed64 {
				return malformed("Sample: wrong wire type %d for value", typ)
			}
			v = math.Float64frombits(binary.LittleEndian.Uint64(f))
		case fieldSampleTimestamp:
			if typ != wireVarint {
				return malformed("Sample: wrong wire type %d for timestamp", typ)
			}
			n, _ := uvarint(f)
			t = int64(n)
		}
		return nil
	})
	return v, t, err
}

// Wire types (protobuf encoding).
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

// eachField calls fn with each field of a message in wire order: its number,
// wire type and value (a length-delimited field's content, or the raw bytes
// of a varint, fixed or group value). Unknown fields are passed on too, for
// fn to ignore. What is malformed is what prompb's generated decoder
// refuses, no more and no less (FuzzDecodeV1 holds the two side by side):
// field number 0, an end-group marker outside a group, a wire type 6 or 7,
// and anything cut short.
func eachField(msg []byte, what string, fn func(num int32, typ int, v []byte) error) error {
	for i := 0; i < len(msg); {
		tag, n := uvarint(msg[i:])
		if n < 0 {
			return malformed("%s: tag cut short", what)
		}
		i += n
		// As prompb: the field number is the tag's bits above the wire
		// type, truncated to 32 bits.
		num, typ := int32(tag>>3), int(tag&7)
		if typ == wireEndGroup {
			return malformed("%s: end group without a group", what)
		}
		if num <= 0 {
			return malformed("%s: illegal field number %d", what, num)
		}
		start, end := i, -1
		if typ == wireStartGroup {
			if n := skipGroup(msg[i:]); n >= 0 {
				end = i + n
			}
		} else {
			start, end = fieldValue(msg, i, typ)
		}
		if end < 0 {
			switch typ {
			case wireVarint, wireFixed64, wireFixed32:
				return malformed("%s: field %d: %s cut short", what, num, wireNames[typ])
			case wireBytes:
				return malformed("%s: field %d: length beyond the message", what, num)
			case wireStartGroup:
				return malformed("%s: field %d: group cut short", what, num)
			}
			return malformed("%s: field %d: illegal wire type %d", what, num, typ)
		}
		i = end
		if err := fn(num, typ, msg[start:i]); err != nil {
			return err
		}
	}
	return nil
}

var wireNames = map[int]string{wireVarint: "varint", wireFixed64: "fixed64", wireFixed32: "fixed32"}

// fieldValue finds the value of a field of wire type typ (not a group) that
// starts at msg[i]: where its content starts (after a length prefix) and
// where it ends; end is -1 when msg ends first or typ is no wire type.
func fieldValue(msg []byte, i, typ int) (start, end int) {
	switch typ {
	case wireVarint:
		if _, n := uvarint(msg[i:]); n >= 0 {
			return i, i + n
		}
	case wireFixed64:
		if len(msg)-i >= 8 {
			return i, i + 8
		}
	case wireFixed32:
		if len(msg)-i >= 4 {
			return i, i + 4
		}
	case wireBytes:
		l, n := uvarint(msg[i:])
		if n >= 0 && l <= uint64(len(msg)-i-n) {
			return i + n, i + n + int(l)
		}
	}
	return i, -1
}

// uvarint reads a varint of at most ten bytes (extra high bits dropped, as
// prompb does); n < 0 when msg ends first.
func uvarint(msg []byte) (v uint64, n int) {
	for i := 0; i < len(msg) && i < 10; i++ {
		c := msg[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// skipGroup skips the rest of a (long deprecated) group after its start tag
// and returns the bytes it took, or -1. Nested groups are counted; end tags
// are not matched to their start, as prompb does not.
func skipGroup(msg []byte) int {
	depth := 1
	for i := 0; i < len(msg); {
		tag, n := uvarint(msg[i:])
		if n < 0 {
			return -1
		}
		i += n
		switch typ := int(tag & 7); typ {
		case wireStartGroup:
			depth++
		case wireEndGroup:
			depth--
		default:
			if _, i = fieldValue(msg, i, typ); i < 0 {
				return -1
			}
		}
		if depth == 0 {
			return i
		}
	}
	return -1
}

// isMalformed reports whether err says the request did not decode.
func isMalformed(err error) bool {
	var e errV1
	return errors.As(err, &e)
}
