package remotewriteexporter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicehq/sluice/bench/sink"
)

const orgHeader = "X-Scope-OrgID"

// tenantCtx is the context a receiver with include_metadata (or the batch
// processor with metadata_keys) gives the data of one tenant; "" gives none.
func tenantCtx(tenant string) context.Context {
	if tenant == "" {
		return context.Background()
	}
	return client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{orgHeader: {tenant}})})
}

// withTenants configures tenants::metadata_keys: [X-Scope-OrgID].
func withTenants(cfg *Config) { cfg.Tenants.MetadataKeys = []string{orgHeader} }

// pushTenant queues n series of tenant (named <tenant>_<i>, job <tenant>) at time ts.
func pushTenant(t *testing.T, r *running, tenant string, ts int64, n int) {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s_%d", jobOf(tenant), i)
	}
	if err := r.exp.ConsumeMetrics(tenantCtx(tenant), gauges(jobOf(tenant), ts, 1, names...)); err != nil {
		t.Fatal(err)
	}
}

func jobOf(tenant string) string {
	if tenant == "" {
		return "untagged"
	}
	return "t" + tenant
}

// checkTenants fails unless every series the sink holds under each tenant
// of want is that tenant's (its job says whose it is) and each tenant got
// want[tenant] samples.
func checkTenants(t *testing.T, s *sink.Sink, want map[string]int) {
	t.Helper()
	got := s.Tenants()
	for tenant, n := range want {
		if got[tenant].Samples != n {
			t.Errorf("tenant %q: %d samples, want %d (all: %+v)", tenant, got[tenant].Samples, n, got)
		}
		for _, ser := range s.TenantSeries(tenant) {
			if !strings.Contains(ser, `job="`+jobOf(tenant)+`"`) {
				t.Errorf("series %s arrived under tenant %q", ser, tenant)
			}
		}
	}
	for tenant := range got {
		if _, ok := want[tenant]; !ok {
			t.Errorf("samples under unexpected tenant %q: %+v", tenant, got[tenant])
		}
	}
}

// tenantSink starts bench/sink filing requests by X-Scope-OrgID, with the
// faults given (at most one) set.
func tenantSink(t *testing.T, faults ...sink.Fault) (*sink.Sink, string) {
	t.Helper()
	s, url := startSink(t)
	s.RecordTenants(orgHeader)
	for _, f := range faults {
		if err := s.SetFault(f); err != nil {
			t.Fatal(err)
		}
	}
	return s, url
}

func sinkSamples(s *sink.Sink) int { return s.Stats().RemoteWrite.Samples }

// Each push reaches the backend with its own tenant's header and no other
// tenant's samples; data without a tenant goes without the header.
func TestTenantsEachRequestCarriesItsTenant(t *testing.T) {
	s, url := tenantSink(t)
	r := startExporter(t, url, "", func(c *Config) { withTenants(c); c.MaxSamplesPerSend = 7 })
	for round := range 20 {
		for _, tenant := range []string{"a", "b", ""} {
			pushTenant(t, r, tenant, int64(1000+round), 10)
		}
	}
	waitUntil(t, "everything delivered", func() bool { return sinkSamples(s) == 600 })
	checkTenants(t, s, map[string]int{"a": 200, "b": 200, "": 200})
	if st := s.Stats().RemoteWrite; st.OutOfOrder != 0 || st.Duplicates != 0 {
		t.Fatalf("order within a tenant: %+v", st)
	}
}

// Without tenants::metadata_keys, metadata is ignored: no tenant header, no
// tenant queues, the layout of earlier versions.
func TestNoTenantKeysIgnoresMetadata(t *testing.T) {
	s, url := tenantSink(t)
	dir := t.TempDir()
	r := startExporter(t, url, dir, nil)
	pushTenant(t, r, "a", 1000, 10)
	waitUntil(t, "delivered", func() bool { return sinkSamples(s) == 10 })
	if got := s.Tenants(); len(got) != 1 || got[""].Samples != 10 {
		t.Fatalf("tenants at the sink: %+v, want all 10 samples without the header", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "remote_write", tenantsDir)); !os.IsNotExist(err) {
		t.Fatalf("a tenants directory was made without tenant keys: %v", err)
	}
}

