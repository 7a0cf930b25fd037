package scrapeloop

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
)

// maxAheadTime: samples further in the future are dropped (and counted), as
// Prometheus does.
const maxAheadTime = 10 * time.Minute

var (
	errSampleLimit = errors.New("sample limit exceeded")
	errBucketLimit = errors.New("histogram bucket limit exceeded")
)

// passResult is what an append pass counted, for the report series.
type passResult struct {
	total, added, seriesAdded int
	outOfBounds, duplicates   int
}

// appendBody parses one scrape's body straight into app, with Prometheus'
// rules: metadata, honor_timestamps, the limits, duplicates, exemplars,
// created timestamps; and it marks in the state which series it appended.
// It does not write stale markers nor end the pass (see loop.scrapeAndReport).
func (l *loop) appendBody(app storage.AppenderV2, body []byte, contentType string, defTime int64) (res passResult, err error) {
	p, perr := textparse.New(body, contentType, nil, l.parserOpts)
	if p == nil {
		l.log.Error("Failed to determine correct type of scrape target.", "content_type", contentType, "fallback_media_type", l.parserOpts.FallbackContentType, "err", perr)
		return res, perr
	}
	text := plainSeries(p, l.parserOpts)
	var (
		curType                        model.MetricType
		sampleLimitErr, bucketLimitErr error
		lastMeta                       *metaEntry
		e                              exemplar.Exemplar
		samples                        int
		maxTime                        = time.Now().Add(maxAheadTime).UnixMilli()
	)
	exemplars := l.exemplars[:0]
	defer func() { l.exemplars = exemplars[:0] }()
	for {
		var et textparse.Entry
		if et, err = p.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			break
		}
		isHistogram := false
		switch et {
		case textparse.EntryType:
			name, typ := p.Type()
			lastMeta, curType = l.meta.setType(name, typ, l.iter), typ
			continue
		case textparse.EntryHelp:
			name, help := p.Help()
			lastMeta = l.meta.setHelp(name, help, l.iter)
			continue
		case textparse.EntryUnit:
			name, unit := p.Unit()
			lastMeta = l.meta.setUnit(name, unit, l.iter)
			continue
		case textparse.EntryComment:
			continue
		case textparse.EntryHistogram:
			isHistogram = true
		}
		res.total++

		var (
			met []byte
			tsp *int64
			v   float64
			h   *histogram.Histogram
			fh  *histogram.FloatHistogram
		)
		if isHistogram {
			met, tsp, h, fh = p.Histogram()
		} else {
			met, tsp, v = p.Series()
		}
		if !l.honorTimestamps {
			tsp = nil
		}
		t := defTime
		if tsp != nil {
			t = *tsp
		}
		ls, keep, lerr := l.labels.of(p, met, text, curType)
		if !keep {
			continue
		}
		if lerr != nil {
			err = lerr
			break
		}
		hash := ls.Hash()
		i := l.state.slot(hash)
		known := l.state.flags[i]&fKnown != 0
		if known {
			if l.state.flags[i]&fSeen != 0 && tsp == nil {
				res.duplicates++
				res.added++
				continue
			}
			l.state.flags[i] |= fSeen
		}
		if isHistogram && h == nil && fh == nil {
			err = fmt.Errorf("parser returned nil histogram/float histogram for a histogram entry type for %v series; parser bug; aborting", ls.String())
			break
		}
		var st int64
		if l.parseST {
			st = p.StartTimestamp()
		}
		opts := storage.AOptions{}
		exemplars = exemplars[:0]
		for p.Exemplar(&e) {
			if !e.HasTs {
				if isHistogram {
					// Prometheus drops native histogram exemplars without a
					// timestamp.
					e = exemplar.Exemplar{}
					continue
				}
				e.Ts = t
			}
			exemplars = append(exemplars, e)
			e = exemplar.Exemplar{}
		}
		if len(exemplars) > 0 {
			slices.SortFunc(exemplars, exemplar.Compare)
			opts.Exemplars = exemplars
		}
		if lastMeta != nil && !partOfFamily(ls.Get(model.MetricNameLabel), lastMeta.family, lastMeta.Type) {
			lastMeta = nil // a series outside the family last described: no metadata, now nor for the next line
		}
		if lastMeta != nil {
			opts.MetricFamilyName, opts.Metadata = lastMeta.family, lastMeta.Metadata
		}

		aerr := l.limited(app, ls, st, t, v, h, fh, opts, &samples, maxTime)
		added := false
		switch {
		case aerr == nil:
			added = true
		case errors.Is(aerr, errSampleLimit):
			sampleLimitErr = aerr
		case errors.Is(aerr, errBucketLimit):
			bucketLimitErr = aerr
		case errors.Is(aerr, storage.ErrOutOfBounds):
			res.outOfBounds++
		default:
			err = aerr
		}
		if err != nil {
			break
		}
		if added {
			if !known {
				l.state.flags[i] |= fKnown | fSeen
				if sampleLimitErr == nil && bucketLimitErr == nil {
					res.seriesAdded++
				}
			}
			if tsp == nil || l.trackTimestampsStaleness {
				l.state.flags[i] |= fCurTracked
			}
		}
		res.added++
	}
	if sampleLimitErr != nil {
		if err == nil {
			err = sampleLimitErr
		}
	}
	if bucketLimitErr != nil {
		if err == nil {
			err = bucketLimitErr
		}
	}
	if res.duplicates > 0 {
		l.log.Warn("Error on ingesting samples with different value but same timestamp", "num_dropped", res.duplicates)
	}
	if res.outOfBounds > 0 {
		l.log.Warn("Error on ingesting samples that are too old or are too far into the future", "num_dropped", res.outOfBounds)
	}
	return res, err
}

