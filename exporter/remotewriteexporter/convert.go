package remotewriteexporter

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/sluicehq/sluice/internal/promseries"
)

// The sender decodes a queued request only when it must change it: to send
// a 2.0 request as 1.0 after the backend refused 2.0, or to drop samples
// older than max_sample_age. Everything else goes out as it was queued.

// decoded is a request in either message.
type decoded struct {
	v1 *prompb.WriteRequest
	v2 *writev2.Request
}

func decodeBody(h recordHeader, body []byte) (decoded, error) {
	raw, err := s2.Decode(nil, body)
	if err != nil {
		return decoded{}, fmt.Errorf("snappy: %w", err)
	}
	if h.message == 2 {
		req := &writev2.Request{}
		if err := req.Unmarshal(raw); err != nil {
			return decoded{}, fmt.Errorf("%s: %w", MessageV2, err)
		}
		return decoded{v2: req}, nil
	}
	req := &prompb.WriteRequest{}
	if err := req.Unmarshal(raw); err != nil {
		return decoded{}, fmt.Errorf("%s: %w", MessageV1, err)
	}
	return decoded{v1: req}, nil
}

// toV1 turns a 2.0 request into the 1.0 request carrying the same series,
// samples, native histograms and exemplars, and metadata per family. Start
// timestamps have no place in 1.0 and are left out.
func toV1(req *writev2.Request) (*prompb.WriteRequest, error) {
	out := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, len(req.Timeseries))}
	var sb labels.ScratchBuilder
	seen := map[string]bool{}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		ls, err := ts.ToLabels(&sb, req.Symbols)
		if err != nil {
			return nil, fmt.Errorf("series %d: %w", i, err)
		}
		o := prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)}
		for _, s := range ts.Samples {
			o.Samples = append(o.Samples, prompb.Sample{Value: s.Value, Timestamp: s.Timestamp})
		}
		for _, h := range ts.Histograms {
			if h.IsFloatHistogram() {
				o.Histograms = append(o.Histograms, prompb.FromFloatHistogram(h.Timestamp, h.ToFloatHistogram()))
			} else {
				o.Histograms = append(o.Histograms, prompb.FromIntHistogram(h.Timestamp, h.ToIntHistogram()))
			}
		}
		for _, e := range ts.Exemplars {
			ex, err := e.ToExemplar(&sb, req.Symbols)
			if err != nil {
				return nil, fmt.Errorf("series %d exemplar: %w", i, err)
			}
			o.Exemplars = append(o.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(ex.Labels, nil), Value: ex.Value, Timestamp: ex.Ts})
		}
		out.Timeseries = append(out.Timeseries, o)
		md, err := ts.ToMetadata(req.Symbols)
		if err != nil {
			return nil, fmt.Errorf("series %d metadata: %w", i, err)
		}
		if md.Type == "" || md.Type == model.MetricTypeUnknown {
			continue
		}
		family := promseries.FamilyName(ls.Get(model.MetricNameLabel), md.Type)
		if seen[family] {
			continue
		}
		seen[family] = true
		out.Metadata = append(out.Metadata, prompb.MetricMetadata{
			Type: prompb.FromMetadataType(md.Type), MetricFamilyName: family, Help: md.Help, Unit: md.Unit,
		})
	}
	return out, nil
}

// dropOlder removes samples, histograms and exemplars older than cutoff
// (ms) and the series left empty; it returns what it removed.
func (d decoded) dropOlder(cutoff int64) (samples, histograms, exemplars int64) {
	if d.v1 != nil {
		kept := d.v1.Timeseries[:0]
		for _, ts := range d.v1.Timeseries {
			n := len(ts.Samples)
			ts.Samples = keep(ts.Samples, func(s prompb.Sample) bool { return s.Timestamp >= cutoff })
			samples += int64(n - len(ts.Samples))
			n = len(ts.Histograms)
			ts.Histograms = keep(ts.Histograms, func(h prompb.Histogram) bool { return h.Timestamp >= cutoff })
			histograms += int64(n - len(ts.Histograms))
			n = len(ts.Exemplars)
			ts.Exemplars = keep(ts.Exemplars, func(e prompb.Exemplar) bool { return e.Timestamp >= cutoff })
			exemplars += int64(n - len(ts.Exemplars))
			if len(ts.Samples)+len(ts.Histograms) > 0 {
				kept = append(kept, ts)
			} else {
				exemplars += int64(len(ts.Exemplars))
			}
		}
		d.v1.Timeseries = kept
		// Metadata goes with the families that still have series.
		names := map[string]bool{}
		for _, ts := range kept {
			for _, l := range ts.Labels {
				if l.Name == model.MetricNameLabel {
					names[l.Value] = true
				}
			}
		}
		d.v1.Metadata = keep(d.v1.Metadata, func(m prompb.MetricMetadata) bool {
			for _, suffix := range []string{"", "_bucket", "_sum", "_count", "_total", "_created", "_info"} {
				if names[m.MetricFamilyName+suffix] {
					return true
				}
			}
			return false
		})
		return
	}
	kept := d.v2.Timeseries[:0]
	for _, ts := range d.v2.Timeseries {
		n := len(ts.Samples)
		ts.Samples = keep(ts.Samples, func(s writev2.Sample) bool { return s.Timestamp >= cutoff })
		samples += int64(n - len(ts.Samples))
		n = len(ts.Histograms)
		ts.Histograms = keep(ts.Histograms, func(h writev2.Histogram) bool { return h.Timestamp >= cutoff })
		histograms += int64(n - len(ts.Histograms))
		n = len(ts.Exemplars)
		ts.Exemplars = keep(ts.Exemplars, func(e writev2.Exemplar) bool { return e.Timestamp >= cutoff })
		exemplars += int64(n - len(ts.Exemplars))
		if len(ts.Samples)+len(ts.Histograms) > 0 {
			kept = append(kept, ts)
		} else {
			exemplars += int64(len(ts.Exemplars))
		}
	}
	d.v2.Timeseries = kept
	return
}

func keep[T any](s []T, ok func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out
}

// encode marshals the request into a snappy body and its header.
func (d decoded) encode() (recordHeader, []byte, error) {
	var h recordHeader
	var raw []byte
	var err error
	first := true
	see := func(t int64) {
		if first || t < h.minT {
			h.minT = t
		}
		if first || t > h.maxT {
			h.maxT = t
		}
		first = false
	}
	if d.v1 != nil {
		h.message = 1
		for _, ts := range d.v1.Timeseries {
			for _, s := range ts.Samples {
				see(s.Timestamp)
			}
			for _, x := range ts.Histograms {
				see(x.Timestamp)
			}
			h.samples += int64(len(ts.Samples))
			h.histograms += int64(len(ts.Histograms))
			h.exemplars += int64(len(ts.Exemplars))
		}
		raw, err = d.v1.Marshal()
	} else {
		h.message = 2
		for _, ts := range d.v2.Timeseries {
			for _, s := range ts.Samples {
				see(s.Timestamp)
			}
			for _, x := range ts.Histograms {
				see(x.Timestamp)
			}
			h.samples += int64(len(ts.Samples))
			h.histograms += int64(len(ts.Histograms))
			h.exemplars += int64(len(ts.Exemplars))
		}
		raw, err = d.v2.Marshal()
	}
	if err != nil {
		return h, nil, err
	}
	return h, appendSnappy(nil, raw), nil
}
