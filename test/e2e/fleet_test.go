package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/sluicehq/sluice/bench/loadgen"
)

// TestGatewayFleet is the gateway pattern end to end, every part real: three
// edge Sluice processes (configs/edge.yaml) scrape bench/loadgen and push to
// two gateway Sluice processes (configs/gateway.yaml), which forward to
// Debian's Prometheus as the backend. One gateway is killed (kill -9) for
// 60 s and brought back. The backend must hold every series loadgen served
// with no gap in any of them, and its own counters and log must show no
// out-of-order, out-of-bounds or duplicate-sample rejection.
func TestGatewayFleet(t *testing.T) {
	t.Run("nginx hashing on the edge", func(t *testing.T) { gatewayFleet(t, true) })
	t.Run("edges hashing series onto the gateways", func(t *testing.T) { gatewayFleet(t, false) })
}

type gatewayProc struct {
	env  []string
	port int
	p    *process
}

func gatewayFleet(t *testing.T, withNginx bool) {
	const edges, seriesPerEdge = 3, 100
	lg, err := loadgen.Start(loadgen.Config{Targets: edges, SeriesPerTarget: seriesPerEdge, Seed: 11}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Stop()
	backend := newBackend(t, "prometheus")
	root := repoRoot(t)
	dir := t.TempDir()

	gateways := make([]*gatewayProc, 2)
	for i := range gateways {
		g := &gatewayProc{port: freePort(t)}
		health := freePort(t)
		g.env = []string{
			fmt.Sprintf("SLUICE_LISTEN=127.0.0.1:%d", g.port),
			fmt.Sprintf("SLUICE_OTLP_LISTEN=127.0.0.1:%d", freePort(t)),
			"SLUICE_REMOTE_WRITE_URL=" + backend.writeURL(),
			"SLUICE_QUEUE_DIR=" + filepath.Join(dir, fmt.Sprintf("gateway-%d", i)),
			fmt.Sprintf("SLUICE_HEALTH_LISTEN=127.0.0.1:%d", health),
			fmt.Sprintf("SLUICE_TELEMETRY_PORT=%d", freePort(t)),
			fmt.Sprintf("SLUICE_STATUS_LISTEN=127.0.0.1:%d", freePort(t)),
		}
		g.p = startSluiceEnv(t, g.env, "--config", filepath.Join(root, "configs", "gateway.yaml"))
		g.p.waitHealthy(t, health, 60*time.Second, fmt.Sprintf("gateway %d", i))
		gateways[i] = g
	}

	var urls []string
	if withNginx {
		urls = []string{startNginx(t, dir, gateways[0].port, gateways[1].port)}
	} else {
		for _, g := range gateways {
			urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", g.port))
		}
	}
	for i := 0; i < edges; i++ {
		targets := filepath.Join(dir, fmt.Sprintf("targets-%d", i))
		if err := os.MkdirAll(targets, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, targets, "loadgen.yaml", fmt.Sprintf("- targets: [%q]\n", lg.Addrs()[i]))
		health := freePort(t)
		edge := startSluiceEnv(t, []string{
			"SLUICE_GATEWAYS=[" + strings.Join(urls, ", ") + "]",
			fmt.Sprintf("SLUICE_EDGE_NAME=edge-%d", i),
			fmt.Sprintf("SLUICE_INSTANCE=edge-%d", i),
			"SLUICE_TARGETS_DIR=" + targets,
			"SLUICE_SCRAPE_JOB=loadgen",
			"SLUICE_SCRAPE_INTERVAL=1s",
			fmt.Sprintf("SLUICE_OTLP_LISTEN=127.0.0.1:%d", freePort(t)),
			"SLUICE_QUEUE_DIR=" + filepath.Join(dir, fmt.Sprintf("edge-%d", i)),
			fmt.Sprintf("SLUICE_HEALTH_LISTEN=127.0.0.1:%d", health),
			fmt.Sprintf("SLUICE_TELEMETRY_PORT=%d", freePort(t)),
			fmt.Sprintf("SLUICE_STATUS_LISTEN=127.0.0.1:%d", freePort(t)),
		}, "--config", filepath.Join(root, "configs", "edge.yaml"))
		edge.waitHealthy(t, health, 60*time.Second, fmt.Sprintf("edge %d", i))
	}

	start := time.Now().UnixMilli()
	time.Sleep(15 * time.Second)
	victim := gateways[1]
	if err := victim.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exit := <-victim.p.done
	victim.p.done <- exit // for the cleanup, which waits for it too
	t.Log("gateway 1 killed (kill -9); edges keep scraping for 60 s")
	time.Sleep(60 * time.Second)
	victim.p = startSluiceEnv(t, victim.env, "--config", filepath.Join(root, "configs", "gateway.yaml"))
	t.Log("gateway 1 restarted on its queue")
	end := time.Now().UnixMilli() + 5000

	// Every loadgen series, with a sample every scrape from start to end.
	var problems []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		problems = problems[:0]
		stored := backend.stored(t, start, end)
		served := 0
		for k := range stored {
			if !strings.Contains(k, `__name__="up"`) && !strings.Contains(k, `__name__="scrape_`) {
				served++ // not a series the scrape itself adds
			}
		}
		if served != edges*seriesPerEdge {
			problems = append(problems, fmt.Sprintf("the backend holds %d loadgen series, loadgen served %d", served, edges*seriesPerEdge))
		}
		for k, pts := range stored {
			if len(pts) == 0 || pts[0].T > start+2500 || pts[len(pts)-1].T < end-2500 {
				problems = append(problems, fmt.Sprintf("%s: samples cover only part of the run", k))
				continue
			}
			for i := 1; i < len(pts); i++ {
				if gap := pts[i].T - pts[i-1].T; gap > 2500 {
					problems = append(problems, fmt.Sprintf("%s: a gap of %d ms at %d", k, gap, pts[i-1].T))
					break
				}
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(3 * time.Second)
	}
	if len(problems) > 0 {
		t.Errorf("%d problems, first: %s", len(problems), strings.Join(head(problems, 5), "; "))
	}

	// The backend's own view: no sample it had to refuse. Then a probe that
	// it must refuse, to show the counters do count here.
	refusals := []string{"prometheus_tsdb_out_of_order_samples_total", "prometheus_tsdb_out_of_bound_samples_total", "prometheus_tsdb_too_old_samples_total"}
	for name, v := range backendCounters(t, backend.port, refusals...) {
		if v != 0 {
			t.Errorf("backend %s = %v", name, v)
		}
	}
	if log, err := os.ReadFile(backend.log); err == nil {
		for _, bad := range []string{"Out of order sample", "duplicate sample for timestamp", "out of bounds"} {
			if n := strings.Count(strings.ToLower(string(log)), strings.ToLower(bad)); n > 0 {
				t.Errorf("the backend logged %q %d times", bad, n)
			}
		}
	}
	now := time.Now().UnixMilli()
	pushProbe(t, backend.writeURL(), now)
	pushProbe(t, backend.writeURL(), now-1000)
	probed := 0.0
	for _, v := range backendCounters(t, backend.port, refusals...) {
		probed += v
	}
	if probed == 0 {
		t.Error("an out-of-order probe sample left the backend's refusal counters at 0: they would not have shown a problem")
	}
	t.Logf("%d series with a sample every scrape across the 60 s gateway outage; backend refused nothing", edges*seriesPerEdge)
}

// backendCounters sums counters (over their labels) from a Prometheus
// server's own /metrics; a counter vector not yet counted is absent, so 0.
func backendCounters(t *testing.T, port int, names ...string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, n := range names {
		out[n] = 0
	}
	for _, line := range strings.Split(string(body), "\n") {
		for _, n := range names {
			if strings.HasPrefix(line, n+" ") || strings.HasPrefix(line, n+"{") {
				v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				out[n] += v
			}
		}
	}
	return out
}

// startNginx runs Debian's nginx on loopback in front of two gateways,
// hashing on the X-Sluice-Edge header so an edge always reaches the same
// gateway; proxy_next_upstream off makes a push for a gateway that is down
// fail (the edge keeps it and retries) rather than go to the other one.
func startNginx(t *testing.T, dir string, ports ...int) string {
	t.Helper()
	bin := "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("nginx is not installed (`make test` installs Debian's nginx-light): %v", err)
	}
	port := freePort(t)
	ndir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(filepath.Join(ndir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	var servers strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&servers, "    server 127.0.0.1:%d max_fails=0;\n", p)
	}
	conf := writeFile(t, ndir, "nginx.conf", fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  upstream gateways {
    hash $http_x_sluice_edge consistent;
%[2]s    keepalive 16;
  }
  server {
    listen 127.0.0.1:%[3]d;
    client_max_body_size 32m;
    location / {
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream off;
    }
  }
}
`, ndir, servers.String(), port))
	cmd := exec.Command(bin, "-p", ndir, "-c", conf)
	logf, _ := os.Create(filepath.Join(ndir, "stdout.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 10*time.Second, "nginx listening", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", port)
}

// pushProbe writes one sample of the series probe{job="probe"} at t (ms).
func pushProbe(t *testing.T, url string, ts int64) {
	t.Helper()
	postWriteRequest(t, url, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "probe"}, {Name: "job", Value: "probe"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: ts}},
	}}})
}
