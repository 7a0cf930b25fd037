package scrapeloop

import (
	"errors"
	"io"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// Every spelling the text formats allow gives the same labels through
// labeler.fast as through the parser's path, whichever way fast decides.
func TestFastLabelsMatchTheParser(t *testing.T) {
	for _, f := range []struct{ contentType, body string }{
		{"text/plain; version=0.0.4", promBody},
		{"application/openmetrics-text; version=1.0.0", openMetricsBody},
	} {
		t.Run(f.contentType, func(t *testing.T) { fastMatchesParser(t, f.contentType, f.body) })
	}
}

const promBody = `# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="0.5",x="y"} 1
h_bucket{le="+Inf",} 2
h_sum 1
# TYPE s summary
s{quantile="0.50"} 1
s{quantile="1"} 1
# TYPE c counter
c_total 1
c_total{a="b",b="c"} 1
c_total{ a = "b" } 1
c_total{a="b\"q"} 1
c_total{a="with\\slash",z="new\nline"} 1
c_total{a=""} 1
c_total{job="theirs"} 1
c_total{instance="x",job="theirs"} 1
c_total{"quoted.name"="v"} 1
{"dotted.metric",a="b"} 1
c_total{le="1"} 1
untyped_thing{a="1",a="2"} 3
ns:colon_name{a="1"} 1
`

// openMetricsBody spells what the OpenMetrics parser accepts, which has no
// blanks inside braces; counters may carry _created series and exemplars.
const openMetricsBody = `# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="0.5",x="y"} 1 # {trace_id="a"} 0.4 1.0
h_bucket{le="+Inf"} 2
h_sum 1
h_count 2
# TYPE gh gaugehistogram
gh_bucket{le="1.0"} 1
gh_bucket{le="+Inf"} 1
gh_gsum 1
gh_gcount 1
# TYPE s summary
s{quantile="0.50"} 1
s{quantile="1"} 1
# TYPE c counter
c_total 1
c_total{a="b",b="c"} 1
c_created 1.5e9
c_total{a="b\"q"} 1
c_total{a="with\\slash",z="new\nline"} 1
c_total{a=""} 1
c_total{job="theirs"} 1
c_total{instance="x",job="theirs"} 1
c_total{"quoted.name"="v"} 1
c_total{le="1"} 1
# TYPE i info
i_info{v="1"} 1
# TYPE st stateset
st{st="a"} 1
st{st="b"} 0
# TYPE u unknown
u{a="1",a="2"} 3
ns:colon_name{a="1"} 1
# EOF
`

func fastMatchesParser(t *testing.T, contentType, body string) {
	target := labels.FromStrings("instance", "127.0.0.1:1", "job", "app", "zone", "z1")
	var tl []labels.Label
	target.Range(func(l labels.Label) { tl = append(tl, l) })
	for _, honor := range []bool{false, true} {
		l := &labeler{target: tl, honor: honor, validation: model.UTF8Validation, lb: labels.NewBuilder(labels.EmptyLabels())}
		opts := textparse.ParserOptions{}
		p, err := textparse.New([]byte(body), contentType, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !plainSeries(p, opts) {
			t.Fatalf("%s: the fast path is not taken for this parser", contentType)
		}
		var curType model.MetricType
		fastHits, n := 0, 0
		for {
			et, err := p.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", contentType, err)
			}
			if et == textparse.EntryType {
				_, curType = p.Type()
			}
			if et != textparse.EntrySeries {
				continue
			}
			met, _, _ := p.Series()
			n++
			want, _, _ := l.of(p, met, false, curType)
			got, _, _ := l.of(p, met, true, curType)
			if _, ok := l.fast(met, curType); ok {
				fastHits++
			}
			if !labels.Equal(got, want) {
				t.Errorf("honor_labels=%v %s: fast %s, parser %s", honor, met, got, want)
			}
		}
		if fastHits == 0 || fastHits == n {
			t.Errorf("honor_labels=%v: fast path took %d of %d series; the test needs both ways", honor, fastHits, n)
		}
	}
}
