package remotewriteexporter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluicehq/sluice/internal/promseries"
)

// A queue record is one request, ready to send (ARCHITECTURE.md decision 4):
//
//	[1]  record format (recordFormat)
//	[1]  message: 1 for prometheus.WriteRequest, 2 for io.prometheus.write.v2.Request
//	[8]  oldest sample timestamp, ms, little endian
//	[8]  newest sample timestamp, ms
//	uvarint samples, uvarint histograms, uvarint exemplars
//	the snappy-compressed protobuf body
//
// The header lets the sender count what it delivers and apply max_sample_age
// without decoding the body.
const recordFormat = 1

type recordHeader struct {
	message                        byte
	minT, maxT                     int64
	samples, histograms, exemplars int64
}

func (h recordHeader) appendTo(b []byte) []byte {
	b = append(b, recordFormat, h.message)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.minT))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.maxT))
	b = binary.AppendUvarint(b, uint64(h.samples))
	b = binary.AppendUvarint(b, uint64(h.histograms))
	return binary.AppendUvarint(b, uint64(h.exemplars))
}

// parseRecord splits a queue record into its header and snappy body.
func parseRecord(p []byte) (recordHeader, []byte, error) {
	var h recordHeader
	if len(p) < 18 {
		return h, nil, errors.New("record shorter than its header")
	}
	if p[0] != recordFormat {
		return h, nil, fmt.Errorf("record format %d is unknown to this version", p[0])
	}
	h.message = p[1]
	if h.message != 1 && h.message != 2 {
		return h, nil, fmt.Errorf("record names message %d", h.message)
	}
	h.minT = int64(binary.LittleEndian.Uint64(p[2:]))
	h.maxT = int64(binary.LittleEndian.Uint64(p[10:]))
	p = p[18:]
	for _, dst := range []*int64{&h.samples, &h.histograms, &h.exemplars} {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return h, nil, errors.New("record header counts are damaged")
		}
		*dst, p = int64(v), p[n:]
	}
	return h, p, nil
}

// builder accumulates the series of one request for one shard, encoding
// each as it arrives (the labels Walk hands out are valid only during the
// callback, so nothing of them is kept but bytes and v2 symbols).
type builder struct {
	v2      bool
	hdr     recordHeader
	entries int
	body    []byte // the encoded timeseries fields (1.0: finish appends meta)
	meta    []byte // 1.0: the encoded metadata fields
	seen    map[string]struct{}
	// lastFamily is the family whose metadata was seen last: a family's
	// series arrive together, so most samples skip the lookup in seen.
	lastFamily string

	// Scratch for the series being encoded: its exemplars and native
	// histograms in prompb form (and for 2.0 its label refs); the labels
	// and float sample are written directly.
	ts1  prompb.TimeSeries
	md1  prompb.MetricMetadata
	ts2  writev2.TimeSeries
	syms symbols
	raw  []byte // 2.0: symbols and body, as sent
}

func newBuilder(v2 bool) *builder {
	b := &builder{v2: v2, seen: map[string]struct{}{}}
	b.reset(v2)
	return b
}

func (b *builder) reset(v2 bool) {
	b.v2 = v2
	b.hdr = recordHeader{message: 1}
	if v2 {
		b.hdr.message = 2
	}
	b.entries = 0
	b.body, b.meta = b.body[:0], b.meta[:0]
	clear(b.seen)
	b.lastFamily = ""
	b.syms.reset()
}

// add encodes one sample of the series ls (s.Labels with external labels).
func (b *builder) add(s *promseries.Sample, ls []labels.Label) {
	if b.entries == 0 || s.T < b.hdr.minT {
		b.hdr.minT = s.T
	}
	if b.entries == 0 || s.T > b.hdr.maxT {
		b.hdr.maxT = s.T
	}
	b.entries++
	if s.H != nil {
		b.hdr.histograms++
	} else {
		b.hdr.samples++
	}
	b.hdr.exemplars += int64(len(s.Exemplars))
	if b.v2 {
		b.addV2(s, ls)
	} else {
		b.addV1(s, ls)
	}
}

