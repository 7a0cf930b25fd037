package unixreceiver

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"

	"github.com/sluicehq/sluice/internal/promseries"
	"github.com/sluicehq/sluice/internal/statusapi"
	"github.com/sluicehq/sluice/internal/zapslog"
	"github.com/sluicehq/sluice/receiver/unixreceiver/internal/metadata"
)

type unixReceiver struct {
	cfg      *Config
	set      receiver.Settings
	next     consumer.Metrics
	instance string
	g        *sharedGatherer
	b        *promseries.Builder
	cancel   context.CancelFunc
	done     sync.WaitGroup

	// Failures are counted, logged rate-limited and reported as the
	// component's status; the run goroutine alone uses these.
	host        component.Host
	tel         *telemetry
	hostLog     limitedLog
	pipelineLog limitedLog
	hostErr     string // the last host error reported as status, "" when OK

	status     *hostTarget // what the status page shows of the host
	unregister func()
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Metrics) (*unixReceiver, error) {
	tel, err := newTelemetry(set)
	if err != nil {
		return nil, err
	}
	return &unixReceiver{
		cfg: cfg, set: set, next: next, b: promseries.NewBuilder(metadata.ScopeName), tel: tel,
		hostLog:     limitedLog{logger: set.Logger, msg: "Host metrics incomplete", every: defaultLogEvery},
		pipelineLog: limitedLog{logger: set.Logger, msg: "Host metrics not delivered", every: defaultLogEvery},
	}, nil
}

// Start fails only on settings that cannot apply in this process. A path
// that is missing (a host mount not there yet) is not one: the collectors
// that need it are set up again at every collection, and until then the
// receiver's status is a recoverable error.
func (r *unixReceiver) Start(_ context.Context, host component.Host) error {
	r.instance = r.cfg.Instance
	if r.instance == "" {
		h, err := os.Hostname()
		if err != nil {
			return errors.New("instance is not set and the host name is unknown: " + err.Error())
		}
		r.instance = h
	}
	g, err := gatherer(r.cfg.flags(), len(r.cfg.SetCollectors) > 0, zapslog.New(r.set.Logger))
	if err != nil {
		return err
	}
	r.g, r.host = g, host
	r.status = newHostTarget(r.cfg, r.instance)
	r.unregister = statusapi.RegisterTargets(host, r.set.ID, r.status)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done.Add(1)
	go r.run(ctx)
	return nil
}

func (r *unixReceiver) Shutdown(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		r.done.Wait()
	}
	if r.unregister != nil {
		r.unregister()
		r.unregister = nil
	}
	return nil
}

// run collects at once, then every collection_interval.
func (r *unixReceiver) run(ctx context.Context) {
	defer r.done.Done()
	t := time.NewTicker(r.cfg.CollectionInterval)
	defer t.Stop()
	for {
		r.collect(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collect reads the host once and passes on what was read, also when some
// collectors failed.
func (r *unixReceiver) collect(ctx context.Context) {
	start := time.Now()
	md, err := r.collectMetrics()
	r.status.collected(start, md.DataPointCount(), err)
	r.reportHost(ctx, err)
	if md.DataPointCount() == 0 {
		return
	}
	if err := r.tel.consume(ctx, r.next, md); err != nil {
		if ctx.Err() == nil {
			r.tel.failure(ctx, reasonPipeline)
			r.pipelineLog.failure(err, time.Now())
		}
		return
	}
	r.pipelineLog.success()
}

// reportHost counts and logs a failed reading of the host and reports it as
// a recoverable error status (the next collection tries again); the first
// clean reading after one reports OK.
func (r *unixReceiver) reportHost(ctx context.Context, err error) {
	if err == nil {
		r.hostLog.success()
		if r.hostErr != "" {
			r.hostErr = ""
			componentstatus.ReportStatus(r.host, componentstatus.NewEvent(componentstatus.StatusOK))
		}
		return
	}
	setup, gather := failureReasons(err)
	if setup {
		r.tel.failure(ctx, reasonSetup)
	}
	if gather {
		r.tel.failure(ctx, reasonGather)
	}
	r.hostLog.failure(err, time.Now())
	if msg := err.Error(); msg != r.hostErr {
		r.hostErr = msg
		componentstatus.ReportStatus(r.host, componentstatus.NewRecoverableErrorEvent(err))
	}
}

// failureReasons tells a collection's setup error (some collectors could
// not be set up) from other errors of the gather.
func failureReasons(err error) (setup, gather bool) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var se *setupError
		if errors.As(e, &se) {
			setup = true
		} else {
			gather = true
		}
	}
	return setup, gather
}

// collectMetrics gathers node_exporter's metric families and builds them
// as one scrape of job/instance at the time of collection.
func (r *unixReceiver) collectMetrics() (pmetric.Metrics, error) {
	now := time.Now().UnixMilli()
	families, err := r.g.Gather()
	var lb labels.ScratchBuilder
	for _, mf := range families {
		addFamily(r.b, &lb, mf, r.cfg.Job, r.instance, now)
	}
	return r.b.Metrics(), err
}
