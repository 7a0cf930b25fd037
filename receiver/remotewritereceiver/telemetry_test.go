package remotewritereceiver

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/sluicehq/sluice/internal/comptest"
	"github.com/sluicehq/sluice/receiver/remotewritereceiver/internal/metadatatest"
)

// Every answer is counted by code and protocol; what reached the pipeline is
// counted in the collector's standard receiver metrics exactly as the
// pipeline saw it (accepted), and what it refused as refused.
func TestTelemetryCountsPushesByCodeAndProtocol(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	var refusing atomic.Bool
	next, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		if refusing.Load() {
			return errors.New("queue full")
		}
		return sink.ConsumeMetrics(ctx, md)
	})
	if err != nil {
		t.Fatal(err)
	}
	url, tel := startReceiverTel(t, createDefaultConfig(), next)
	v1, v2 := snappyOf(t, requestV1(inputSeries())), snappyOf(t, requestV2(inputSeries()))

	for _, p := range []struct {
		contentType, encoding string
		body                  []byte
		want                  int
	}{
		{ctV1, "snappy", v1, http.StatusNoContent},
		{ctV2, "snappy", v2, http.StatusNoContent},
		{ctV2, "snappy", v2, http.StatusNoContent},
		{ctV2, "gzip", v2, http.StatusUnsupportedMediaType}, // refused by the HTTP server's decoder
		{"application/x-protobuf;proto=io.prometheus.write.v3.Request", "snappy", v2, http.StatusUnsupportedMediaType},
		{ctV1, "snappy", []byte("not snappy"), http.StatusBadRequest},
	} {
		if status, _, body := push(t, url, http.MethodPost, p.contentType, p.encoding, p.body); status != p.want {
			t.Fatalf("%s %s: %d %s, want %d", p.contentType, p.encoding, status, body, p.want)
		}
	}
	accepted := int64(sink.DataPointCount())
	refusing.Store(true)
	if status, _, body := push(t, url, http.MethodPost, ctV1, "snappy", v1); status != http.StatusServiceUnavailable {
		t.Fatalf("refused by the pipeline: %d %s, want 503", status, body)
	}

	id := attribute.String("receiver", "remote_write")
	point := func(n int64, code, protocol string) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Value: n, Attributes: attribute.NewSet(id, attribute.String("code", code), attribute.String("protocol", protocol))}
	}
	metadatatest.AssertEqualRemoteWriteReceiverRequests(t, tel, []metricdata.DataPoint[int64]{
		point(1, "204", "1.0"),
		point(2, "204", "2.0"),
		point(1, "415", "2.0"),
		point(1, "415", "unknown"),
		point(1, "400", "1.0"),
		point(1, "503", "1.0"),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	// The collector's standard receiver metrics, as the otlp receiver
	// reports them: receiver and transport.
	std := []attribute.KeyValue{id, attribute.String("transport", "http")}
	if accepted == 0 {
		t.Fatal("nothing reached the pipeline")
	}
	if got := comptest.Counter(tel, "otelcol_receiver_accepted_metric_points", std...); got != accepted {
		t.Errorf("otelcol_receiver_accepted_metric_points = %d, want the %d points the pipeline took", got, accepted)
	}
	// The refused push held the same points as the first 1.0 push.
	if got, want := comptest.Counter(tel, "otelcol_receiver_refused_metric_points", std...), accepted/3; got != want {
		t.Errorf("otelcol_receiver_refused_metric_points = %d, want %d", got, want)
	}
}
