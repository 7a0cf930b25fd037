package prometheusexporter

import (
	"context"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sluicehq/sluice/exporter/prometheusexporter/internal/metadata"
	"github.com/sluicehq/sluice/internal/promseries"
)

// Accept headers as scrapers send them: Prometheus 2.42 by default, with
// native histograms, and one configured for OpenMetrics alone
// (scrape_protocols: [OpenMetricsText1.0.0]).
const (
	acceptText     = "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	acceptProm     = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	acceptOM       = "application/openmetrics-text;version=1.0.0"
	acceptProtobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"
)

var formats = map[string]string{"text": acceptText, "openmetrics": acceptOM, "protobuf": acceptProtobuf}

// startExporter starts the exporter on a free loopback port and returns it
// with its /metrics URL.
func startExporter(t *testing.T, mut func(*Config)) (*promExporter, string) {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	if mut != nil {
		mut(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := newExporter(cfg, exportertest.NewNopSettings(metadata.Type))
	if err := e.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e, "http://" + e.addr.String() + "/metrics"
}

// scrape GETs url with the Accept header and returns body and content type.
func scrape(t *testing.T, url, accept string) ([]byte, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req) // decompresses gzip transparently
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s: %s", resp.Status, body)
	}
	return body, resp.Header.Get("Content-Type")
}

// exposed is what Prometheus' own parser reads from an exposition: series
// (normalized labels) -> "value@t", and family -> "type|help|unit".
type exposed struct {
	series    map[string]string
	meta      map[string]string
	exemplars map[string][]string
}

func parse(t *testing.T, body []byte, contentType string) exposed {
	t.Helper()
	p, err := textparse.New(body, contentType, labels.NewSymbolTable(), textparse.ParserOptions{KeepClassicOnClassicAndNativeHistograms: true})
	if err != nil {
		t.Fatal(err)
	}
	out := exposed{series: map[string]string{}, meta: map[string]string{}, exemplars: map[string][]string{}}
	metaOf := func(name string) []string {
		parts := strings.Split(out.meta[name], "|")
		if len(parts) != 3 {
			parts = []string{"", "", ""}
		}
		return parts
	}
	setMeta := func(name []byte, i int, v string) {
		parts := metaOf(string(name))
		parts[i] = v
		out.meta[string(name)] = strings.Join(parts, "|")
	}
	for {
		entry, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Prometheus' parser (%s): %v\n%s", contentType, err, body)
		}
		switch entry {
		case textparse.EntryType:
			name, typ := p.Type()
			setMeta(name, 0, string(typ))
		case textparse.EntryHelp:
			name, help := p.Help()
			setMeta(name, 1, string(help))
		case textparse.EntryUnit:
			name, unit := p.Unit()
			setMeta(name, 2, string(unit))
		case textparse.EntrySeries, textparse.EntryHistogram:
			var ls labels.Labels
			p.Labels(&ls)
			var ts *int64
			var v string
			if entry == textparse.EntrySeries {
				var f float64
				_, ts, f = p.Series()
				v = formatValue(f)
			} else {
				_, hts, h, fh := p.Histogram()
				ts = hts
				if h != nil {
					v = "native " + h.String()
				} else {
					v = "native " + fh.String()
				}
			}
			if ts != nil {
				v += "@" + strconv.FormatInt(*ts, 10)
			}
			key := normalize(ls)
			if _, dup := out.series[key]; dup {
				t.Errorf("%s: exposed twice", key)
			}
			out.series[key] = v
			var e exemplar.Exemplar
			for p.Exemplar(&e) {
				out.exemplars[key] = append(out.exemplars[key], e.Labels.String()+" "+formatValue(e.Value))
			}
		}
	}
	return out
}

func formatValue(f float64) string {
	if value.IsStaleNaN(f) {
		return "stale"
	}
	if math.IsNaN(f) {
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// normalize renders labels with le and quantile in one float form: the
// formats write 1 as "1" or "1.0", which are the same bound.
func normalize(ls labels.Labels) string {
	b := labels.NewBuilder(ls)
	for _, n := range []string{model.BucketLabel, model.QuantileLabel} {
		if v := ls.Get(n); v != "" {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				b.Set(n, labels.FormatOpenMetricsFloat(f))
			}
		}
	}
	return b.Labels().String()
}

// walked is the oracle: the series Walk gives for md with the exporter's
// options — what remote_write would send — newest point per series, stale
// series and delta points left out; native histograms as the protobuf
// parser reads them. timestamps false leaves the times out.
func walked(t *testing.T, md pmetric.Metrics, opts promseries.Options, targetInfo, timestamps bool) map[string]string {
	t.Helper()
	type pt struct {
		t int64
		v string
	}
	latest := map[string]pt{}
	add := func(s *promseries.Sample) error {
		if s.Delta {
			return nil
		}
		k := normalize(labels.New(s.Labels...))
		v := formatValue(s.V)
		if s.H != nil {
			if value.IsStaleNaN(s.H.Sum) {
				v = "stale"
			} else {
				v = "native " + s.H.String()
			}
		}
		if old, ok := latest[k]; !ok || s.T >= old.t {
			latest[k] = pt{s.T, v}
		}
		return nil
	}
	if _, err := promseries.Walk(md, opts, add); err != nil {
		t.Fatal(err)
	}
	if targetInfo {
		if err := promseries.TargetInfo(md, add); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]string{}
	for k, p := range latest {
		if p.v == "stale" {
			continue
		}
		out[k] = p.v
		if timestamps {
			out[k] += "@" + strconv.FormatInt(p.t, 10)
		}
	}
	return out
}

// diff lists the differences between two series maps, sorted.
func diff(want, got map[string]string) []string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			d = append(d, "missing "+k+" "+w)
		} else if g != w {
			d = append(d, k+": got "+g+", want "+w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "extra "+k+" "+g)
		}
	}
	sort.Strings(d)
	return d
}
