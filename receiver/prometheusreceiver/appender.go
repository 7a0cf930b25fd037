package prometheusreceiver

import (
	"context"
	"math"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/scrape"
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
	tel   *telemetry
	jobs  *targetJobs
}

func (a *appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &appender{ctx: ctx, app: a, b: promseries.NewBuilder(a.scope)}
}

type appender struct {
	ctx        context.Context
	app        *appendable
	b          *promseries.Builder
	lastFamily string

	// From the scrape loop's report series, which it appends after the
	// scrape's own: whether this is a scrape (not only the stale markers
	// of a target that went away) and how many samples it exposed.
	reported bool
	samples  int
}

// The report series' family names: Prometheus suffixes them with an
// invalid rune so that no scraped family can have the same name.
const (
	reportUp      = "up\xff"
	reportSamples = "scrape_samples_scraped\xff"
)

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
	switch opts.MetricFamilyName {
	case reportUp:
		a.reported = !value.IsStaleNaN(v)
	case reportSamples:
		if !math.IsNaN(v) {
			a.samples = int(v)
		}
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
// The scrape loop reports the scrape to its target before it commits, so
// the target's last scrape is this one.
func (a *appender) Commit() error {
	md := a.b.Metrics()
	if md.DataPointCount() == 0 {
		return nil
	}
	err := a.app.tel.consume(a.ctx, a.app.next, md)
	if t, ok := scrape.TargetFromContext(a.ctx); ok && a.reported {
		a.app.tel.scraped(a.ctx, scrapeFacts{
			job: a.app.jobs.of(t), duration: t.LastScrapeDuration(), samples: a.samples,
			err: t.LastError(), refused: err,
		})
	}
	return err
}

func (a *appender) Rollback() error {
	a.b.Metrics() // discard
	a.reported, a.samples = false, 0
	return nil
}