// addV1 appends the series as a prometheus.TimeSeries. Labels and the float
// sample are written here, byte for byte as prompb's generated code writes
// them (fields in number order, zero values left out), without first
// copying the labels into prompb structs; exemplars and native histograms go
// through prompb.
func (b *builder) addV1(s *promseries.Sample, ls []labels.Label) {
	ts := &b.ts1
	ts.Histograms, ts.Exemplars = ts.Histograms[:0], ts.Exemplars[:0]
	if s.H != nil {
		ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(s.T, s.H))
	}
	for _, e := range s.Exemplars {
		ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{
			Labels: prompb.FromLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts,
		})
	}
	size := messagesSize(ts.Exemplars) + messagesSize(ts.Histograms)
	for _, l := range ls {
		size += 1 + protowire.SizeBytes(labelSize(l))
	}
	if s.H == nil {
		size += 1 + protowire.SizeBytes(sampleSize(s.V, s.T, 0))
	}
	body := append(b.body, 0x0a) // WriteRequest.timeseries
	body = appendVarint(body, size)
	for _, l := range ls {
		body = append(body, 0x0a) // TimeSeries.labels
		body = appendVarint(body, labelSize(l))
		body = appendStringField(body, 0x0a, l.Name)
		body = appendStringField(body, 0x12, l.Value)
	}
	if s.H == nil {
		body = append(body, 0x12) // TimeSeries.samples
		body = appendSample(body, s.V, s.T, 0)
	}
	body = appendMessages(body, 3, ts.Exemplars)
	b.body = appendMessages(body, 4, ts.Histograms)
	if m := s.Meta; m.Type != "" && m.Family != "" && m.Family != b.lastFamily {
		if _, ok := b.seen[m.Family]; !ok {
			b.lastFamily = strings.Clone(m.Family)
			b.seen[b.lastFamily] = struct{}{}
			b.md1 = prompb.MetricMetadata{
				Type: prompb.FromMetadataType(m.Type), MetricFamilyName: m.Family, Help: m.Help, Unit: m.Unit,
			}
			b.meta = appendMessage(b.meta, 3, &b.md1)
		}
	}
}

// addV2 appends the series as an io.prometheus.write.v2.TimeSeries, written
// by hand like addV1 (prompb's generated code allocates a buffer per series
// for the packed label references); histograms and exemplars go through
// prompb.
func (b *builder) addV2(s *promseries.Sample, ls []labels.Label) {
	ts := &b.ts2
	ts.LabelsRefs = ts.LabelsRefs[:0]
	for _, l := range ls {
		ts.LabelsRefs = append(ts.LabelsRefs, b.syms.ref(l.Name), b.syms.ref(l.Value))
	}
	ts.Histograms, ts.Exemplars = ts.Histograms[:0], ts.Exemplars[:0]
	if s.H != nil {
		ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(s.StartT, s.T, s.H))
	}
	for _, e := range s.Exemplars {
		var refs []uint32
		e.Labels.Range(func(l labels.Label) { refs = append(refs, b.syms.ref(l.Name), b.syms.ref(l.Value)) })
		ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: refs, Value: e.Value, Timestamp: e.Ts})
	}
	var typ, help, unit uint64
	if m := s.Meta; m.Type != "" {
		typ = uint64(writev2.FromMetadataType(m.Type))
		help, unit = uint64(b.syms.ref(m.Help)), uint64(b.syms.ref(m.Unit))
	}
	metaSize := varintFieldSize(typ) + varintFieldSize(help) + varintFieldSize(unit)
	refsSize := 0
	for _, r := range ts.LabelsRefs {
		refsSize += protowire.SizeVarint(uint64(r))
	}

	size := messagesSize(ts.Histograms) + messagesSize(ts.Exemplars) + 1 + protowire.SizeBytes(metaSize)
	if len(ts.LabelsRefs) > 0 {
		size += 1 + protowire.SizeBytes(refsSize)
	}
	if s.H == nil {
		size += 1 + protowire.SizeBytes(sampleSize(s.V, s.T, s.StartT))
	}
	body := append(b.body, 0x2a) // Request.timeseries
	body = appendVarint(body, size)
	if len(ts.LabelsRefs) > 0 {
		body = append(body, 0x0a) // TimeSeries.labels_refs, packed
		body = appendVarint(body, refsSize)
		for _, r := range ts.LabelsRefs {
			body = protowire.AppendVarint(body, uint64(r))
		}
	}
	if s.H == nil {
		body = append(body, 0x12) // TimeSeries.samples
		body = appendSample(body, s.V, s.T, s.StartT)
	}
	body = appendMessages(body, 3, ts.Histograms)
	body = appendMessages(body, 4, ts.Exemplars)
	body = append(body, 0x2a) // TimeSeries.metadata, always present
	body = appendVarint(body, metaSize)
	body = appendVarintField(body, 0x08, typ)  // Metadata.type
	body = appendVarintField(body, 0x18, help) // Metadata.help_ref
	b.body = appendVarintField(body, 0x20, unit)
}

// The hand-written fields: as in prompb's generated code, a zero number or
// an empty string is left out.

