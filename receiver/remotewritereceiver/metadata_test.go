package remotewritereceiver

import (
	"bytes"
	"context"
	"net/http"
	"reflect"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// tenantSeen records, per ConsumeMetrics call, the X-Scope-OrgID values in
// the context's client metadata and the data points of the call.
type tenantSeen struct {
	mu    sync.Mutex
	calls []tenantCall
}

type tenantCall struct {
	tenant []string
	points int
}

func (s *tenantSeen) consume(ctx context.Context, md pmetric.Metrics) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, tenantCall{tenant: client.FromContext(ctx).Metadata.Get("x-scope-orgid"), points: md.DataPointCount()})
	return nil
}

// pushTenant pushes a 1.0 request of inputSeries with X-Scope-OrgID set to
// tenant (none when empty).
func pushTenant(t *testing.T, url, tenant string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappyOf(t, requestV1(inputSeries()))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctV1)
	req.Header.Set("Content-Encoding", "snappy")
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("push of tenant %q: status %d", tenant, resp.StatusCode)
	}
}

// With include_metadata (the confighttp server key), each push's headers
// reach the pipeline as client metadata in the context of that push's data,
// which is what lets the batch processor and the exporter keep tenants
// apart; without it, nothing does (the collector's default).
func TestIncludeMetadataCarriesEachPushsHeaders(t *testing.T) {
	for _, include := range []bool{true, false} {
		seen := &tenantSeen{}
		next, err := consumer.NewMetrics(seen.consume)
		if err != nil {
			t.Fatal(err)
		}
		cfg := createDefaultConfig()
		cfg.ServerConfig.IncludeMetadata = include
		url := startReceiver(t, cfg, next)
		pushTenant(t, url, "tenant-a")
		pushTenant(t, url, "tenant-b")
		pushTenant(t, url, "")

		if len(seen.calls) != 3 || seen.calls[0].points == 0 {
			t.Fatalf("include_metadata: %v: calls = %+v, want 3 with data", include, seen.calls)
		}
		points := seen.calls[0].points
		want := []tenantCall{{[]string{"tenant-a"}, points}, {[]string{"tenant-b"}, points}, {nil, points}}
		if !include {
			want = []tenantCall{{nil, points}, {nil, points}, {nil, points}}
		}
		if !reflect.DeepEqual(seen.calls, want) {
			t.Errorf("include_metadata: %v: calls = %+v, want %+v", include, seen.calls, want)
		}
	}
}
