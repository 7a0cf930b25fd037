package unixreceiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/internal/statusapi"
	"github.com/sluicehq/sluice/internal/statusapi/statusapitest"
	"github.com/sluicehq/sluice/receiver/unixreceiver/internal/metadata"
)

// statusHost records the status events a component reports, as the
// collector's service does.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []*componentstatus.Event
}

func (h *statusHost) Report(e *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

func (h *statusHost) last() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return nil
	}
	return h.events[len(h.events)-1]
}

// started is a unix receiver started through its factory, with its
// telemetry, logs, status and output; while refuse is set, the pipeline
// refuses what it is handed.
type started struct {
	rcv    *unixReceiver
	tel    *componenttest.Telemetry
	logs   *observer.ObservedLogs
	host   *statusHost
	sink   *consumertest.MetricsSink
	refuse atomic.Bool
}

func startReceiver(t *testing.T, cfg *Config) (*started, error) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type) // receiver="unix" in the telemetry
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	s := &started{tel: tel, logs: logs, host: &statusHost{Host: statusapitest.NewHost()}, sink: new(consumertest.MetricsSink)}
	next, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		if s.refuse.Load() {
			return errors.New("queue full")
		}
		return s.sink.ConsumeMetrics(ctx, md)
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewFactory().CreateMetrics(context.Background(), set, cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	s.rcv = r.(*unixReceiver)
	if err := r.Start(context.Background(), s.host); err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return s, nil
}

// latest is the series → value of the last collection delivered.
func (s *started) latest(t *testing.T) map[string]float64 {
	t.Helper()
	all := s.sink.AllMetrics()
	if len(all) == 0 {
		return nil
	}
	_, values := seriesOf(t, all[len(all)-1])
	return values
}

// A procfs_path that does not exist (yet) does not stop the receiver nor the
// collectors that do not need it: the collection reports the collector it
// could not set up, counted, logged once (rate-limited) and as a recoverable
// error status; when the path appears, the next collection sets the
// collector up and the status is OK again.
func TestMissingProcfsPathRecovers(t *testing.T) {
	if isolated(t) {
		return
	}
	proc := filepath.Join(t.TempDir(), "proc")
	sys, err := filepath.Abs("testdata/sys")
	if err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig()
	cfg.ProcfsPath, cfg.SysfsPath, cfg.Instance = proc, sys, "testhost"
	cfg.SetCollectors = []string{"meminfo", "thermal_zone"}
	cfg.CollectionInterval = 20 * time.Millisecond
	s, err := startReceiver(t, cfg)
	if err != nil {
		t.Fatalf("start with a missing procfs_path: %v", err)
	}

	want := "1 collector(s) could not be set up and are retried at each collection: meminfo: failed to open procfs: " +
		"could not read \"" + proc + "\": stat " + proc + ": no such file or directory"
	comptest.WaitFor(t, 5*time.Second, "a recoverable error status", func() bool {
		e := s.host.last()
		return e != nil && e.Status() == componentstatus.StatusRecoverableError
	})
	if got := s.host.last().Err().Error(); got != want {
		t.Fatalf("status error:\n got %s\nwant %s", got, want)
	}
	// The status page shows the host as a target: up (thermal_zone was
	// read), with the collector that failed as its error.
	page := func() statusapi.Target {
		src := s.host.Host.(*statusapitest.Host).TargetSource()
		if src == nil {
			t.Fatal("no target source registered with the status extension")
		}
		ts := src.ActiveTargets()
		if len(ts) != 1 {
			t.Fatalf("%d targets, want the host alone", len(ts))
		}
		return ts[0]
	}
	if got := page(); got.Health != statusapi.HealthUp || got.LastError != want || got.Series <= 0 || got.LastScrape.IsZero() ||
		got.Job != cfg.Job || got.ScrapeURL != "file://"+proc {
		t.Errorf("status page target: %+v, want up at file://%s with %d series and the error %q", got, proc, got.Series, want)
	}
	comptest.WaitFor(t, 5*time.Second, "5 failed collections", func() bool {
		return comptest.Counter(s.tel, "otelcol_unix_receiver_failed_collections", attribute.String("reason", reasonSetup)) >= 5
	})
	values := s.latest(t)
	if values["node_thermal_zone_temp{type=x86_pkg_temp,zone=0}"] != 47.5 {
		t.Errorf("the collector that does not need procfs did not deliver: %v", values)
	}
	if v, ok := values["node_scrape_collector_success{collector=meminfo}"]; !ok || v != 0 {
		t.Errorf("node_scrape_collector_success{collector=meminfo} = %v (present %v), want 0", v, ok)
	}
	if v := values["node_scrape_collector_success{collector=thermal_zone}"]; v != 1 {
		t.Errorf("node_scrape_collector_success{collector=thermal_zone} = %v, want 1", v)
	}
	if warns := s.logs.FilterMessage("Host metrics incomplete").All(); len(warns) != 1 {
		t.Errorf("%d warnings over 5 failed collections, want 1 (rate-limited)", len(warns))
	} else {
		t.Logf("logged: %s %v", warns[0].Message, warns[0].ContextMap())
	}

	fixture, err := filepath.Abs("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fixture, proc); err != nil { // the host mount appears
		t.Fatal(err)
	}
	comptest.WaitFor(t, 5*time.Second, "status OK", func() bool {
		return s.host.last().Status() == componentstatus.StatusOK
	})
	comptest.WaitFor(t, 5*time.Second, "the status page target without error", func() bool {
		return page().LastError == "" && page().Health == statusapi.HealthUp
	})
	comptest.WaitFor(t, 5*time.Second, "meminfo's metrics", func() bool {
		return s.latest(t)["node_memory_MemTotal_bytes{}"] == 16384000*1024
	})
	if got := s.latest(t)["node_scrape_collector_success{collector=meminfo}"]; got != 1 {
		t.Errorf("node_scrape_collector_success{collector=meminfo} = %v after the path appeared, want 1", got)
	}
	if n := s.logs.FilterMessage("Host metrics incomplete: working again").Len(); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
}