// appendVarint appends a non-negative size as a protobuf varint; sizes of
// labels and samples are nearly always below 128.
func appendVarint(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return protowire.AppendVarint(b, uint64(n))
}

func varintFieldSize(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

func appendVarintField(b []byte, tag byte, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(append(b, tag), v)
}

func appendStringField(b []byte, tag byte, s string) []byte {
	if s == "" {
		return b
	}
	b = appendVarint(append(b, tag), len(s))
	return append(b, s...)
}

// labelSize is the encoded size of a prometheus.Label.
func labelSize(l labels.Label) int {
	n := 0
	if l.Name != "" {
		n += 1 + protowire.SizeBytes(len(l.Name))
	}
	if l.Value != "" {
		n += 1 + protowire.SizeBytes(len(l.Value))
	}
	return n
}

// sampleSize is the encoded size of a Sample: prometheus.Sample (value,
// timestamp) and io.prometheus.write.v2.Sample (and start timestamp) number
// their fields alike; a 1.0 sample has startT 0, which is left out.
func sampleSize(v float64, t, startT int64) int {
	n := varintFieldSize(uint64(t)) + varintFieldSize(uint64(startT))
	if v != 0 {
		n += 1 + 8
	}
	return n
}

// appendSample appends a Sample's length and fields (see sampleSize).
func appendSample(b []byte, v float64, t, startT int64) []byte {
	b = appendVarint(b, sampleSize(v, t, startT))
	if v != 0 {
		b = append(b, 0x09) // value, fixed64
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b = appendVarintField(b, 0x10, uint64(t))         // timestamp
	return appendVarintField(b, 0x18, uint64(startT)) // start_timestamp (2.0)
}

// message is a prompb message type whose pointer marshals itself.
type message[T any] interface {
	*T
	sizedMarshaler
}

// messagesSize is the encoded size of ms as a repeated message field (with a
// one-byte tag).
func messagesSize[T any, P message[T]](ms []T) int {
	n := 0
	for i := range ms {
		n += 1 + protowire.SizeBytes(P(&ms[i]).Size())
	}
	return n
}

// appendMessages appends ms as the repeated message field number field.
func appendMessages[T any, P message[T]](b []byte, field protowire.Number, ms []T) []byte {
	for i := range ms {
		b = appendMessage(b, field, P(&ms[i]))
	}
	return b
}

// finish appends the queue record of what was added to dst.
func (b *builder) finish(dst []byte) []byte {
	dst = b.hdr.appendTo(dst)
	if !b.v2 { // the metadata follow the series: no copy of the body
		b.body = append(b.body, b.meta...)
		return appendSnappy(dst, b.body)
	}
	raw := b.raw[:0] // the symbols come first, as prompb writes them
	for _, s := range b.syms.list {
		raw = protowire.AppendTag(raw, 4, protowire.BytesType)
		raw = protowire.AppendString(raw, s)
	}
	b.raw = append(raw, b.body...)
	return appendSnappy(dst, b.raw)
}

// appendSnappy appends the snappy block encoding of src (s2's
// snappy-compatible encoder, which is faster than golang/snappy's).
func appendSnappy(dst, src []byte) []byte {
	n := len(dst)
	need := s2.MaxEncodedLen(len(src))
	dst = grow(dst, need)
	enc := s2.EncodeSnappy(dst[n:n+need], src)
	return dst[:n+len(enc)]
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n+len(b)/4)
		copy(nb, b)
		b = nb
	}
	return b
}

// sizedMarshaler is what gogo-protobuf generates for prompb's messages.
type sizedMarshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// appendMessage appends m as the length-delimited field number field.
func appendMessage(b []byte, field protowire.Number, m sizedMarshaler) []byte {
	size := m.Size()
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	n := len(b)
	b = grow(b, size)[:n+size]
	if _, err := m.MarshalToSizedBuffer(b[n:]); err != nil {
		// Only a size that changed between Size and Marshal fails; the
		// message is ours and not shared, so this cannot happen.
		panic("remote_write: marshalling a series: " + err.Error())
	}
	return b
}

// symbols is the v2 symbol table of one request: "" first, as the
// specification requires; strings are copied in, since callers' are
// transient.
type symbols struct {
	list []string
	refs map[string]uint32
}

func (t *symbols) reset() {
	if t.refs == nil {
		t.refs = map[string]uint32{}
	}
	clear(t.refs)
	t.list = append(t.list[:0], "")
	t.refs[""] = 0
}

func (t *symbols) ref(s string) uint32 {
	if r, ok := t.refs[s]; ok {
		return r
	}
	s = strings.Clone(s)
	r := uint32(len(t.list))
	t.list = append(t.list, s)
	t.refs[s] = r
	return r
}
