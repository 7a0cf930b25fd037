package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A config a user got wrong must fail `sluice validate` and start-up alike,
// with a message that names what is wrong: the component id and the key, the
// types that exist when the type is unknown, the file when it cannot be read.
func TestBadConfigMessages(t *testing.T) {
	const pipeline = `
exporters:
  debug:
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [debug]
`
	cases := []struct {
		name   string
		config string // "" means: the file does not exist
		want   []string
	}{
		{
			name: "unknown component type lists the types that exist",
			config: `receivers:
  otlp:
    protocols: {http: {endpoint: "127.0.0.1:0"}}
  prometheuss:
` + pipeline,
			// the collector lists the types in map order
			want: []string{`'receivers' unknown type: "prometheuss"`, `valid values: [`, `otlp`, `unix`},
		},
		{
			name: "misspelt key names the component and the key",
			config: `receivers:
  otlp:
    protocols:
      grpc:
        endpointt: 127.0.0.1:4317
` + pipeline,
			want: []string{`error reading configuration for "otlp"`, `'protocols.grpc'`, `invalid keys: endpointt`},
		},
		{
			name: "invalid value names the component",
			config: `receivers:
  otlp:
    protocols: {http: {endpoint: "127.0.0.1:0"}}
processors:
  memory_limiter:
    check_interval: 0s
` + strings.Replace(pipeline, "receivers: [otlp]", "receivers: [otlp]\n      processors: [memory_limiter]", 1),
			want: []string{`processors::memory_limiter`, `check_interval`},
		},
		{
			name: "bad tenant key names the exporter and the key",
			config: `receivers:
  otlp:
    protocols: {http: {endpoint: "127.0.0.1:0"}}
` + strings.NewReplacer("  debug:\n", `  remote_write:
    endpoint: http://127.0.0.1:9090/api/v1/write
    headers: {X-Scope-OrgID: fixed}
    tenants:
      metadata_keys: [X-Scope-OrgID, "tenant id"]
`, "[debug]", "[remote_write]").Replace(pipeline),
			want: []string{`exporters::remote_write`, `tenants::metadata_keys[0]: "X-Scope-OrgID" is also set under headers`,
				`tenants::metadata_keys[1]: "tenant id" is not a valid HTTP header name`},
		},
		{
			name: "bad relabel rule names the processor, the rule and the key",
			config: `receivers:
  otlp:
    protocols: {http: {endpoint: "127.0.0.1:0"}}
processors:
  relabel:
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "go_(.*"
        action: drop
` + strings.Replace(pipeline, "receivers: [otlp]", "receivers: [otlp]\n      processors: [relabel]", 1),
			want: []string{`processors::relabel`, "metric_relabel_configs[0]::regex: error parsing regexp: missing closing ): `^(?s:go_(.*)$`"},
		},
		{
			name: "unknown host collector lists the known ones",
			config: `receivers:
  unix:
    set_collectors: [cpu, memory]
` + strings.Replace(pipeline, "receivers: [otlp]", "receivers: [unix]", 1),
			want: []string{`receivers::unix`, `set_collectors: unknown collector "memory" (known: arp, `},
		},
		{
			name: "pipeline naming a component that is not configured",
			config: `receivers:
  otlp:
    protocols: {http: {endpoint: "127.0.0.1:0"}}
` + strings.Replace(pipeline, "exporters: [debug]\n", "exporters: [debug, otlp_http/backend]\n", 1),
			want: []string{`service::pipelines::metrics`, `otlp_http/backend`},
		},
		{
			name:   "unreadable file names the file",
			config: "",
			want:   []string{"missing.yaml", "no such file or directory"},
		},
		{
			name:   "YAML syntax error names the line",
			config: "receivers:\n  otlp:\n    protocols: [\n",
			want:   []string{"yaml: line 3"},
		},
	}
	bin := sluiceBin(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "missing.yaml")
			if tc.config != "" {
				path = writeFile(t, dir, "config.yaml", tc.config)
			}
			for _, args := range [][]string{{"validate", "--config", path}, {"--config", path}} {
				cmd := exec.Command(bin, args...)
				done := make(chan struct{})
				timer := time.AfterFunc(30*time.Second, func() {
					select {
					case <-done:
					default:
						_ = cmd.Process.Kill()
					}
				})
				out, err := cmd.CombinedOutput()
				close(done)
				timer.Stop()
				if err == nil {
					t.Fatalf("sluice %s: exit 0 on a bad config; output:\n%s", strings.Join(args, " "), out)
				}
				for _, w := range tc.want {
					if !strings.Contains(string(out), w) {
						t.Errorf("sluice %s: output lacks %q; output:\n%s", args[0], w, out)
					}
				}
			}
		})
	}
}
