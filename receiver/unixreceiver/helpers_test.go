package unixreceiver

import (
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/sluicehq/sluice/internal/promseries"
)

const childEnv = "UNIXRECEIVER_TEST_CHILD"

// isolated runs the calling test again in a fresh process of the test
// binary and reports true to the parent, which then returns: node_exporter's
// settings are per process, and each of these tests needs its own.
func isolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in its own process:\n%s", out)
	if err != nil {
		t.Fatalf("%s failed in its own process: %v", t.Name(), err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s did not run in its own process", t.Name())
	}
	return true
}

// collectOnce sets up node_exporter's collectors for cfg (once per process)
// and collects.
func collectOnce(t testing.TB, cfg *Config) pmetric.Metrics {
	t.Helper()
	r := newTestReceiver(t, cfg)
	md, err := r.collectMetrics()
	if err != nil {
		t.Logf("collection reported: %v", err)
	}
	return md
}

func newTestReceiver(t testing.TB, cfg *Config) *unixReceiver {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := newReceiver(cfg, receiverSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gatherer(cfg.flags(), len(cfg.SetCollectors) > 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.g, r.instance = g, "testhost"
	return r
}

// seriesOf walks md as the exporter sends it: name → label-name sets, and
// series (labels string without job and instance) → value.
func seriesOf(t testing.TB, md pmetric.Metrics) (map[string]map[string]bool, map[string]float64) {
	t.Helper()
	names, values := map[string]map[string]bool{}, map[string]float64{}
	if _, err := promseries.Walk(md, promseries.Options{}, func(s *promseries.Sample) error {
		// Walk's labels live until the callback returns: copy what is kept.
		all := labels.New(s.Labels...).Map()
		for k, v := range all {
			all[strings.Clone(k)] = strings.Clone(v)
		}
		ls := labels.New(s.Labels...).DropMetricName()
		var lnames []string
		ls.Range(func(l labels.Label) {
			if l.Name != "job" && l.Name != "instance" {
				lnames = append(lnames, strings.Clone(l.Name))
			}
		})
		n := strings.Clone(labels.New(s.Labels...).Get("__name__"))
		if names[n] == nil {
			names[n] = map[string]bool{}
		}
		names[n][strings.Join(lnames, ",")] = true
		values[seriesKey(all)] = s.V
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names, values
}

// seriesKey renders a series without job and instance.
func seriesKey(ls map[string]string) string {
	var parts []string
	for k, v := range ls {
		if k != "job" && k != "instance" && k != "__name__" {
			parts = append(parts, k+"="+v)
		}
	}
	sort.Strings(parts)
	return ls["__name__"] + "{" + strings.Join(parts, ",") + "}"
}

type dtoFamily = dto.MetricFamily

// value is the value of a counter, gauge or untyped metric.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

func receiverSettings() receiver.Settings { return receivertest.NewNopSettings(receivertest.NopType) }
