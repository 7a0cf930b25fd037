// Package comptest holds what the tests of Sluice's components share:
// reading a component's entry of testdata/config.yaml as the collector does,
// summing its telemetry counters, and polling for a condition.
package comptest

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// LoadConfig reads the entry id (as "type" or "type/name") of
// testdata/config.yaml into cfg, a default config, the way the collector
// does: unmarshal over the defaults, then validate. A file that cannot be
// read fails the test; the unmarshal or validation error is returned.
func LoadConfig(t testing.TB, id string, cfg component.Config) error {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cid component.ID
	if err := cid.UnmarshalText([]byte(id)); err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub(cid.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unmarshal(cfg); err != nil {
		return err
	}
	return confmap.Validate(cfg)
}

// Counter sums the int64 counter name of tel over the points whose
// attributes include want; 0 when nothing was recorded yet.
func Counter(tel *componenttest.Telemetry, name string, want ...attribute.KeyValue) int64 {
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		ok := true
		for _, kv := range want {
			if v, found := dp.Attributes.Value(kv.Key); !found || v != kv.Value {
				ok = false
			}
		}
		if ok {
			n += dp.Value
		}
	}
	return n
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// AppendIncompressible appends n gauges big_0 … big_<n-1> at ts to ms, each
// with a random 1 KiB "pad" attribute, so that requests built from them do
// not compress and a small queue fills after a known number of points.
func AppendIncompressible(ms pmetric.MetricSlice, n int, ts pcommon.Timestamp) {
	for i := range n {
		m := ms.AppendEmpty()
		m.SetName(fmt.Sprintf("big_%d", i))
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(1)
		b := make([]byte, 512)
		for j := range b {
			b[j] = byte(rand.IntN(256))
		}
		dp.Attributes().PutStr("pad", hex.EncodeToString(b))
	}
}
