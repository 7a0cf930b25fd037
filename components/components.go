// Package components lists the factories of the Sluice distribution, the same
// set that ocb compiles into distributions/sluice from builder-config.yaml.
//
// In-process end-to-end tests and Go benchmarks build their collector from
// Components(), so they run exactly the components users get. A test reads
// builder-config.yaml and fails when the two lists differ: add a component to
// both, in the same commit.
package components

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/basicauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/pprofextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/deltatocumulativeprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpsprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/zpagesextension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/sluicehq/sluice/exporter/prometheusexporter"
	"github.com/sluicehq/sluice/exporter/remotewriteexporter"
	"github.com/sluicehq/sluice/extension/statusextension"
	"github.com/sluicehq/sluice/processor/batchprocessor"
	"github.com/sluicehq/sluice/processor/relabelprocessor"
	"github.com/sluicehq/sluice/receiver/prometheusreceiver"
	"github.com/sluicehq/sluice/receiver/remotewritereceiver"
	"github.com/sluicehq/sluice/receiver/unixreceiver"
)

// Module versions, as written in builder-config.yaml.
const (
	coreVersion    = "v0.160.0"
	stableVersion  = "v1.66.0"
	contribVersion = "v0.160.0"

	// sluice is this repository's own module, replaced by the local tree.
	sluice = "github.com/sluicehq/sluice v0.0.0"

	core    = "go.opentelemetry.io/collector/"
	contrib = "github.com/open-telemetry/opentelemetry-collector-contrib/"
)

// entry pairs a factory with the `gomod` line that builder-config.yaml uses
// for it, so the *Modules maps of otelcol.Factories are filled as ocb fills them.
type entry[F component.Factory] struct {
	gomod   string
	factory F
}

func receivers() []entry[receiver.Factory] {
	return []entry[receiver.Factory]{
		{core + "receiver/otlpreceiver " + coreVersion, otlpreceiver.NewFactory()},
		{sluice, prometheusreceiver.NewFactory()},
		{sluice, unixreceiver.NewFactory()},
		{sluice, remotewritereceiver.NewFactory()},
	}
}

func processors() []entry[processor.Factory] {
	return []entry[processor.Factory]{
		{core + "processor/memorylimiterprocessor " + coreVersion, memorylimiterprocessor.NewFactory()},
		{contrib + "processor/deltatocumulativeprocessor " + contribVersion, deltatocumulativeprocessor.NewFactory()},
		{sluice, relabelprocessor.NewFactory()},
		{sluice, batchprocessor.NewFactory()},
	}
}

func exporters() []entry[exporter.Factory] {
	return []entry[exporter.Factory]{
		{core + "exporter/otlpexporter " + coreVersion, otlpexporter.NewFactory()},
		{core + "exporter/otlphttpexporter " + coreVersion, otlphttpexporter.NewFactory()},
		{core + "exporter/debugexporter " + coreVersion, debugexporter.NewFactory()},
		{sluice, remotewriteexporter.NewFactory()},
		{sluice, prometheusexporter.NewFactory()},
	}
}

func extensions() []entry[extension.Factory] {
	return []entry[extension.Factory]{
		{contrib + "extension/healthcheckextension " + contribVersion, healthcheckextension.NewFactory()},
		{contrib + "extension/pprofextension " + contribVersion, pprofextension.NewFactory()},
		{core + "extension/zpagesextension " + coreVersion, zpagesextension.NewFactory()},
		{contrib + "extension/basicauthextension " + contribVersion, basicauthextension.NewFactory()},
		{contrib + "extension/bearertokenauthextension " + contribVersion, bearertokenauthextension.NewFactory()},
		{sluice, statusextension.NewFactory()},
	}
}

// Providers returns the config providers of the distribution (env, file,
// yaml, http, https), in the order of builder-config.yaml.
func Providers() []confmap.ProviderFactory {
	return []confmap.ProviderFactory{
		envprovider.NewFactory(),
		fileprovider.NewFactory(),
		yamlprovider.NewFactory(),
		httpprovider.NewFactory(),
		httpsprovider.NewFactory(),
	}
}

// providerModules are the gomod lines of Providers(), in the same order.
func providerModules() []string {
	return []string{
		core + "confmap/provider/envprovider " + stableVersion,
		core + "confmap/provider/fileprovider " + stableVersion,
		core + "confmap/provider/yamlprovider " + stableVersion,
		core + "confmap/provider/httpprovider " + stableVersion,
		core + "confmap/provider/httpsprovider " + stableVersion,
	}
}

// Components returns the factories of every component in the distribution.
func Components() (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if f.Receivers, f.ReceiverModules, err = build(receivers()); err != nil {
		return otelcol.Factories{}, err
	}
	if f.Processors, f.ProcessorModules, err = build(processors()); err != nil {
		return otelcol.Factories{}, err
	}
	if f.Exporters, f.ExporterModules, err = build(exporters()); err != nil {
		return otelcol.Factories{}, err
	}
	if f.Extensions, f.ExtensionModules, err = build(extensions()); err != nil {
		return otelcol.Factories{}, err
	}
	return f, nil
}

func build[F component.Factory](entries []entry[F]) (map[component.Type]F, map[component.Type]string, error) {
	list := make([]F, 0, len(entries))
	modules := make(map[component.Type]string, len(entries))
	for _, e := range entries {
		list = append(list, e.factory)
		modules[e.factory.Type()] = e.gomod
		// Renamed upstream components (otlp -> otlp_grpc at v0.160) register
		// their old name too; ocb maps it to the same module, and so do we.
		if a, ok := any(e.factory).(interface{ DeprecatedAlias() component.Type }); ok && a.DeprecatedAlias().String() != "" {
			modules[a.DeprecatedAlias()] = e.gomod
		}
	}
	factories, err := otelcol.MakeFactoryMap(list...)
	return factories, modules, err
}
