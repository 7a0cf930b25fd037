// Command gwbench measures gateways: remote write pushed in as fast as the
// gateway takes it, remote write out to bench/sink. It runs Sluice
// (configs/gateway.yaml) and vmagent (the current release, v1.151.0, that
// bench/reference/install builds; with -vmagent-1.79 also Debian's 1.79) one
// after the other on the same pushed requests and prints, for each, samples per second accepted
// and delivered, CPU seconds per million samples, samples per CPU-second
// (per core) and peak RSS, with the ratio of Sluice to vmagent.
//
//	go run ./bench/cmd/gwbench -seconds 20
//
// With -cpuprofile FILE, Sluice runs with the pprof extension and a CPU
// profile of it over the push is written to FILE (go tool pprof FILE).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sluicehq/sluice/bench/scenario"
	"github.com/sluicehq/sluice/bench/sink"
	"github.com/sluicehq/sluice/bench/systems"
	"github.com/sluicehq/sluice/internal/freeport"
)

var cpuProfile string

func main() {
	seconds := flag.Int("seconds", 20, "how long to push to each gateway")
	pushers := flag.Int("pushers", 4, "concurrent pushers (each owns a slice of the series)")
	series := flag.Int("series", 100000, "distinct series")
	perReq := flag.Int("samples-per-request", 2000, "samples per pushed request")
	sluiceBin := flag.String("sluice", "bin/sluice", "the sluice binary")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of Sluice over the push to this file")
	old := flag.Bool("vmagent-1.79", false, "also run Debian's vmagent 1.79, as a second row")
	flag.Parse()

	order := []string{"sluice", "vmagent"}
	if *old {
		order = append(order, "vmagent-1.79")
	}
	results := map[string]result{}
	for _, sys := range order {
		r, err := run(sys, *sluiceBin, *seconds, *pushers, *series, *perReq)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gwbench: %s: %v\n", sys, err)
			os.Exit(1)
		}
		results[sys] = r
	}
	fmt.Printf("\ngateway: remote write in -> remote write out, %d series, %d-sample requests, %d pushers, %d s each\n\n", *series, *perReq, *pushers, *seconds)
	fmt.Printf("%-12s %14s %14s %12s %18s %10s\n", "system", "accepted/s", "delivered/s", "CPU s/M", "samples/CPU-second", "peak RSS")
	for _, sys := range order {
		r := results[sys]
		fmt.Printf("%-12s %14.0f %14.0f %12.3f %18.0f %7d MiB\n", sys, r.acceptedPerSec(), r.deliveredPerSec(), r.cpuPerM(), r.perCore(), r.rss>>20)
	}
	s := results["sluice"]
	for _, sys := range order[1:] {
		v := results[sys]
		fmt.Printf("\nsluice / %s: samples per CPU-second %.2f, CPU per sample %.2f, peak RSS %.2f\n",
			sys, s.perCore()/v.perCore(), s.cpuPerM()/v.cpuPerM(), float64(s.rss)/float64(v.rss))
	}
}

type result struct {
	accepted, delivered int64
	pushSeconds         float64
	cpu                 float64
	rss                 int64
}

func (r result) acceptedPerSec() float64  { return float64(r.accepted) / r.pushSeconds }
func (r result) deliveredPerSec() float64 { return float64(r.delivered) / r.pushSeconds }
func (r result) cpuPerM() float64         { return r.cpu / (float64(r.delivered) / 1e6) }
func (r result) perCore() float64         { return float64(r.delivered) / r.cpu }