// limited appends one sample through the limits, in Prometheus' order: the
// schema cap and bucket limit of native histograms (reducing resolution
// where it can), then sample_limit (samples counted whether or not the last
// check passes), then the time bound.
func (l *loop) limited(app storage.AppenderV2, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions, samples *int, maxTime int64) error {
	if h != nil || fh != nil {
		if err := l.fitHistogram(h, fh); err != nil {
			return err
		}
	}
	if l.sampleLimit > 0 {
		*samples++
		if *samples > l.sampleLimit {
			return errSampleLimit
		}
	}
	if t > maxTime {
		return storage.ErrOutOfBounds
	}
	_, err := app.Append(0, ls, st, t, v, h, fh, opts)
	return err
}

func (l *loop) fitHistogram(h *histogram.Histogram, fh *histogram.FloatHistogram) error {
	if h != nil {
		if histogram.IsExponentialSchemaReserved(h.Schema) && h.Schema > l.maxSchema {
			if err := h.ReduceResolution(l.maxSchema); err != nil {
				return err
			}
		}
		if l.bucketLimit > 0 {
			if len(h.PositiveBuckets)+len(h.NegativeBuckets) > l.bucketLimit && !histogram.IsExponentialSchema(h.Schema) {
				return errBucketLimit
			}
			for len(h.PositiveBuckets)+len(h.NegativeBuckets) > l.bucketLimit {
				if h.Schema <= histogram.ExponentialSchemaMin {
					return errBucketLimit
				}
				if err := h.ReduceResolution(h.Schema - 1); err != nil {
					return err
				}
			}
		}
	}
	if fh != nil {
		if histogram.IsExponentialSchemaReserved(fh.Schema) && fh.Schema > l.maxSchema {
			if err := fh.ReduceResolution(l.maxSchema); err != nil {
				return err
			}
		}
		if l.bucketLimit > 0 {
			if len(fh.PositiveBuckets)+len(fh.NegativeBuckets) > l.bucketLimit && !histogram.IsExponentialSchema(fh.Schema) {
				return errBucketLimit
			}
			for len(fh.PositiveBuckets)+len(fh.NegativeBuckets) > l.bucketLimit {
				if fh.Schema <= histogram.ExponentialSchemaMin {
					return errBucketLimit
				}
				if err := fh.ReduceResolution(fh.Schema - 1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var staleNaN = math.Float64frombits(value.StaleNaN)

// staleMarkers writes a stale marker at t for every series the previous pass
// appended and tracked that this pass did not append. Their labels are not
// kept: the previous pass's body is parsed again, and only then, with the
// same labelling, to find them.
func (l *loop) staleMarkers(app storage.AppenderV2, t int64) {
	if l.prev.size == 0 || !l.state.stale() {
		return
	}
	prev := l.unpackPrev()
	if prev == nil {
		return
	}
	// The markers' labels are copies (labels.New, the parser's builder):
	// nothing appended points into prev.
	defer l.buffers.put(prev)
	p, _ := textparse.New(prev, l.prev.contentType, nil, l.parserOpts)
	if p == nil {
		return
	}
	text := plainSeries(p, l.parserOpts)
	var curType model.MetricType
	for {
		et, err := p.Next()
		if err != nil {
			return // io.EOF, or the error the pass that read it ended at
		}
		var met []byte
		switch et {
		case textparse.EntryType:
			_, curType = p.Type()
			continue
		case textparse.EntrySeries:
			met, _, _ = p.Series()
		case textparse.EntryHistogram:
			met, _, _, _ = p.Histogram()
		default:
			continue
		}
		ls, keep, err := l.labels.of(p, met, text, curType)
		if !keep || err != nil {
			continue
		}
		if l.state.staleDue(ls.Hash()) {
			_, _ = app.Append(0, ls, 0, t, staleNaN, nil, nil, storage.AOptions{RejectOutOfOrder: true})
		}
	}
}