// A flag value node_exporter refuses fails the receiver's start with its
// message, and is not kept: a receiver with corrected settings starts in
// the same process.
func TestRefusedFlagIsNotCached(t *testing.T) {
	if isolated(t) {
		return
	}
	bad := createDefaultConfig()
	bad.SetCollectors = []string{"loadavg"}
	bad.Flags = map[string]string{"collector.filesystem.mount-timeout": "soon"}
	bad.CollectionInterval = time.Hour
	_, err := startReceiver(t, bad)
	want := `node_exporter flags ["--collector.loadavg" "--collector.filesystem.mount-timeout=soon"]: ` +
		`time: invalid duration "soon"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("start error:\n got %v\nwant %s…", err, want)
	}
	t.Logf("start refused: %v", err)
	good := createDefaultConfig()
	good.SetCollectors = []string{"loadavg"}
	good.CollectionInterval = time.Hour
	s, err := startReceiver(t, good)
	if err != nil {
		t.Fatalf("corrected settings after a refused start: %v", err)
	}
	comptest.WaitFor(t, 5*time.Second, "a collection", func() bool { return len(s.sink.AllMetrics()) > 0 })
	if _, ok := s.latest(t)["node_load1{}"]; !ok {
		t.Error("node_load1 is missing")
	}
}

// The rate limit: the first failure of a run is logged, later ones at most
// once per interval with the number they stand for, and the end of the run
// once.
func TestLimitedLog(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := limitedLog{logger: zap.New(core), msg: "Host metrics incomplete", every: time.Minute}
	t0 := time.Unix(1_700_000_000, 0)
	for i := 0; i < 10; i++ { // every 15s for 2m15s
		l.failure(os.ErrNotExist, t0.Add(time.Duration(i)*15*time.Second))
	}
	l.success()
	l.success()
	var lines []string
	for _, e := range logs.All() {
		lines = append(lines, fmt.Sprintf("%s %v", e.Message, e.ContextMap()["failures_not_logged"]))
	}
	want := []string{"Host metrics incomplete 0", "Host metrics incomplete 3", "Host metrics incomplete 3", "Host metrics incomplete: working again 1"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines:\n got %q\nwant %q", lines, want)
	}
}
