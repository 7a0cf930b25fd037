package statusextension

import (
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap"
)

func TestParsePipelines(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"exporters": map[string]any{"remote_write": map[string]any{"endpoint": "https://user:secret@example.com/"}},
		"service": map[string]any{"pipelines": map[string]any{
			"metrics": map[string]any{
				"receivers":  []any{"unix", "prometheus"},
				"processors": []any{"memory_limiter", "batch"},
				"exporters":  []any{"remote_write", "forward/edge"},
			},
			"metrics/edge": map[string]any{
				"receivers": []any{"forward/edge"},
				"exporters": []any{"debug"},
			},
		}},
	})
	got, err := parsePipelines(conf)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pipeline{
		{ID: "metrics", Receivers: []string{"unix", "prometheus"}, Processors: []string{"memory_limiter", "batch"}, Exporters: []string{"remote_write", "forward/edge"}},
		{ID: "metrics/edge", Receivers: []string{"forward/edge"}, Processors: []string{}, Exporters: []string{"debug"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pipelines\n got %+v\nwant %+v", got, want)
	}
	if c := connectors(got); !reflect.DeepEqual(c, map[string]bool{"forward/edge": true}) {
		t.Fatalf("connectors: %v", c)
	}
}

func TestParsePipelinesErrorsNameTheKey(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{"service": map[string]any{"pipelines": map[string]any{
		"metrics": map[string]any{"receivers": "unix"},
	}}})
	_, err := parsePipelines(conf)
	if err == nil || !strings.Contains(err.Error(), "service::pipelines::metrics::receivers is not a list") {
		t.Fatalf("error %v", err)
	}
}
