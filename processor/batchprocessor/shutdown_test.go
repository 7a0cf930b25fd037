package batchprocessor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/exporter/remotewriteexporter"
	"github.com/sluicehq/sluice/internal/comptest"
)

// bigGauges is n gauge points whose label values are random (so the
// exporter's requests do not compress), about 1 KiB each.
func bigGauges(n, round int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	comptest.AppendIncompressible(ms, n, pcommon.Timestamp(1e15+1e6*int64(round)))
	return md
}

// The collector shuts processors down before exporters, with a context
// that has no deadline. With the remote_write exporter behind, its queue
// full (full_policy: block) and the backend down, the batch processor's
// export blocks in the queue's Append: Shutdown still returns within its
// bound, having cancelled that export, and the caller waiting for the
// result gets an error (its data is not acknowledged upstream).
func TestShutdownWithABlockedExportIsBounded(t *testing.T) {
	ecfg := remotewriteexporter.NewFactory().CreateDefaultConfig().(*remotewriteexporter.Config)
	ecfg.ClientConfig.Endpoint = "http://127.0.0.1:1/api/v1/write" // nothing listens: the backend is down
	ecfg.Shards = 1
	ecfg.Queue.Directory = t.TempDir()
	ecfg.Queue.MaxSize = 4 << 20
	ecfg.Queue.FullPolicy = "block"
	eset := exportertest.NewNopSettings(component.MustNewType("remote_write"))
	exp, err := remotewriteexporter.NewFactory().CreateMetrics(context.Background(), eset, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = exp.Shutdown(ctx)
	}()

	r := start(t, exp, func(cfg *Config) {
		cfg.WaitForResult = true
		cfg.Timeout = 10 * time.Millisecond
	})
	r.p.shutdownBound = 500 * time.Millisecond
	r.done = true // this test shuts it down itself

	// Feed ~0.4 MiB at a time until one call does not come back: the
	// queue is full and the export blocks.
	blocked := make(chan error, 1)
	for round := 0; ; round++ {
		if round > 40 {
			t.Fatal("40 rounds (16 MiB) into a 4 MiB queue and nothing blocked")
		}
		res := make(chan error, 1)
		go func() { res <- r.p.ConsumeMetrics(context.Background(), bigGauges(400, round)) }()
		select {
		case err := <-res:
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			continue
		case <-time.After(time.Second):
			go func() { blocked <- <-res }()
		}
		break
	}

	began := time.Now()
	err = r.p.Shutdown(context.Background())
	took := time.Since(began)
	if took > r.p.shutdownBound+exportGrace {
		t.Fatalf("Shutdown took %s, bound %s", took, r.p.shutdownBound)
	}
	if err == nil || !strings.Contains(err.Error(), "not yet exported") {
		t.Fatalf("Shutdown error %v, want it to say data was not exported", err)
	}
	select {
	case err := <-blocked:
		if err == nil {
			t.Fatal("the blocked caller got nil: its data would count as delivered")
		}
		if !errors.Is(err, context.Canceled) {
			t.Logf("blocked caller's error: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked caller never returned")
	}
	t.Logf("Shutdown returned after %s: %v", took.Round(time.Millisecond), err)
}