// A backend failing one tenant (503 or 429 with Retry-After: 300, or 401
// retried every 5 minutes, for tenant a only) holds back that tenant's data
// alone: tenant b and untagged data are delivered at once (with one backoff
// for the whole endpoint they would wait the 5 minutes too, past the test's
// 20 s), and a's data waits in its queue, to be delivered under a once the
// backend takes it (here after a restart, which forgets the backoff).
func TestTenantOutageDoesNotBlockOtherTenants(t *testing.T) {
	for _, status := range []int{503, 429, 401} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s, url := tenantSink(t, sink.Fault{Mode: "status", Status: status, RetryAfter: "300", Tenant: "a", For: sink.Duration(time.Minute)})
			dir := t.TempDir()
			cfg := func(c *Config) {
				withTenants(c)
				c.Shards = 2
				c.RetryOnAuthError.Interval = 5 * time.Minute
			}
			r := startExporter(t, url, dir, cfg)
			for round := range 10 {
				for _, tenant := range []string{"a", "b", ""} {
					pushTenant(t, r, tenant, int64(1000+round), 10)
				}
			}
			waitUntil(t, "tenant b and untagged data delivered during a's outage", func() bool {
				got := s.Tenants()
				return got["b"].Samples == 100 && got[""].Samples == 100
			})
			if got := s.Tenants()["a"].Samples; got != 0 {
				t.Fatalf("tenant a delivered %d samples while the backend refused it", got)
			}
			if s.Stats().Faulted == 0 {
				t.Fatal("tenant a was never tried")
			}
			r.stop(t)
			s.ClearFault()
			startExporter(t, url, dir, cfg)
			waitUntil(t, "tenant a delivered after its outage", func() bool { return s.Tenants()["a"].Samples == 100 })
			checkTenants(t, s, map[string]int{"a": 100, "b": 100, "": 100})
		})
	}
}

// Queued data keeps its tenant across a restart, also when the restarted
// exporter has no tenant keys any more; a tenant whose queue drained is
// removed at the next start.
func TestTenantsSurviveRestart(t *testing.T) {
	s, url := tenantSink(t, sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Minute)})
	dir := t.TempDir()
	r := startExporter(t, url, dir, withTenants)
	for _, tenant := range []string{"a", "b", ""} {
		pushTenant(t, r, tenant, 1000, 10)
	}
	r.stop(t)
	tenantRoot := filepath.Join(dir, "remote_write", tenantsDir)
	if entries, _ := os.ReadDir(tenantRoot); len(entries) != 2 {
		t.Fatalf("tenant directories: %v, want 2", entries)
	}
	if got := s.Tenants(); sumSamples(got) != 0 {
		t.Fatalf("delivered during the outage: %+v", got)
	}

	s.ClearFault()
	r = startExporter(t, url, dir, nil) // no tenant keys now: the queued tenants still go as they came
	waitUntil(t, "the queued data delivered", func() bool { return sinkSamples(s) == 30 })
	checkTenants(t, s, map[string]int{"a": 10, "b": 10, "": 10})
	r.stop(t)

	r = startExporter(t, url, dir, withTenants)
	if entries, _ := os.ReadDir(tenantRoot); len(entries) != 0 {
		t.Fatalf("drained tenant directories kept: %v", entries)
	}
	pushTenant(t, r, "a", 2000, 5)
	waitUntil(t, "a new push of a", func() bool { return s.Tenants()["a"].Samples == 15 })
	checkTenants(t, s, map[string]int{"a": 15, "b": 10, "": 10})
}

func sumSamples(m map[string]sink.TenantStats) int {
	n := 0
	for _, st := range m {
		n += st.Samples
	}
	return n
}

// Upgrade: testdata/queue-before-tenants is a queue written by the exporter
// before tenants existed (main before this change, shards 4, the backend
// down: 4 requests of 5 series). It opens under a config with tenants and
// its data goes out as it was queued, without a tenant header; new data
// goes with its tenant.
func TestQueueOfEarlierVersionOpensWithTenants(t *testing.T) {
	s, url := tenantSink(t)
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/queue-before-tenants")); err != nil {
		t.Fatal(err)
	}
	r := startExporter(t, url, dir, withTenants)
	pushTenant(t, r, "a", 2000, 5)
	waitUntil(t, "old and new data delivered", func() bool { return sinkSamples(s) == 25 })
	checkTenants(t, s, map[string]int{"": 20, "a": 5})
}

// tenants::max_tenants bounds the tenants with queues; data of one more is
// refused with a permanent error that names the key, the others still go.
func TestMaxTenantsRefusesAFurtherTenant(t *testing.T) {
	s, url := tenantSink(t)
	r := startExporter(t, url, "", func(c *Config) { withTenants(c); c.Tenants.MaxTenants = 2 })
	pushTenant(t, r, "a", 1000, 1)
	pushTenant(t, r, "b", 1000, 1)
	err := r.exp.ConsumeMetrics(tenantCtx("c"), gauges("tc", 1000, 1, "tc_0"))
	if !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "tenants::max_tenants (2) reached: refusing the data of a new tenant (X-Scope-Orgid=c)") {
		t.Fatalf("third tenant: err %v, want a permanent error naming tenants::max_tenants", err)
	}
	if n, ok := r.gauge(t, "otelcol_remote_write_tenants"); !ok || n != 2 {
		t.Fatalf("otelcol_remote_write_tenants = %v (reported: %v), want 2", n, ok)
	}
	pushTenant(t, r, "a", 2000, 1)
	pushTenant(t, r, "", 2000, 1) // untagged data needs no tenant slot
	waitUntil(t, "delivered", func() bool { return sinkSamples(s) == 4 })
	checkTenants(t, s, map[string]int{"a": 2, "b": 1, "": 1})
}

