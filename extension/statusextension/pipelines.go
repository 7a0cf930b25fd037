package statusextension

import (
	"fmt"
	"sort"

	"go.opentelemetry.io/collector/confmap"
)

// Pipeline is one pipeline of service::pipelines, as configured.
type Pipeline struct {
	ID         string   `json:"id"`
	Receivers  []string `json:"receivers"`
	Processors []string `json:"processors"`
	Exporters  []string `json:"exporters"`
}

// parsePipelines reads service::pipelines of the effective config. Only
// component ids are read, never their settings, so no secret can reach the
// page this way.
func parsePipelines(conf *confmap.Conf) ([]Pipeline, error) {
	if conf == nil {
		return nil, nil
	}
	raw, ok := conf.Get("service::pipelines").(map[string]any)
	if !ok {
		return nil, nil
	}
	out := make([]Pipeline, 0, len(raw))
	for id, v := range raw {
		m, ok := v.(map[string]any)
		if !ok && v != nil {
			return nil, fmt.Errorf("service::pipelines::%s is not a map", id)
		}
		p := Pipeline{ID: id}
		var err error
		if p.Receivers, err = ids(m, id, "receivers"); err != nil {
			return nil, err
		}
		if p.Processors, err = ids(m, id, "processors"); err != nil {
			return nil, err
		}
		if p.Exporters, err = ids(m, id, "exporters"); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func ids(m map[string]any, pipeline, key string) ([]string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return []string{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("service::pipelines::%s::%s is not a list", pipeline, key)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		out = append(out, fmt.Sprint(e))
	}
	return out, nil
}

// connectors are the ids that are an exporter in one pipeline and a
// receiver in another: the graph marks them so the two ends can be matched.
func connectors(ps []Pipeline) map[string]bool {
	exp := map[string]bool{}
	for _, p := range ps {
		for _, e := range p.Exporters {
			exp[e] = true
		}
	}
	out := map[string]bool{}
	for _, p := range ps {
		for _, r := range p.Receivers {
			if exp[r] {
				out[r] = true
			}
		}
	}
	return out
}
