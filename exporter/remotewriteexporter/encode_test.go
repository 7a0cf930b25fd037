package remotewriteexporter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/comptest"
)

// The golden requests: what every metric type becomes on the wire, decoded
// with Prometheus' own prompb types. Stale markers carry the StaleNaN bit
// pattern 0x7ff0000000000002; external labels join every series.
var goldenV1 = []string{
	`meta gc_seconds SUMMARY "" ""`,
	`meta gone GAUGE "" ""`,
	`meta latency HISTOGRAM "" ""`,
	`meta reqs_total COUNTER "Requests." ""`,
	`meta rpc_seconds HISTOGRAM "" ""`,
	`meta temp GAUGE "Temperature." ""`,
	`{__name__="gc_seconds", cluster="eu", instance="host:9100", job="api", quantile="0.5"} 0.1@1000`,
	`{__name__="gc_seconds_count", cluster="eu", instance="host:9100", job="api"} 7@1000`,
	`{__name__="gc_seconds_sum", cluster="eu", instance="host:9100", job="api"} 2@1000`,
	`{__name__="gone", cluster="eu", instance="host:9100", job="api"} NaN(0x7ff0000000000002)@1000`,
	`{__name__="latency", cluster="eu", instance="host:9100", job="api"} {count:3, sum:6, [-0,0]:1, (1,2]:1, (2,4]:1}@1000`,
	`{__name__="reqs_total", cluster="eu", instance="host:9100", job="api"} 10@1000 # {trace_id="abc"} 1@900`,
	`{__name__="rpc_seconds_bucket", cluster="eu", instance="host:9100", job="api", le="+Inf"} 4@1000`,
	`{__name__="rpc_seconds_bucket", cluster="eu", instance="host:9100", job="api", le="0.5"} 1@1000`,
	`{__name__="rpc_seconds_bucket", cluster="eu", instance="host:9100", job="api", le="1.0"} 3@1000`,
	`{__name__="rpc_seconds_count", cluster="eu", instance="host:9100", job="api"} 4@1000`,
	`{__name__="rpc_seconds_sum", cluster="eu", instance="host:9100", job="api"} 5.5@1000`,
	`{__name__="temp", cluster="eu", instance="host:9100", job="api", room="a"} 21.5@1000`,
}

var goldenV2 = []string{
	`{__name__="gc_seconds", cluster="eu", instance="host:9100", job="api", quantile="0.5"} 0.1@1000(st 0) meta summary "" ""`,
	`{__name__="gc_seconds_count", cluster="eu", instance="host:9100", job="api"} 7@1000(st 0) meta summary "" ""`,
	`{__name__="gc_seconds_sum", cluster="eu", instance="host:9100", job="api"} 2@1000(st 0) meta summary "" ""`,
	`{__name__="gone", cluster="eu", instance="host:9100", job="api"} NaN(0x7ff0000000000002)@1000(st 0) meta gauge "" ""`,
	`{__name__="latency", cluster="eu", instance="host:9100", job="api"} {count:3, sum:6, [-0,0]:1, (1,2]:1, (2,4]:1}@1000(st 0) meta histogram "" ""`,
	`{__name__="reqs_total", cluster="eu", instance="host:9100", job="api"} 10@1000(st 500) # {trace_id="abc"} 1@900 meta counter "Requests." ""`,
	`{__name__="rpc_seconds_bucket", cluster="eu", instance="host:9100", job="api", le="+Inf"} 4@1000(st 0) meta histogram "" ""`,
	`{__name__="rpc_seconds_bucket", cluster="eu", instance="host:9100", job="api", le="0.5"} 1@1000(st 0) meta histogram "" ""`,
	`{__name__="rpc_seconds_bucket", cluster="eu", instance="host:9100", job="api", le="1.0"} 3@1000(st 0) meta histogram "" ""`,
	`{__name__="rpc_seconds_count", cluster="eu", instance="host:9100", job="api"} 4@1000(st 0) meta histogram "" ""`,
	`{__name__="rpc_seconds_sum", cluster="eu", instance="host:9100", job="api"} 5.5@1000(st 0) meta histogram "" ""`,
	`{__name__="temp", cluster="eu", instance="host:9100", job="api", room="a"} 21.5@1000(st 0) meta gauge "Temperature." ""`,
}

func TestGoldenEncoding(t *testing.T) {
	for _, msg := range []string{MessageV1, MessageV2} {
		t.Run(msg, func(t *testing.T) {
			c, url := startCapture(t, nil)
			r := startExporter(t, url, "", func(cfg *Config) {
				cfg.ProtobufMessage = msg
				cfg.Shards = 1
				cfg.ExternalLabels = map[string]string{"cluster": "eu"}
			})
			if err := r.exp.ConsumeMetrics(context.Background(), everyType()); err != nil {
				t.Fatal(err)
			}
			comptest.WaitFor(t, 5*time.Second, "one request", func() bool { return len(c.requests()) == 1 })
			req := c.requests()[0]
			want := map[string]string{
				"Content-Encoding":                  "snappy",
				"Content-Type":                      "application/x-protobuf;proto=" + msg,
				"User-Agent":                        "sluice/test",
				"X-Prometheus-Remote-Write-Version": map[string]string{MessageV1: "0.1.0", MessageV2: "2.0.0"}[msg],
			}
			for k, v := range want {
				if got := req.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			var got []string
			golden := goldenV1
			if msg == MessageV1 {
				got = renderV1(t, req.body)
			} else {
				got = renderV2(t, req.body)
				golden = goldenV2
			}
			if strings.Join(got, "\n") != strings.Join(golden, "\n") {
				t.Errorf("request differs from the golden one\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(golden, "\n"))
			}
		})
	}
}
