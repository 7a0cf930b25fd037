package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sluicehq/sluice/bench/loadgen"
	"github.com/sluicehq/sluice/bench/sink"
)

// tenantGateway is bin/sluice running configs/gateway-tenants.yaml, the
// multi-tenant gateway as shipped: remote write in with include_metadata,
// batched per X-Scope-OrgID, out with the tenant's header and queues per
// tenant.
type tenantGateway struct {
	env    []string
	config string
	port   int
	health int
	p      *process
}

func newTenantGateway(t *testing.T, dir, sinkAddr string) *tenantGateway {
	t.Helper()
	g := &tenantGateway{port: freePort(t), health: freePort(t)}
	g.config = filepath.Join(repoRoot(t), "configs", "gateway-tenants.yaml")
	g.env = []string{
		fmt.Sprintf("SLUICE_LISTEN=127.0.0.1:%d", g.port),
		fmt.Sprintf("SLUICE_OTLP_LISTEN=127.0.0.1:%d", freePort(t)),
		"SLUICE_REMOTE_WRITE_URL=http://" + sinkAddr + "/api/v1/write",
		"SLUICE_QUEUE_DIR=" + filepath.Join(dir, "queue"),
		fmt.Sprintf("SLUICE_HEALTH_LISTEN=127.0.0.1:%d", g.health),
		fmt.Sprintf("SLUICE_TELEMETRY_PORT=%d", freePort(t)),
		fmt.Sprintf("SLUICE_STATUS_LISTEN=127.0.0.1:%d", freePort(t)),
	}
	return g
}

func (g *tenantGateway) start(t *testing.T) {
	t.Helper()
	g.p = startSluiceEnv(t, g.env, "--config", g.config)
	g.p.waitHealthy(t, g.health, 60*time.Second, "the gateway")
}

// kill ends the gateway with SIGKILL, as a crash would.
func (g *tenantGateway) kill(t *testing.T) {
	t.Helper()
	if err := g.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the gateway to die", func() bool { return !g.p.running() })
}

