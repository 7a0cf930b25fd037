package prometheusreceiver

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluicehq/sluice/receiver/prometheusreceiver/internal/metadata"
)

// The receiver's telemetry is fed through two calls, so that any scrape
// loop can feed it — Prometheus' scrape manager today (appender.go,
// targets.go), Sluice's own loop later: scraped after each scrape of a
// target, and observeTargets with the targets known now.

// scrapeFacts is one scrape of one target, as the loop that ran it saw it.
type scrapeFacts struct {
	job      string        // the scrape config's job_name
	duration time.Duration // what Prometheus reports as scrape_duration_seconds
	samples  int           // samples exposed, before metric_relabel_configs (scrape_samples_scraped)
	err      error         // why the scrape failed (up is 0); nil when it did not
	refused  error         // the pipeline's refusal of the scrape; nil when it took it
}

// targetFacts is one target the loop scrapes, between scrapes.
type targetFacts struct {
	job    string
	health string // healthUp, healthDown or healthUnknown
}

// Health of a target, in Prometheus' words (scrape.TargetHealth).
const (
	healthUp      = "up"
	healthDown    = "down"
	healthUnknown = "unknown"
)

// Reasons a scrape failed, the values of scrape_errors' reason.
const (
	reasonHTTPStatus      = "http_status"
	reasonTimeout         = "timeout"
	reasonConnection      = "connection"
	reasonParse           = "parse"
	reasonBodySizeLimit   = "body_size_limit"
	reasonSampleLimit     = "sample_limit"
	reasonBucketLimit     = "bucket_limit"
	reasonLabelLimit      = "label_limit"
	reasonTargetLimit     = "target_limit"
	reasonConsumerRefused = "consumer_refused"
)

// formatPrometheus is the format the collector's receiver telemetry records
// for a scrape (a span attribute), as the contrib prometheus receiver does.
const formatPrometheus = "prometheus"

// jobCounts is what the gauges say about one job.
type jobCounts struct {
	up, down, unknown, dropped int64
}

// telemetry is the receiver's own metrics (metadata.yaml, documentation.md)
// and the collector's standard receiver metrics (obs); every series of its
// own carries receiver="<id>".
type telemetry struct {
	tb   *metadata.TelemetryBuilder
	obs  *receiverhelper.ObsReport
	id   attribute.KeyValue
	jobs atomic.Pointer[map[string]jobCounts] // the last observeTargets
}

func newTelemetry(set receiver.Settings) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	// transport http as the contrib prometheus receiver reports it; the
	// context a scrape is handed over with is its scrape loop's, which
	// lives longer than the one scrape.
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", LongLivedCtx: true, ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	t := &telemetry{tb: tb, obs: obs, id: attribute.String("receiver", set.ID.String())}
	t.jobs.Store(&map[string]jobCounts{})
	err = errors.Join(
		tb.RegisterPrometheusReceiverTargetsCallback(t.observeHealth),
		tb.RegisterPrometheusReceiverDiscoveredTargetsCallback(t.observeDiscovered))
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	return t, nil
}

// shutdown stops the gauges' callbacks.
func (t *telemetry) shutdown() { t.tb.Shutdown() }

// consume hands one scrape to the pipeline, counted in the collector's
// otelcol_receiver_accepted/refused_metric_points.
func (t *telemetry) consume(ctx context.Context, next consumer.Metrics, md pmetric.Metrics) error {
	n := md.DataPointCount()
	ctx = t.obs.StartMetricsOp(ctx)
	err := next.ConsumeMetrics(ctx, md)
	t.obs.EndMetricsOp(ctx, formatPrometheus, n, err)
	return err
}

// scraped counts one scrape of one target.
func (t *telemetry) scraped(ctx context.Context, f scrapeFacts) {
	job := attribute.String("job", f.job)
	own := metric.WithAttributes(t.id, job)
	t.tb.PrometheusReceiverScrapeDurationSeconds.Record(ctx, f.duration.Seconds(), own)
	if f.samples > 0 {
		t.tb.PrometheusReceiverSamplesScraped.Add(ctx, int64(f.samples), own)
	}
	if f.err != nil {
		t.tb.PrometheusReceiverScrapeErrors.Add(ctx, 1, metric.WithAttributes(t.id, job, attribute.String("reason", scrapeErrorReason(f.err))))
	}
	if f.refused != nil {
		t.tb.PrometheusReceiverScrapeErrors.Add(ctx, 1, metric.WithAttributes(t.id, job, attribute.String("reason", reasonConsumerRefused)))
	}
}

