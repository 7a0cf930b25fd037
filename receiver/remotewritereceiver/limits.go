package remotewritereceiver

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/sluicehq/sluice/internal/promseries"
)

// limitError is a push over one of the Limits: it is refused as a whole,
// answered with status and counted by key (the YAML key of the limit).
type limitError struct {
	key    string
	status int
	msg    string
}

func (e *limitError) Error() string { return e.msg }

func overLimit(key string, status int, format string, args ...any) error {
	return &limitError{key: key, status: status, msg: fmt.Sprintf(format, args...)}
}

// What a push is estimated to cost once decoded, in bytes, checked against
// max_request_memory as it is decoded (so decoding stops once the estimate
// is over). Measured on this receiver: a sample of a series with L labels
// takes about 100 + 57·L bytes of pdata (every data point carries all of its
// series' labels as attributes); the rest are upper bounds of what the
// protobuf structs of a message take for the bytes it has on the wire.
const (
	costPoint        = 128 // a sample, native histogram sample or exemplar
	costPointLabel   = 64  // per label of the series, for each point
	costDenseBucket  = 8   // a native histogram bucket written densely (uint64)
	costSeries       = 256 // a series' structs, plus its label bytes
	costLabel        = 32  // a label of a series while it is read
	costSampleRead   = 40  // a 1.0 sample while its series is read (rawSample, 16 B; the slice grows by a quarter, and the old array is live while it is copied)
	costMessageByte  = 8   // a histogram or exemplar message parsed by prompb, per byte on the wire
	costV2Sample     = 72  // writev2.Sample (56 B), with slice growth
	costV2Histogram  = 600 // writev2.Histogram, with slice growth
	costV2Exemplar   = 128 // writev2.Exemplar, with slice growth
	costV2LabelRef   = 4   // a uint32 label reference
	costV2SymbolBase = 16  // a string header of the symbol table
)

// budget is one push's share of max_request_memory.
type budget struct {
	limit, used int64 // limit 0: no limit
}

// charge adds n estimated bytes, refusing the push once over the limit.
func (b *budget) charge(n int64) error {
	if b == nil {
		return nil
	}
	b.used += n
	if b.limit > 0 && b.used > b.limit {
		return overLimit("max_request_memory", http.StatusRequestEntityTooLarge,
			"the push would take more than max_request_memory (%d bytes) once decoded (an estimate: %d B per sample, histogram or exemplar plus %d B per label of its series, %d B per native histogram bucket written densely); send smaller pushes",
			b.limit, costPoint, costPointLabel, costDenseBucket)
	}
	return nil
}

// point charges one sample or histogram sample of a series of n labels.
func (b *budget) point(n int) error {
	return b.charge(costPoint + costPointLabel*int64(n))
}

// seriesChecker applies the label limits to one series at a time; the
// labels are given one by one, as they are read.
type seriesChecker struct {
	lim Limits
	n   int
}

func (c *seriesChecker) reset() { c.n = 0 }

// label checks one more label of the series; seen renders the series read
// so far, for the message.
func (c *seriesChecker) label(name, value string, seen func() string) error {
	c.n++
	if c.lim.LabelLimit > 0 && c.n > c.lim.LabelLimit {
		return overLimit("label_limit", http.StatusBadRequest,
			"series %s has more than label_limit (%d) labels", seen(), c.lim.LabelLimit)
	}
	if c.lim.LabelNameLengthLimit > 0 && len(name) > c.lim.LabelNameLengthLimit {
		return overLimit("label_name_length_limit", http.StatusBadRequest,
			"series %s: label name %s is %d bytes long, over label_name_length_limit (%d)",
			seen(), quoteCut(name), len(name), c.lim.LabelNameLengthLimit)
	}
	if c.lim.LabelValueLengthLimit > 0 && len(value) > c.lim.LabelValueLengthLimit {
		return overLimit("label_value_length_limit", http.StatusBadRequest,
			"series %s: the value of label %s is %d bytes long, over label_value_length_limit (%d)",
			seen(), quoteCut(name), len(value), c.lim.LabelValueLengthLimit)
	}
	return nil
}

// checkSeriesCount refuses a push of more than max_series_per_request series.
func checkSeriesCount(lim Limits, n int) error {
	if lim.MaxSeriesPerRequest > 0 && n > lim.MaxSeriesPerRequest {
		return overLimit("max_series_per_request", http.StatusBadRequest,
			"the push holds %d series, over max_series_per_request (%d); send smaller pushes", n, lim.MaxSeriesPerRequest)
	}
	return nil
}

// Rendering limits for messages: a refused series is shown cut short, so
// that an 8 MiB label value is not echoed back (or logged) whole.
const (
	cutString = 64
	cutSeries = 256
)

// quoteCut quotes s, cut to cutString bytes.
func quoteCut(s string) string {
	if len(s) <= cutString {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:cutString]) + fmt.Sprintf("…(%d bytes)", len(s))
}

// seriesString renders labels (name, value pairs) as Prometheus does, each
// string and the whole cut short; more says the series has more labels than
// were read.
func seriesString(pairs func(yield func(name, value string) bool), more bool) string {
	var sb strings.Builder
	sb.WriteByte('{')
	first := true
	for name, value := range pairs {
		if sb.Len() > cutSeries {
			more = true
			break
		}
		if !first {
			sb.WriteString(", ")
		}
		first = false
		if len(name) > cutString {
			name = name[:cutString] + "…"
		}
		sb.WriteString(name)
		sb.WriteByte('=')
		sb.WriteString(quoteCut(value))
	}
	if more && !first {
		sb.WriteString(", …")
	} else if more {
		sb.WriteString("…")
	}
	sb.WriteByte('}')
	return sb.String()
}

// cutLabels renders ls cut short; more says the series has more labels.
func cutLabels(ls labels.Labels, more bool) string {
	return seriesString(func(yield func(string, string) bool) {
		stop := false
		ls.Range(func(l labels.Label) {
			if !stop {
				stop = !yield(l.Name, l.Value)
			}
		})
	}, more)
}

// bucketsWritten is how many buckets a side of a native histogram takes
// once written densely, as pdata holds it: every bucket of its spans and
// every gap between them (an upper bound: a trailing empty span's gap is
// counted too). Gaps in a valid histogram are not negative.
func bucketsWritten(spans []histogram.Span) int64 {
	var n int64
	started := false
	for _, s := range spans {
		if started && s.Offset > 0 {
			n += int64(s.Offset)
		}
		if s.Length > 0 {
			started = true
			n += int64(s.Length)
		}
	}
	return min(n, promseries.MaxDenseBuckets) // wider ones are left out (native_histogram_too_wide)
}
