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
	body    []byte // the encoded timeseries fields
	meta    []byte // v1: the encoded metadata fields
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
	raw  []byte
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
	size := 0
	for _, l := range ls {
		size += 1 + protowire.SizeBytes(labelSizeV1(l))
	}
	if s.H == nil {
		size += 1 + protowire.SizeBytes(sampleSizeV1(s.V, s.T))
	}
	for i := range ts.Exemplars {
		size += 1 + protowire.SizeBytes(ts.Exemplars[i].Size())
	}
	for i := range ts.Histograms {
		size += 1 + protowire.SizeBytes(ts.Histograms[i].Size())
	}
	body := append(b.body, 0x0a) // WriteRequest.timeseries
	body = appendVarint(body, size)
	for _, l := range ls {
		body = append(body, 0x0a) // TimeSeries.labels
		body = appendVarint(body, labelSizeV1(l))
		if l.Name != "" {
			body = append(body, 0x0a) // Label.name
			body = appendVarint(body, len(l.Name))
			body = append(body, l.Name...)
		}
		if l.Value != "" {
			body = append(body, 0x12) // Label.value
			body = appendVarint(body, len(l.Value))
			body = append(body, l.Value...)
		}
	}
	if s.H == nil {
		body = append(body, 0x12) // TimeSeries.samples
		body = appendVarint(body, sampleSizeV1(s.V, s.T))
		if s.V != 0 {
			body = append(body, 0x09) // Sample.value, fixed64
			body = binary.LittleEndian.AppendUint64(body, math.Float64bits(s.V))
		}
		if s.T != 0 {
			body = append(body, 0x10) // Sample.timestamp, varint
			body = protowire.AppendVarint(body, uint64(s.T))
		}
	}
	for i := range ts.Exemplars {
		body = appendMessage(body, 3, &ts.Exemplars[i])
	}
	for i := range ts.Histograms {
		body = appendMessage(body, 4, &ts.Histograms[i])
	}
	b.body = body
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

// appendVarint appends a non-negative size as a protobuf varint; sizes of
// labels and samples are nearly always below 128.
func appendVarint(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return protowire.AppendVarint(b, uint64(n))
}

// labelSizeV1 is the encoded size of a prometheus.Label.
func labelSizeV1(l labels.Label) int {
	n := 0
	if l.Name != "" {
		n += 1 + protowire.SizeBytes(len(l.Name))
	}
	if l.Value != "" {
		n += 1 + protowire.SizeBytes(len(l.Value))
	}
	return n
}

// sampleSizeV1 is the encoded size of a prometheus.Sample.
func sampleSizeV1(v float64, t int64) int {
	n := 0
	if v != 0 {
		n += 1 + 8
	}
	if t != 0 {
		n += 1 + protowire.SizeVarint(uint64(t))
	}
	return n
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
	var md writev2.Metadata
	if m := s.Meta; m.Type != "" {
		md.Type = writev2.FromMetadataType(m.Type)
		md.HelpRef = b.syms.ref(m.Help)
		md.UnitRef = b.syms.ref(m.Unit)
	}

	refsSize := 0
	for _, r := range ts.LabelsRefs {
		refsSize += protowire.SizeVarint(uint64(r))
	}
	size := 0
	if len(ts.LabelsRefs) > 0 {
		size += 1 + protowire.SizeBytes(refsSize)
	}
	if s.H == nil {
		size += 1 + protowire.SizeBytes(sampleSizeV2(s.V, s.T, s.StartT))
	}
	for i := range ts.Histograms {
		size += 1 + protowire.SizeBytes(ts.Histograms[i].Size())
	}
	for i := range ts.Exemplars {
		size += 1 + protowire.SizeBytes(ts.Exemplars[i].Size())
	}
	size += 1 + protowire.SizeBytes(metadataSizeV2(md)) // always present

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
		body = appendVarint(body, sampleSizeV2(s.V, s.T, s.StartT))
		if s.V != 0 {
			body = append(body, 0x09) // Sample.value, fixed64
			body = binary.LittleEndian.AppendUint64(body, math.Float64bits(s.V))
		}
		if s.T != 0 {
			body = append(body, 0x10) // Sample.timestamp
			body = protowire.AppendVarint(body, uint64(s.T))
		}
		if s.StartT != 0 {
			body = append(body, 0x18) // Sample.start_timestamp
			body = protowire.AppendVarint(body, uint64(s.StartT))
		}
	}
	for i := range ts.Histograms {
		body = appendMessage(body, 3, &ts.Histograms[i])
	}
	for i := range ts.Exemplars {
		body = appendMessage(body, 4, &ts.Exemplars[i])
	}
	body = append(body, 0x2a) // TimeSeries.metadata
	body = appendVarint(body, metadataSizeV2(md))
	if md.Type != 0 {
		body = append(body, 0x08)
		body = protowire.AppendVarint(body, uint64(md.Type))
	}
	if md.HelpRef != 0 {
		body = append(body, 0x18)
		body = protowire.AppendVarint(body, uint64(md.HelpRef))
	}
	if md.UnitRef != 0 {
		body = append(body, 0x20)
		body = protowire.AppendVarint(body, uint64(md.UnitRef))
	}
	b.body = body
}

// sampleSizeV2 is the encoded size of an io.prometheus.write.v2.Sample.
func sampleSizeV2(v float64, t, startT int64) int {
	n := sampleSizeV1(v, t)
	if startT != 0 {
		n += 1 + protowire.SizeVarint(uint64(startT))
	}
	return n
}

// metadataSizeV2 is the encoded size of an io.prometheus.write.v2.Metadata.
func metadataSizeV2(md writev2.Metadata) int {
	n := 0
	if md.Type != 0 {
		n += 1 + protowire.SizeVarint(uint64(md.Type))
	}
	if md.HelpRef != 0 {
		n += 1 + protowire.SizeVarint(uint64(md.HelpRef))
	}
	if md.UnitRef != 0 {
		n += 1 + protowire.SizeVarint(uint64(md.UnitRef))
	}
	return n
}

// finish appends the queue record of what was added to dst.
func (b *builder) finish(dst []byte) []byte {
	raw := b.raw[:0]
	if b.v2 {
		for _, s := range b.syms.list {
			raw = protowire.AppendTag(raw, 4, protowire.BytesType)
			raw = protowire.AppendString(raw, s)
		}
	}
	raw = append(raw, b.body...)
	raw = append(raw, b.meta...)
	b.raw = raw
	dst = b.hdr.appendTo(dst)
	return appendSnappy(dst, raw)
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