// observeTargets replaces what the gauges report: jobs are the configured
// job names (each reported, zero included, so that an alert on
// health="down" needs no absent()), active the targets scraped, dropped the
// number of discovered targets relabel_configs dropped per job.
func (t *telemetry) observeTargets(jobs []string, active []targetFacts, dropped map[string]int) {
	counts := make(map[string]jobCounts, len(jobs))
	for _, j := range jobs {
		counts[j] = jobCounts{}
	}
	for _, a := range active {
		c := counts[a.job]
		switch a.health {
		case healthUp:
			c.up++
		case healthDown:
			c.down++
		default:
			c.unknown++
		}
		counts[a.job] = c
	}
	for j, n := range dropped {
		c := counts[j]
		c.dropped = int64(n)
		counts[j] = c
	}
	t.jobs.Store(&counts)
}

// The gauges' callbacks read the last observeTargets only: they run when
// the telemetry is read (possibly by this very receiver scraping Sluice's
// own :8888), so they must not wait on the scrape manager's locks.
func (t *telemetry) observeHealth(_ context.Context, o metric.Int64Observer) error {
	for _, job := range t.sortedJobs() {
		c := (*t.jobs.Load())[job]
		for _, h := range []struct {
			health string
			n      int64
		}{{healthUp, c.up}, {healthDown, c.down}, {healthUnknown, c.unknown}} {
			o.Observe(h.n, metric.WithAttributes(t.id, attribute.String("job", job), attribute.String("health", h.health)))
		}
	}
	return nil
}

func (t *telemetry) observeDiscovered(_ context.Context, o metric.Int64Observer) error {
	for _, job := range t.sortedJobs() {
		c := (*t.jobs.Load())[job]
		j := attribute.String("job", job)
		o.Observe(c.up+c.down+c.unknown, metric.WithAttributes(t.id, j, attribute.String("state", "active")))
		o.Observe(c.dropped, metric.WithAttributes(t.id, j, attribute.String("state", "dropped")))
	}
	return nil
}

func (t *telemetry) sortedJobs() []string {
	jobs := make([]string, 0, len(*t.jobs.Load()))
	for j := range *t.jobs.Load() {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	return jobs
}

// scrapeErrorReason sorts a failed scrape's error into a reason. A scrape
// fails either getting the body (HTTP status, timeout, connection, body
// size) or appending what it parsed (limits, parse errors), so what is not
// one of the first nor a limit is the parse. Prometheus' scrape errors are
// mostly plain strings (its sentinels are unexported), so messages are
// matched; TestScrapeErrorsByReason scrapes a real target that fails each
// way (all but bucket_limit), so an upgrade that changes a message shows.
func scrapeErrorReason(err error) string {
	msg := err.Error()
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case strings.HasPrefix(msg, "server returned HTTP status"):
		return reasonHTTPStatus
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return reasonTimeout
	case strings.Contains(msg, "body size limit exceeded"):
		return reasonBodySizeLimit
	case strings.Contains(msg, "sample limit exceeded"):
		return reasonSampleLimit
	case strings.Contains(msg, "histogram bucket limit exceeded"):
		return reasonBucketLimit
	case strings.Contains(msg, "label_limit exceeded"), strings.Contains(msg, "label_name_length_limit exceeded"),
		strings.Contains(msg, "label_value_length_limit exceeded"):
		return reasonLabelLimit
	case strings.HasPrefix(msg, "target_limit exceeded"):
		return reasonTargetLimit
	case errors.As(err, &urlErr), errors.As(err, &netErr):
		// The rest of the HTTP client's errors: refused, reset, no such
		// host, TLS.
		return reasonConnection
	}
	return reasonParse
}

// What Prometheus' scrape manager tells the telemetry: the facts of its
// active targets, and the job of the target an appender scrapes.

// targetsFacts is what the telemetry reads of Prometheus' active targets.
func targetsFacts(active map[string][]*scrape.Target) []targetFacts {
	var facts []targetFacts
	for job, targets := range active {
		for _, t := range targets {
			facts = append(facts, targetFacts{job: job, health: string(t.Health())})
		}
	}
	return facts
}

// targetJobs tells the job (scrape pool) of a target the scrape manager
// hands the appender: the target does not say which scrape config it came
// from, the manager's lists do.
type targetJobs struct {
	byTarget atomic.Pointer[map[*scrape.Target]string]
}

func (j *targetJobs) update(active map[string][]*scrape.Target) {
	m := map[*scrape.Target]string{}
	for job, targets := range active {
		for _, t := range targets {
			m[t] = job
		}
	}
	j.byTarget.Store(&m)
}

// of is t's job. A target scraped before the next update is not listed yet:
// its discovered job label is then the job_name (unless discovery itself
// set a job label, which only a file or HTTP discovery can).
func (j *targetJobs) of(t *scrape.Target) string {
	if job, ok := (*j.byTarget.Load())[t]; ok {
		return job
	}
	var lb labels.Builder
	return t.DiscoveredLabels(&lb).Get(model.JobLabel)
}