// A tenant queue whose tenant.json is damaged cannot be attributed: it is
// renamed aside, logged and not sent under any tenant; the rest goes on.
func TestDamagedTenantFileIsLeftUnsent(t *testing.T) {
	s, url := tenantSink(t, sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Minute)})
	dir := t.TempDir()
	r := startExporter(t, url, dir, withTenants)
	pushTenant(t, r, "a", 1000, 10)
	pushTenant(t, r, "b", 1000, 10)
	r.stop(t)
	root := filepath.Join(dir, "remote_write", tenantsDir)
	var damaged string
	entries, _ := os.ReadDir(root)
	for _, ent := range entries {
		if strings.Contains(ent.Name(), "_a-") {
			damaged = filepath.Join(root, ent.Name())
		}
	}
	if damaged == "" {
		t.Fatalf("no directory of tenant a among %v", entries)
	}
	if err := os.WriteFile(filepath.Join(damaged, tenantFileName), []byte(`{"headers":`), 0o600); err != nil {
		t.Fatal(err)
	}

	s.ClearFault()
	var logs *observer.ObservedLogs
	r = startExporterSet(t, url, dir, withTenants, observed(&logs))
	waitUntil(t, "tenant b delivered", func() bool { return s.Tenants()["b"].Samples == 10 })
	if found := logs.FilterMessageSnippet("cannot be attributed to a tenant").Len(); found != 1 {
		t.Fatalf("%d logs about the damaged tenant, want 1", found)
	}
	if _, err := os.Stat(damaged + damagedSuffix); err != nil {
		t.Fatalf("damaged tenant not renamed aside: %v", err)
	}
	pushTenant(t, r, "a", 2000, 3) // tenant a starts afresh
	waitUntil(t, "new data of a", func() bool { return s.Tenants()["a"].Samples == 3 })
	checkTenants(t, s, map[string]int{"a": 3, "b": 10})
}

// Every tenant header goes out as it came, several keys and several values
// alike; the status page lists each tenant's endpoint apart.
func TestSeveralTenantKeys(t *testing.T) {
	c, url := startCapture(t, nil)
	r := startExporter(t, url, "", func(cfg *Config) { cfg.Tenants.MetadataKeys = []string{"x-scope-orgid", "X-Tenant-Region"} })
	ctx := client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{
		"X-Scope-OrgID": {"a"}, "X-Tenant-Region": {"eu", "us"}, "Authorization": {"Bearer not-passed"},
	})})
	if err := r.exp.ConsumeMetrics(ctx, gauges("j", 1000, 1, "m")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "one request", func() bool { return len(c.requests()) == 1 })
	h := c.requests()[0].header
	if got := h.Values("X-Scope-OrgID"); len(got) != 1 || got[0] != "a" {
		t.Errorf("X-Scope-OrgID: %q", got)
	}
	if got := h.Values("X-Tenant-Region"); len(got) != 2 || got[0] != "eu" || got[1] != "us" {
		t.Errorf("X-Tenant-Region: %q", got)
	}
	if got := h.Get("Authorization"); got != "" {
		t.Errorf("Authorization passed through without being a tenant key: %q", got)
	}
	var names []string
	for _, ep := range r.exp.Endpoints() {
		names = append(names, ep.URL)
	}
	if len(names) != 2 || !strings.HasSuffix(names[1], "[X-Scope-Orgid=a X-Tenant-Region=eu,us]") {
		t.Fatalf("status page endpoints: %q", names)
	}
}

func TestTenantConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		max  int
		hdr  string
		want string
	}{
		{keys: []string{""}, want: "tenants::metadata_keys[0]: empty key"},
		{keys: []string{"X-Scope-OrgID", "x-scope-orgid"}, want: `tenants::metadata_keys[1]: "x-scope-orgid" is listed twice`},
		{keys: []string{"tenant id"}, want: `tenants::metadata_keys[0]: "tenant id" is not a valid HTTP header name`},
		{keys: []string{"content-type"}, want: "tenants::metadata_keys[0]: Content-Type is set by the exporter"},
		{keys: []string{"X-Scope-OrgID"}, hdr: "x-scope-orgid", want: `tenants::metadata_keys[0]: "X-Scope-OrgID" is also set under headers`},
		{max: -1, want: "tenants::max_tenants: must be 0 (no limit) or positive, got -1"},
	} {
		cfg := createDefaultConfig()
		cfg.ClientConfig.Endpoint = "http://127.0.0.1:9090/api/v1/write"
		cfg.Tenants.MetadataKeys, cfg.Tenants.MaxTenants = tc.keys, tc.max
		if tc.hdr != "" {
			cfg.ClientConfig.Headers = configopaque.MapList{{Name: tc.hdr, Value: "fixed"}}
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc, err, tc.want)
		}
	}
}

// BenchmarkConsumeMetricsTenants is BenchmarkConsumeMetrics (1.0) with
// tenants::metadata_keys set, the calls alternating between two tenants
// and untagged data: what picking a tenant's queues adds per call.
func BenchmarkConsumeMetricsTenants(b *testing.B) {
	cfg := createDefaultConfig()
	// Nothing listens there: the senders back off (up to 10 s) instead of
	// competing for the CPU.
	cfg.ClientConfig.Endpoint = "http://127.0.0.1:1/api/v1/write"
	cfg.Queue.Directory = b.TempDir()
	cfg.Queue.MaxSize = 8 << 30
	withTenants(cfg)
	e := newExporter(cfg, exporterSettings())
	if err := e.Start(context.Background(), nopHost{}); err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	const series = 20000
	md := scrapeLike(series, 1000)
	ctxs := []context.Context{tenantCtx("a"), tenantCtx("b"), tenantCtx("")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.ConsumeMetrics(ctxs[i%len(ctxs)], md); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(series*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// Many callers making tenants at once while the exporter shuts down: no
// call fails but with errShuttingDown, and everything a call was told is
// queued is delivered after a restart, under its own tenant.
func TestTenantsConcurrentWithShutdown(t *testing.T) {
	s, url := tenantSink(t, sink.Fault{Mode: "status", Status: 503, For: sink.Duration(time.Minute)})
	dir := t.TempDir()
	r := startExporter(t, url, dir, withTenants)
	const callers, tenants = 6, 15
	accepted := make([]map[string]int, callers)
	var wg sync.WaitGroup
	for c := range callers {
		accepted[c] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				tenant := fmt.Sprint((c + i) % tenants)
				name := fmt.Sprintf("%s_c%d_%d", jobOf(tenant), c, i)
				err := r.exp.ConsumeMetrics(tenantCtx(tenant), gauges(jobOf(tenant), 1000, 1, name))
				if err != nil {
					if !errors.Is(err, errShuttingDown) {
						t.Errorf("caller %d: %v", c, err)
					}
					return
				}
				accepted[c][tenant]++
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // tenants being made and filled
	exp := r.exp
	r.stop(t)
	wg.Wait()
	if err := exp.ConsumeMetrics(tenantCtx("new"), gauges("tnew", 1000, 1, "tnew_0")); !errors.Is(err, errShuttingDown) {
		t.Fatalf("after Shutdown: %v, want errShuttingDown", err)
	}

	want := map[string]int{}
	total := 0
	for _, m := range accepted {
		for tenant, n := range m {
			want[tenant] += n
			total += n
		}
	}
	if len(want) < 2 {
		t.Fatalf("only %d tenants made before the shutdown: %v", len(want), want)
	}
	t.Logf("%d samples of %d tenants accepted before the shutdown", total, len(want))
	s.ClearFault()
	startExporter(t, url, dir, withTenants)
	waitUntil(t, "everything accepted delivered", func() bool { return sinkSamples(s) >= total })
	checkTenants(t, s, want)
}

// A crash between making a tenant's directory and writing its tenant.json
// leaves a directory without either file or queues: it is removed at start.
// One without tenant.json but with queues cannot be attributed and is set
// aside, as a damaged one is.
func TestTenantDirectoryWithoutFile(t *testing.T) {
	_, url := tenantSink(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "remote_write", tenantsDir)
	empty := filepath.Join(root, "tenant-x-0000000000000001")
	withQueue := filepath.Join(root, "tenant-y-0000000000000002")
	for _, d := range []string{empty, filepath.Join(withQueue, "shards-4", "0")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	startExporter(t, url, dir, withTenants)
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("a tenant directory with nothing in it was kept: %v", err)
	}
	if _, err := os.Stat(withQueue + damagedSuffix); err != nil {
		t.Errorf("a tenant queue without tenant.json was not set aside: %v", err)
	}
}