func freeAddr() string {
	port, err := freeport.Get()
	if err != nil {
		panic(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func run(sys, sluiceBin string, seconds, pushers, series, perReq int) (result, error) {
	var res result
	var pprofAddr string
	sk := sink.New()
	sinkAddr, stop, err := sk.Start("127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer stop()
	dir, err := os.MkdirTemp("", "gwbench-"+sys)
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	listen := freeAddr()
	sinkURL := "http://" + sinkAddr + "/api/v1/write"
	var cmd *exec.Cmd
	switch sys {
	case "sluice":
		args := []string{"--config", "configs/gateway.yaml"}
		if cpuProfile != "" {
			pprofAddr = freeAddr()
			args = append(args, "--config", "yaml:extensions::pprof::endpoint: "+pprofAddr,
				"--config", "yaml:service::extensions: [health_check, pprof]")
		}
		cmd = exec.Command(sluiceBin, args...)
		cmd.Env = append(os.Environ(), "SLUICE_LISTEN="+listen, "SLUICE_OTLP_LISTEN="+freeAddr(),
			"SLUICE_REMOTE_WRITE_URL="+sinkURL, "SLUICE_QUEUE_DIR="+filepath.Join(dir, "queue"),
			"SLUICE_HEALTH_LISTEN="+freeAddr(), "SLUICE_TELEMETRY_PORT=0")
	case "vmagent", "vmagent-1.79":
		bin, err := systems.VmagentBinary(sys == "vmagent-1.79")
		if err != nil {
			return res, err
		}
		cmd = exec.Command(bin, "-httpListenAddr="+listen, "-remoteWrite.url="+sinkURL,
			"-remoteWrite.tmpDataPath="+filepath.Join(dir, "queue"), "-loggerLevel=ERROR")
	}
	logf, _ := os.Create(filepath.Join(dir, sys+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	url := "http://" + listen + "/api/v1/write"
	if err := waitListening(listen, 30*time.Second); err != nil {
		return res, err
	}

	// Each pusher owns series [p*n, (p+1)*n) and pushes them round after
	// round, a newer timestamp each round, so every series stays in order.
	per := series / pushers
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
	defer cancel()
	profiled := make(chan error, 1)
	if pprofAddr != "" {
		go func() { profiled <- profile(pprofAddr, seconds-1, cpuProfile) }()
	} else {
		profiled <- nil
	}
	cpu0, _, _ := scenario.ProcessCPU(cmd.Process.Pid)
	start := time.Now()
	var accepted atomic.Int64
	var wg sync.WaitGroup
	var pushErr atomic.Value
	for p := 0; p < pushers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for round := int64(0); ctx.Err() == nil; round++ {
				for first := p * per; first < (p+1)*per && ctx.Err() == nil; first += perReq {
					last := min(first+perReq, (p+1)*per)
					err := push(ctx, client, url, request(first, last, 1_700_000_000_000+round*1000))
					if err != nil {
						if ctx.Err() == nil {
							pushErr.Store(err)
						}
						return
					}
					accepted.Add(int64(last - first))
				}
			}
		}()
	}
	wg.Wait()
	res.pushSeconds = time.Since(start).Seconds()
	res.accepted = accepted.Load()
	if err := <-profiled; err != nil {
		return res, fmt.Errorf("cpu profile: %v", err)
	}
	if e := pushErr.Load(); e != nil {
		return res, fmt.Errorf("push: %v", e)
	}
	// Let it deliver what it accepted (up to a minute).
	deadline := time.Now().Add(time.Minute)
	for int64(sk.Stats().RemoteWrite.Samples) < res.accepted && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	cpu1, rss, err := scenario.ProcessCPU(cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	res.cpu, res.rss = cpu1-cpu0, rss
	res.delivered = int64(sk.Stats().RemoteWrite.Samples)
	fmt.Fprintf(os.Stderr, "%s: accepted %d, delivered %d in %.1f s\n", sys, res.accepted, res.delivered, res.pushSeconds)
	return res, nil
}

// profile fetches a CPU profile of the given length from a pprof extension.
func profile(addr string, seconds int, file string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(seconds, 1)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof answered %s", resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// request is a remote write 1.0 request of series [from, to) at time t:
// ten labels each, as a scraped series has.
func request(from, to int, t int64) []byte {
	req := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, to-from)}
	for i := from; i < to; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: fmt.Sprintf("app_metric_%d", i%500)},
				{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9100", i/50000, i%250)},
				{Name: "job", Value: "node"},
				{Name: "mode", Value: "user"},
				{Name: "series", Value: fmt.Sprint(i)},
			},
			Samples: []prompb.Sample{{Value: float64(t % 9973), Timestamp: t}},
		})
	}
	raw, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	return snappy.Encode(nil, raw)
}

// push sends body until the gateway takes it (2xx); 503 and 429 are its
// push back, answered by trying again.
func push(ctx context.Context, c *http.Client, url string, body []byte) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond) // pushed back: try again
	}
}

func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, timeout)
}
