package remotewritereceiver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// bodies is one push as 1.0 and as 2.0: each series with one sample.
func bodies(t *testing.T, series ...labels.Labels) map[string][]byte {
	t.Helper()
	v1 := &prompb.WriteRequest{}
	st := writev2.NewSymbolTable()
	v2 := &writev2.Request{}
	for _, ls := range series {
		v1.Timeseries = append(v1.Timeseries, prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil), Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}})
		v2.Timeseries = append(v2.Timeseries, writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(ls, nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}})
	}
	v2.Symbols = st.Symbols()
	return map[string][]byte{ctV1: snappyOf(t, v1), ctV2: snappyOf(t, v2)}
}

// manyLabels is a series named up with n labels in all.
func manyLabels(n int) labels.Labels {
	kv := []string{"__name__", "up"}
	for i := 1; i < n; i++ {
		kv = append(kv, fmt.Sprintf("l%03d", i), "v")
	}
	return labels.FromStrings(kv...)
}

// A push over a limit is refused as a whole with the limit named and the
// offending series shown cut short, counted by the limit's key, and nothing
// of it reaches the pipeline: for 1.0 and 2.0, at the default limits unless
// the case sets its own.
func TestLimits(t *testing.T) {
	up := labels.FromStrings("__name__", "up", "job", "a")
	long := strings.Repeat("x", 8<<20) // the 8 MiB label value of issue 15
	for _, tc := range []struct {
		name    string
		set     func(*Limits)
		series  []labels.Labels
		key     string
		status  int
		message []string
	}{
		{name: "label_limit", series: []labels.Labels{up, manyLabels(DefaultLabelLimit + 1)},
			key: "label_limit", status: http.StatusBadRequest,
			message: []string{`timeseries 1: series {__name__="up", l001="v", l002="v", `, `, …} has more than label_limit (128) labels`}},
		{name: "label_limit at the limit is taken", series: []labels.Labels{manyLabels(DefaultLabelLimit)}, status: http.StatusNoContent},
		{name: "label_name_length_limit", series: []labels.Labels{labels.FromStrings("__name__", "up", strings.Repeat("n", 2000), "v")},
			key: "label_name_length_limit", status: http.StatusBadRequest,
			message: []string{`timeseries 0: series {__name__="up", …}: label name "` + strings.Repeat("n", 64) + `"…(2000 bytes) is 2000 bytes long, over label_name_length_limit (1024)`}},
		{name: "label_value_length_limit", series: []labels.Labels{up, labels.FromStrings("__name__", "up", "big", long)},
			key: "label_value_length_limit", status: http.StatusBadRequest,
			message: []string{`timeseries 1: series {__name__="up", …}: the value of label "big" is 8388608 bytes long, over label_value_length_limit (65536)`}},
		{name: "label_value_length_limit set low", set: func(l *Limits) { l.LabelValueLengthLimit = 3 }, series: []labels.Labels{labels.FromStrings("__name__", "up", "job", "abcd")},
			key: "label_value_length_limit", status: http.StatusBadRequest,
			message: []string{`the value of label "job" is 4 bytes long, over label_value_length_limit (3)`}},
		{name: "no limits", set: func(l *Limits) { *l = Limits{} }, series: []labels.Labels{manyLabels(300), labels.FromStrings("__name__", "up", "big", long)},
			status: http.StatusNoContent},
		{name: "max_series_per_request", set: func(l *Limits) { l.MaxSeriesPerRequest = 2 }, series: []labels.Labels{up, up, up},
			key: "max_series_per_request", status: http.StatusBadRequest,
			message: []string{"the push holds 3 series, over max_series_per_request (2); send smaller pushes"}},
		{name: "max_request_memory", set: func(l *Limits) { l.MaxRequestMemory = 2000 }, series: []labels.Labels{up, up, up, up, up, up, up, up, up, up},
			key: "max_request_memory", status: http.StatusRequestEntityTooLarge,
			message: []string{"the push would take more than max_request_memory (2000 bytes) once decoded"}},
	} {
		for ct, body := range bodies(t, tc.series...) {
			t.Run(tc.name+"/"+ct[strings.LastIndex(ct, "=")+1:], func(t *testing.T) {
				cfg := createDefaultConfig()
				if tc.set != nil {
					tc.set(&cfg.Limits)
				}
				cfg.ServerConfig.MaxRequestBodySize = 64 << 20
				sink := new(consumertest.MetricsSink)
				url, tel := startReceiverTel(t, cfg, sink)
				status, _, msg := push(t, url, http.MethodPost, ct, "snappy", body)
				t.Logf("%d %s", status, cut(msg))
				if status != tc.status {
					t.Fatalf("answer %d %q, want %d", status, cut(msg), tc.status)
				}
				for _, m := range tc.message {
					if !strings.Contains(msg, m) {
						t.Fatalf("answer %q, want it to contain %q", cut(msg), m)
					}
				}
				if len(msg) > 1024 {
					t.Fatalf("the answer is %d bytes: the series is not cut short", len(msg))
				}
				if status == http.StatusNoContent {
					if sink.DataPointCount() != len(tc.series) {
						t.Fatalf("%d data points reached the pipeline, want %d", sink.DataPointCount(), len(tc.series))
					}
					return
				}
				if sink.DataPointCount() != 0 {
					t.Fatalf("a refused push reached the pipeline: %d data points", sink.DataPointCount())
				}
				if n := counted(t, tel, "otelcol_remote_write_receiver_over_limit_requests", "limit", tc.key); n != 1 {
					t.Fatalf("over_limit_requests{limit=%q} = %d, want 1", tc.key, n)
				}
			})
		}
	}
}

func cut(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
