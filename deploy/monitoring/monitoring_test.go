package monitoring

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestDashboard: valid JSON, panels with unique ids, every panel reads the
// ${datasource} variable (so an import asks for the backend), every query
// parses and selects metrics by name.
func TestDashboard(t *testing.T) {
	d, err := ReadDashboard()
	if err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard needs a title and a uid, got %q, %q", d.Title, d.UID)
	}
	ids := map[int]string{}
	for _, p := range d.Panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource is not ${datasource}", p.Title)
		}
	}
	qs, err := DashboardQueries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if names, err := MetricNames(q.Expr); err != nil {
			t.Errorf("%s: %q: %v", q.Where, q.Expr, err)
		} else if len(names) == 0 {
			t.Errorf("%s: %q reads no metric", q.Where, q.Expr)
		}
	}
	t.Logf("%d panels, %d queries", len(d.Panels), len(qs))
}

// TestMetricNamesParse: the parser really rejects broken PromQL and finds
// the names through functions, aggregations, binary operators and
// Grafana's variables.
func TestMetricNamesParse(t *testing.T) {
	names, err := MetricNames(`sum by (exporter) (rate(a_b{job=~"$job"}[$__rate_interval])) / on() group_left c or vector(0)`)
	if err != nil || strings.Join(names, ",") != "a_b,c" {
		t.Errorf("got %v, %v; want [a_b c]", names, err)
	}
	if _, err := MetricNames(`sum(rate(a[5m])`); err == nil {
		t.Error("an unbalanced parenthesis parsed")
	}
	if _, err := MetricNames(`{job="x"}`); err == nil || !strings.Contains(err.Error(), "no metric name") {
		t.Errorf("a selector without a name: %v", err)
	}
}

// TestUsesOnlyDocumentedMetrics: every metric the dashboard and the rules
// read is one Sluice documents.
func TestUsesOnlyDocumentedMetrics(t *testing.T) {
	used, err := Uses()
	if err != nil {
		t.Fatal(err)
	}
	known := documentedNames(t)
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !known[n] {
			t.Errorf("metric %s (%s) is documented nowhere in Sluice", n, strings.Join(used[n], ", "))
		}
	}
	rules, err := RuleQueries()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) == 0 {
		t.Fatal("no rules in sluice-alerts.yaml")
	}
	t.Logf("%d metrics, %d rules", len(names), len(rules))
}

// Names in docs: `otelcol_...` in backquotes (READMEs' tables, where a
// histogram's line says "histogram"), or an mdatagen heading "### otelcol_..."
// whose table says Histogram. A histogram's series add _bucket, _sum, _count.
var (
	docName     = regexp.MustCompile("`(otelcol_[a-z0-9_]+|up)[`{]")
	docHeading  = regexp.MustCompile(`^### (otelcol_[a-z0-9_]+)\s*$`)
	isHistogram = regexp.MustCompile(`(?i)\bhistogram\b`)
)

// documentedNames is every metric name Sluice's docs give: the component
// READMEs and documentation.md files, and this directory's README.md (which
// lists the collector core's metrics the dashboard reads, and `up`).
func documentedNames(t *testing.T) map[string]bool {
	t.Helper()
	files := []string{"README.md"}
	for _, dir := range []string{"receiver", "processor", "exporter", "extension"} {
		for _, f := range []string{"README.md", "documentation.md"} {
			m, _ := filepath.Glob(filepath.Join("..", "..", dir, "*", f))
			files = append(files, m...)
		}
	}
	known := map[string]bool{}
	add := func(name string, histogram bool) {
		known[name] = true
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[name+s] = true
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		heading := ""
		for _, line := range strings.Split(string(b), "\n") {
			if m := docHeading.FindStringSubmatch(line); m != nil {
				heading = m[1]
				add(heading, false)
				continue
			}
			if strings.HasPrefix(line, "#") {
				heading = ""
			}
			if heading != "" && strings.Contains(line, "| Histogram |") {
				add(heading, true)
			}
			for _, m := range docName.FindAllStringSubmatch(line, -1) {
				add(m[1], isHistogram.MatchString(line))
			}
		}
	}
	return known
}
