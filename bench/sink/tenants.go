package sink

import (
	"net/http"
	"sort"
	"strings"
)

// TenantStats is what arrived by remote write under one tenant: the requests
// whose tenant header (see RecordTenants) had one value.
type TenantStats struct {
	Requests   int `json:"requests"`
	Samples    int `json:"samples"` // float samples, duplicates and stale markers included
	Histograms int `json:"histograms"`
	Series     int `json:"series"` // distinct label sets
}

// tenantRecord keeps one tenant's counts and the series it carried, so a test
// can tell that no series arrived under a tenant it does not belong to.
type tenantRecord struct {
	stats  TenantStats
	series map[string]int // label key → samples and histograms
}

// RecordTenants makes the sink record every remote-write request under the
// value of header (e.g. X-Scope-OrgID), as a multi-tenant backend (Mimir,
// Cortex) files it. Requests without the header are recorded under "".
// Several values of the header are joined with ",". A Fault with Tenant set
// applies only to that tenant's requests.
func (s *Sink) RecordTenants(header string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantHeader = http.CanonicalHeaderKey(header)
}

// tenantOf is the tenant a request is filed under; ok is false when the sink
// does not record tenants.
func (s *Sink) tenantOf(r *http.Request) (tenant string, ok bool) {
	s.mu.Lock()
	h := s.tenantHeader
	s.mu.Unlock()
	if h == "" {
		return "", false
	}
	return strings.Join(r.Header.Values(h), ","), true
}

// tenantLocked returns the record of a tenant, creating it; s.mu is held.
func (s *Sink) tenantLocked(tenant string) *tenantRecord {
	t := s.tenants[tenant]
	if t == nil {
		t = &tenantRecord{series: map[string]int{}}
		s.tenants[tenant] = t
	}
	return t
}

// fileTenantLocked records one series' samples and histograms of a request
// under its tenant; s.mu is held.
func (s *Sink) fileTenantLocked(t *tenantRecord, key string, samples, histograms int) {
	if t == nil {
		return
	}
	t.stats.Samples += samples
	t.stats.Histograms += histograms
	t.series[key] += samples + histograms
}

// Tenants returns the counts of every tenant seen, by header value.
func (s *Sink) Tenants() map[string]TenantStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenantStatsLocked()
}

func (s *Sink) tenantStatsLocked() map[string]TenantStats {
	if len(s.tenants) == 0 {
		return nil
	}
	out := make(map[string]TenantStats, len(s.tenants))
	for name, t := range s.tenants {
		st := t.stats
		st.Series = len(t.series)
		out[name] = st
	}
	return out
}

// TenantSeries returns the series (rendered as Series renders them) that
// arrived under tenant, sorted.
func (s *Sink) TenantSeries(tenant string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[tenant]
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.series))
	for k := range t.series {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
