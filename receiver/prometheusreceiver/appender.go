package prometheusreceiver

import (
	"context"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/consumer"

	"github.com/sluicehq/sluice/internal/promseries"
)

// appendable is where the scrape manager stores what it scraped: each scrape
// of each target gets an appender, whose Commit sends that scrape as one
// batch of pdata down the pipeline.
type appendable struct {
	next  consumer.Metrics
	scope string
}

func (a *appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &appender{ctx: ctx, next: a.next, b: promseries.NewBuilder(a.scope)}
}

type appender struct {
	ctx        context.Context
	next       consumer.Metrics
	b          *promseries.Builder
	lastFamily string
}

// Append records one sample with its metadata; nothing leaves before Commit.
func (a *appender) Append(_ storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	// Prometheus' loop names its report series' families "up\xff" and so on
	// (its cache keys); the family is "up".
	if fam := strings.TrimSuffix(opts.MetricFamilyName, "\xff"); fam != "" && fam != a.lastFamily && !opts.Metadata.IsEmpty() {
		// Prometheus' loop hands the family name as a view of its read
		// buffer, which goes back to its pool before Commit: copy it.
		fam = strings.Clone(fam)
		a.b.SetMetadata(fam, promseries.Metadata{Type: opts.Metadata.Type, Help: opts.Metadata.Help, Unit: opts.Metadata.Unit})
		a.lastFamily = fam
	}
	if h != nil || fh != nil {
		a.b.AddHistogram(ls, t, h, fh, st)
	} else {
		a.b.Add(ls, t, v, st)
	}
	for _, e := range opts.Exemplars {
		a.b.AddExemplar(ls, t, e)
	}
	// The scrape loop caches this per series; any stable non-zero value does.
	return storage.SeriesRef(ls.Hash() | 1), nil
}

// Commit sends the scrape down the pipeline; an error (a full queue, the
// memory limiter) reaches the scrape loop, which logs it for this target.
func (a *appender) Commit() error {
	md := a.b.Metrics()
	if md.DataPointCount() == 0 {
		return nil
	}
	return a.next.ConsumeMetrics(a.ctx, md)
}

func (a *appender) Rollback() error {
	a.b.Metrics() // discard
	return nil
}