// pushRounds pushes rounds remote-write 1.0 requests of tenant, each with
// one sample of series series t<tenant>_metric_<i>{tenant="<tenant>"}, at
// timestamps from first on, one second apart, as a Prometheus edge with
// `headers: {X-Scope-OrgID: <tenant>}` would; a push answered 5xx is
// retried, as an edge does.
func pushRounds(t *testing.T, port int, tenant string, first int64, rounds, series int) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", port)
	for r := range rounds {
		req := &prompb.WriteRequest{}
		for i := range series {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: "__name__", Value: fmt.Sprintf("t%s_metric_%d", tenant, i)},
					{Name: "tenant", Value: tenant},
				},
				Samples: []prompb.Sample{{Timestamp: (first + int64(r)) * 1000, Value: float64(r)}},
			})
		}
		raw, err := req.Marshal()
		if err != nil {
			t.Error(err)
			return
		}
		body := snappy.Encode(nil, raw)
		for try := 0; ; try++ {
			hreq, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			hreq.Header.Set("Content-Type", "application/x-protobuf")
			hreq.Header.Set("Content-Encoding", "snappy")
			hreq.Header.Set("X-Scope-OrgID", tenant)
			resp, err := http.DefaultClient.Do(hreq)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusNoContent {
					break
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			if try == 50 {
				t.Errorf("push %d of tenant %s: %v", r, tenant, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// pushBoth pushes the rounds of tenants a and b at the same time.
func pushBoth(t *testing.T, port int, first int64, rounds, series int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, tenant := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pushRounds(t, port, tenant, first, rounds, series)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// noneMisfiled fails the test for every series the sink holds under a tenant
// it does not belong to (its tenant label says whose it is), and for any
// tenant other than a and b (no request without the header, none of both).
func noneMisfiled(t *testing.T, s *sink.Sink) {
	t.Helper()
	for tenant := range s.Tenants() {
		if tenant != "a" && tenant != "b" {
			t.Errorf("requests arrived under tenant %q: %+v", tenant, s.Tenants()[tenant])
			continue
		}
		for _, ser := range s.TenantSeries(tenant) {
			if !strings.Contains(ser, `tenant="`+tenant+`"`) {
				t.Errorf("series %s arrived under tenant %q", ser, tenant)
			}
		}
	}
}

// Two tenants push through one gateway to a backend that files requests by
// X-Scope-OrgID (bench/sink, as Mimir does): no sample arrives under the
// wrong tenant; a backend refusing tenant a (503, Retry-After: 300) does not
// hold back tenant b; a's data queued during its outage survives a kill -9
// of the gateway and is delivered under a after the restart.
func TestGatewayKeepsTenantsApart(t *testing.T) {
	dir := t.TempDir()
	s, sinkAddr := startSink(t)
	s.RecordTenants("X-Scope-OrgID")
	gw := newTenantGateway(t, dir, sinkAddr)
	gw.start(t)
	const series = 50
	distinct := func(tenant string) int { return s.Distinct("t" + tenant + "_") }

	// Both tenants at once.
	pushBoth(t, gw.port, 1_000_000, 30, series)
	waitFor(t, 30*time.Second, "both tenants delivered", func() bool {
		return distinct("a") == 30*series && distinct("b") == 30*series
	})
	noneMisfiled(t, s)

	// Tenant a's backend fails, asking for 5 minutes' rest (Retry-After):
	// b goes on at once, with a backoff of its own.
	if err := s.SetFault(sink.Fault{Mode: "status", Status: 503, RetryAfter: "300", Tenant: "a", For: sink.Duration(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	pushBoth(t, gw.port, 1_000_030, 20, series)
	waitFor(t, 30*time.Second, "tenant b delivered during a's outage", func() bool { return distinct("b") == 50*series })
	if got := distinct("a"); got != 30*series {
		t.Fatalf("tenant a: %d samples delivered during its outage, want the %d from before", got, 30*series)
	}
	if s.Stats().Faulted == 0 {
		t.Fatal("the backend never refused tenant a: the outage was not exercised")
	}

	// A crash with a's data queued, then the backend takes a again.
	gw.kill(t)
	s.ClearFault()
	gw.start(t)
	waitFor(t, 30*time.Second, "tenant a's queued data delivered after the restart", func() bool { return distinct("a") == 50*series })
	pushBoth(t, gw.port, 1_000_050, 10, series)
	waitFor(t, 30*time.Second, "both tenants delivered after the restart", func() bool {
		return distinct("a") == 60*series && distinct("b") == 60*series
	})
	noneMisfiled(t, s)
	st := s.Stats()
	if st.RemoteWrite.OutOfOrder != 0 {
		t.Errorf("%d samples out of order", st.RemoteWrite.OutOfOrder)
	}
	t.Logf("sink: %+v", st.Tenants)
}

// Two Debian vmagents, one per tenant, scrape the same targets and push
// through one gateway with `-remoteWrite.headers='X-Scope-OrgID: <tenant>'`
// (and the tenant as a label, to tell whose a series is): the same series of
// both tenants reach the backend, each under its own tenant only. (Debian's
// Prometheus 2.42 would be the other obvious edge, but it does not send
// remote_write `headers`: measured with a server printing them.)
func TestVmagentTenantsThroughGateway(t *testing.T) {
	vmBin, err := exec.LookPath("vmagent")
	if err != nil {
		t.Fatal("vmagent is not installed; `make test` installs Debian's victoria-metrics")
	}
	lg, err := loadgen.Start(loadgen.Config{Targets: 2, SeriesPerTarget: 100, Seed: 11}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Stop)
	dir := t.TempDir()
	s, sinkAddr := startSink(t)
	s.RecordTenants("X-Scope-OrgID")
	gw := newTenantGateway(t, dir, sinkAddr)
	gw.start(t)

	scrape := fmt.Sprintf(`scrape_configs:
  - job_name: loadgen
    scrape_interval: 1s
    static_configs:
      - targets: [%s]
`, quotedAddrs(lg))
	edges := map[string]*exec.Cmd{}
	for _, tenant := range []string{"a", "b"} {
		edges[tenant] = startTool(t, dir, "vmagent-"+tenant, vmBin,
			"-promscrape.config="+writeFile(t, dir, "vmagent-"+tenant+".yaml", scrape),
			fmt.Sprintf("-remoteWrite.url=http://127.0.0.1:%d/api/v1/write", gw.port),
			"-remoteWrite.headers=X-Scope-OrgID: "+tenant, "-remoteWrite.label=tenant="+tenant,
			"-remoteWrite.tmpDataPath="+filepath.Join(dir, "vmagent-queue-"+tenant),
			fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", freePort(t)))
	}
	waitScrapes(t, lg, 8) // two edges: at least four scrapes each
	// vmagent keeps unsent data on disk when stopped: end scraping instead
	// (an empty config, reloaded), so that what was scraped is delivered.
	for tenant, vm := range edges {
		writeFile(t, dir, "vmagent-"+tenant+".yaml", "scrape_configs: []\n")
		if err := vm.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	last, since := -1, time.Now()
	waitFor(t, 60*time.Second, "the sink to stop receiving", func() bool {
		n := s.Stats().RemoteWrite.Samples
		if n != last {
			last, since = n, time.Now()
		}
		return n > 0 && time.Since(since) > 3*time.Second
	})
	noneMisfiled(t, s)
	got := s.Tenants()
	for _, tenant := range []string{"a", "b"} {
		// 200 loadgen series plus each target's up and scrape_* series.
		if got[tenant].Series < 200 || got[tenant].Samples < 3*200 {
			t.Errorf("tenant %s: %+v, want every loadgen series, scraped several times", tenant, got[tenant])
		}
	}
	if got["a"].Series != got["b"].Series {
		t.Errorf("tenants got different series counts from the same targets: a %d, b %d", got["a"].Series, got["b"].Series)
	}
	t.Logf("sink: %+v", got)
}
