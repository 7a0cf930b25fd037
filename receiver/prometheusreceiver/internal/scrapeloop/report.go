package scrapeloop

import (
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
)

// The series every scrape adds about itself, with Prometheus' metadata
// (https://prometheus.io/docs/concepts/jobs_instances/); the last three only
// with extra_scrape_metrics.
var reportMeta = []struct {
	name string
	meta metadata.Metadata
}{
	{"up", metadata.Metadata{Type: model.MetricTypeGauge, Help: "Health of the scrape target. 1 means the target is healthy, 0 if the scrape failed.", Unit: "targets"}},
	{"scrape_duration_seconds", metadata.Metadata{Type: model.MetricTypeGauge, Help: "Duration of the last scrape in seconds.", Unit: "seconds"}},
	{"scrape_samples_scraped", metadata.Metadata{Type: model.MetricTypeGauge, Help: "Number of samples last scraped.", Unit: "samples"}},
	{"scrape_samples_post_metric_relabeling", metadata.Metadata{Type: model.MetricTypeGauge, Help: "Number of samples remaining after metric relabeling was applied.", Unit: "samples"}},
	{"scrape_series_added", metadata.Metadata{Type: model.MetricTypeGauge, Help: "Number of series in the last scrape.", Unit: "series"}},
	{"scrape_timeout_seconds", metadata.Metadata{Type: model.MetricTypeGauge, Help: "The configured scrape timeout for a target.", Unit: "seconds"}},
	{"scrape_sample_limit", metadata.Metadata{Type: model.MetricTypeGauge, Help: "The configured sample limit for a target. Returns zero if there is no limit configured.", Unit: "samples"}},
	{"scrape_body_size_bytes", metadata.Metadata{Type: model.MetricTypeGauge, Help: "The uncompressed size of the last scrape response, if successful. Scrapes failing because body_size_limit is exceeded report -1, other scrape failures report 0.", Unit: "bytes"}},
}

const basicReports = 5

// reportSeries holds the labels of a target's report series, built once.
type reportSeries struct {
	ls []labels.Labels
}

func newReportSeries(l *labeler) reportSeries {
	r := reportSeries{ls: make([]labels.Labels, len(reportMeta))}
	for i, m := range reportMeta {
		r.ls[i] = l.reportLabels(m.name)
	}
	return r
}

func (r reportSeries) append(app storage.AppenderV2, i int, t int64, v float64, rejectOOO bool) {
	_, _ = app.Append(0, r.ls[i], 0, t, v, nil, nil, storage.AOptions{
		// Named as Prometheus' loop names them (its cache keys), so that an
		// appender tells them from scraped families alike for both loops.
		MetricFamilyName: reportMeta[i].name + "\xff",
		Metadata:         reportMeta[i].meta,
		RejectOutOfOrder: rejectOOO,
	})
}

// add appends the report of one scrape at t.
func (r reportSeries) add(app storage.AppenderV2, t int64, dur time.Duration, res passResult, bytesRead int, scrapeErr error, l *loop) {
	health := 0.0
	if scrapeErr == nil {
		health = 1
	}
	vals := []float64{health, dur.Seconds(), float64(res.total), float64(res.added), float64(res.seriesAdded),
		l.timeout.Seconds(), float64(l.sampleLimit), float64(bytesRead)}
	n := basicReports
	if l.extraMetrics {
		n = len(vals)
	}
	for i := 0; i < n; i++ {
		r.append(app, i, t, vals[i], false)
	}
}

// stale appends stale markers for the report series at t.
func (r reportSeries) stale(app storage.AppenderV2, t int64, extra bool) {
	n := basicReports
	if extra {
		n = len(reportMeta)
	}
	for i := 0; i < n; i++ {
		r.append(app, i, t, staleNaN, true)
	}
}
