package components

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.yaml.in/yaml/v3"
)

// manifest is the part of builder-config.yaml this test compares.
type manifest struct {
	Receivers  []module `yaml:"receivers"`
	Processors []module `yaml:"processors"`
	Exporters  []module `yaml:"exporters"`
	Extensions []module `yaml:"extensions"`
	Connectors []module `yaml:"connectors"`
	Providers  []module `yaml:"providers"`
	Telemetry  module   `yaml:"telemetry"`
}

type module struct {
	GoMod  string `yaml:"gomod"`
	Import string `yaml:"import"`
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "builder-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("builder-config.yaml: %v", err)
	}
	return m
}

// gomods lists the distinct modules of the manifest's entries: this
// repository's module appears once per component it provides.
func gomods(ms []module) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if !seen[m.GoMod] {
			seen[m.GoMod] = true
			out = append(out, m.GoMod)
		}
	}
	sort.Strings(out)
	return out
}

// ownImports counts the manifest's entries from this repository's module,
// and ownTypes the component types Components() has from it.
func ownImports(ms []module) int {
	n := 0
	for _, m := range ms {
		if strings.HasPrefix(m.GoMod, "github.com/sluicehq/sluice ") {
			n++
		}
	}
	return n
}

func ownTypes(modules map[component.Type]string) int {
	n := 0
	for _, v := range modules {
		if strings.HasPrefix(v, "github.com/sluicehq/sluice ") {
			n++
		}
	}
	return n
}

// moduleValues lists the distinct modules of a *Modules map: a renamed
// component is there under its new and its deprecated name.
func moduleValues(m map[component.Type]string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(m))
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func keys[F any](m map[component.Type]F) []component.Type {
	out := make([]component.Type, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sameList(t *testing.T, kind string, manifestSide, componentsSide []string) {
	t.Helper()
	if len(manifestSide) != len(componentsSide) {
		t.Errorf("%s: builder-config.yaml lists %d, components.Components() has %d\n manifest:   %q\n components: %q",
			kind, len(manifestSide), len(componentsSide), manifestSide, componentsSide)
		return
	}
	for i := range manifestSide {
		if manifestSide[i] != componentsSide[i] {
			t.Errorf("%s: builder-config.yaml has %q where components.Components() has %q", kind, manifestSide[i], componentsSide[i])
		}
	}
}

func TestComponentsMatchBuilderConfig(t *testing.T) {
	m := readManifest(t)
	f, err := Components()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		kind     string
		manifest []module
		types    []component.Type
		modules  map[component.Type]string
	}{
		{"receivers", m.Receivers, keys(f.Receivers), f.ReceiverModules},
		{"processors", m.Processors, keys(f.Processors), f.ProcessorModules},
		{"exporters", m.Exporters, keys(f.Exporters), f.ExporterModules},
		{"extensions", m.Extensions, keys(f.Extensions), f.ExtensionModules},
		{"connectors", m.Connectors, keys(f.Connectors), f.ConnectorModules},
	}
	for _, c := range checks {
		for _, typ := range c.types {
			if _, ok := c.modules[typ]; !ok {
				t.Errorf("%s: factory %q has no module in components.Components()", c.kind, typ)
			}
		}
		sameList(t, c.kind, gomods(c.manifest), moduleValues(c.modules))
		if a, b := ownImports(c.manifest), ownTypes(c.modules); a != b {
			t.Errorf("%s: builder-config.yaml imports %d of Sluice's own, components.Components() has %d", c.kind, a, b)
		}
	}

	// Providers keep the manifest's order: it is the order ocb registers them in.
	var wantProviders []string
	for _, p := range m.Providers {
		wantProviders = append(wantProviders, p.GoMod)
	}
	sameList(t, "providers", wantProviders, providerModules())
	if n := len(Providers()); n != len(providerModules()) {
		t.Errorf("Providers() returns %d factories for %d modules", n, len(providerModules()))
	}

	if got, want := m.Telemetry.Import, "go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"; got != want {
		t.Errorf("telemetry import is %q in builder-config.yaml, components uses %q", got, want)
	}
	if f.Telemetry == nil {
		t.Error("components.Components() has no telemetry factory")
	}
}

func TestComponentsHaveValidDefaultConfigs(t *testing.T) {
	f, err := Components()
	if err != nil {
		t.Fatal(err)
	}
	for typ, fac := range f.Receivers {
		if fac.CreateDefaultConfig() == nil {
			t.Errorf("receiver %s: nil default config", typ)
		}
	}
	for typ, fac := range f.Processors {
		if fac.CreateDefaultConfig() == nil {
			t.Errorf("processor %s: nil default config", typ)
		}
	}
	for typ, fac := range f.Exporters {
		if fac.CreateDefaultConfig() == nil {
			t.Errorf("exporter %s: nil default config", typ)
		}
	}
	for typ, fac := range f.Extensions {
		if fac.CreateDefaultConfig() == nil {
			t.Errorf("extension %s: nil default config", typ)
		}
	}
}
