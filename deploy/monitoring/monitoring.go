// Package monitoring holds Sluice's Grafana dashboard and Prometheus alert
// rules for its own telemetry (the files beside this one, embedded) and
// reads back every PromQL query in them and the metric names each selects,
// so tests can hold them against Sluice's docs (this package's test) and
// against what a running binary exposes (e2e TestMonitoringMetricNames).
// e2e TestMonitoringAlertsOnARealPrometheus evaluates the rules in a real
// Prometheus on Sluice's telemetry as it arrives.
package monitoring

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

var (
	//go:embed sluice-dashboard.json
	dashboardJSON []byte
	//go:embed sluice-alerts.yaml
	rulesYAML []byte
)

// Query is one PromQL expression and where it is.
type Query struct {
	Where string // "panel <title> <refId>", "variable <name>", "alert <name>"
	Expr  string
}

// Dashboard is the part of the Grafana dashboard model the tests read.
type Dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// Panel is one dashboard panel (or row).
type Panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

// ReadDashboard decodes sluice-dashboard.json.
func ReadDashboard() (Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return d, fmt.Errorf("sluice-dashboard.json: %w", err)
	}
	return d, nil
}

// labelValues is the metric of a Grafana variable query
// label_values(<metric>{...}, <label>); the selector is what gets parsed.
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// DashboardQueries is every query of the dashboard: panel targets and the
// variables' label_values selectors.
func DashboardQueries() ([]Query, error) {
	d, err := ReadDashboard()
	if err != nil {
		return nil, err
	}
	var qs []Query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("variable %s: query %q is not label_values(<metric>, <label>)", v.Name, s)
		}
		qs = append(qs, Query{"variable " + v.Name, m[1]})
	}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, Query{"panel " + p.Title + " " + t.RefID, t.Expr})
		}
	}
	return qs, nil
}

// RuleQueries is the expression of every rule in sluice-alerts.yaml.
func RuleQueries() ([]Query, error) {
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rulesYAML, &rf); err != nil {
		return nil, fmt.Errorf("sluice-alerts.yaml: %w", err)
	}
	var qs []Query
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			qs = append(qs, Query{"alert " + r.Alert + r.Record, r.Expr})
		}
	}
	return qs, nil
}

// grafanaVars are the template variables a query may hold; Grafana
// replaces them before the query reaches Prometheus, so the parser sees
// a value of the same kind instead.
var grafanaVars = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range|[A-Za-z_][A-Za-z0-9_]*)\}?`)

func expand(expr string) string {
	return grafanaVars.ReplaceAllStringFunc(expr, func(v string) string {
		switch strings.Trim(v, "${}") {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		default:
			return "x"
		}
	})
}

// MetricNames parses expr (Grafana variables expanded) and returns the
// metric name of each series selector in it; a selector without a fixed
// name is an error, since nothing could check what it reads.
func MetricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expand(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	var unnamed error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				names = append(names, m.Value)
				return nil
			}
		}
		unnamed = fmt.Errorf("selector %s has no metric name", vs)
		return nil
	})
	return names, unnamed
}

// Uses maps every metric name the dashboard and the rules select to where.
func Uses() (map[string][]string, error) {
	dq, err := DashboardQueries()
	if err != nil {
		return nil, err
	}
	rq, err := RuleQueries()
	if err != nil {
		return nil, err
	}
	used := map[string][]string{}
	for _, q := range append(dq, rq...) {
		names, err := MetricNames(q.Expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", q.Where, q.Expr, err)
		}
		for _, n := range names {
			used[n] = append(used[n], q.Where)
		}
	}
	return used, nil
}
