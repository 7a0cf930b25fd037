package scrapeloop

import (
	"strings"
	"sync"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/scrape"
)

// metaEntry is what a target said of one metric family (TYPE, HELP, UNIT).
type metaEntry struct {
	metadata.Metadata
	family   string // the map key, shared so the Builder gets no new string
	lastIter uint64
}

// metaStore keeps a target's metadata across scrapes as Prometheus' scrape
// cache does (a family's entry outlives its last sighting by 10 scrapes),
// and serves it to whoever reads the target (scrape.MetricMetadataStore).
type metaStore struct {
	mu      sync.Mutex
	entries map[string]*metaEntry
}

var _ scrape.MetricMetadataStore = (*metaStore)(nil)

func newMetaStore() *metaStore { return &metaStore{entries: map[string]*metaEntry{}} }

func (m *metaStore) entry(name []byte, iter uint64) *metaEntry {
	e, ok := m.entries[string(name)]
	if !ok {
		fam := string(name)
		e = &metaEntry{Metadata: metadata.Metadata{Type: model.MetricTypeUnknown}, family: fam}
		m.entries[fam] = e
	}
	e.lastIter = iter
	return e
}

func (m *metaStore) setType(name []byte, t model.MetricType, iter uint64) *metaEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(name, iter)
	e.Type = t
	return e
}

func (m *metaStore) setHelp(name, help []byte, iter uint64) *metaEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(name, iter)
	if e.Help != string(help) {
		e.Help = string(help)
	}
	return e
}

func (m *metaStore) setUnit(name, unit []byte, iter uint64) *metaEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(name, iter)
	if e.Unit != string(unit) {
		e.Unit = string(unit)
	}
	return e
}

// flush drops the families not seen for more than 10 scrapes.
func (m *metaStore) flush(iter uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.entries {
		if iter-e.lastIter > 10 {
			delete(m.entries, k)
		}
	}
}

func (m *metaStore) ListMetadata() []scrape.MetricMetadata {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]scrape.MetricMetadata, 0, len(m.entries))
	for k, e := range m.entries {
		out = append(out, scrape.MetricMetadata{MetricFamily: k, Type: e.Type, Help: e.Help, Unit: e.Unit})
	}
	return out
}

func (m *metaStore) GetMetadata(family string) (scrape.MetricMetadata, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[family]
	if !ok {
		return scrape.MetricMetadata{}, false
	}
	return scrape.MetricMetadata{MetricFamily: family, Type: e.Type, Help: e.Help, Unit: e.Unit}, true
}

func (m *metaStore) SizeMetadata() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.entries {
		n += len(e.Help) + len(e.Unit) + len(e.Type)
	}
	return n
}

func (m *metaStore) LengthMetadata() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// partOfFamily reports whether series name belongs to family fam of type
// typ (a histogram's _bucket, _sum and _count, a counter's _total, …):
// metadata is only attached when it does, as in Prometheus, where TYPE lines
// may be missing or out of place.
func partOfFamily(name, fam string, typ model.MetricType) bool {
	if !strings.HasPrefix(name, fam) {
		return false
	}
	cut := func(s string, suffixes ...string) string {
		for _, suf := range suffixes {
			if b, ok := strings.CutSuffix(s, suf); ok {
				return b
			}
		}
		return s
	}
	got := name
	switch typ {
	case model.MetricTypeCounter:
		fam = cut(fam, "_total")
		got = cut(name, "_total")
	case model.MetricTypeHistogram:
		got = cut(name, "_bucket", "_sum", "_count")
	case model.MetricTypeGaugeHistogram:
		got = cut(name, "_bucket", "_gsum", "_gcount")
	case model.MetricTypeSummary:
		got = cut(name, "_sum", "_count")
	case model.MetricTypeInfo:
		fam = cut(fam, "_info")
		got = cut(name, "_info")
	}
	return fam == got
}
