package statusextension

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/sluicehq/sluice/extension/statusextension/internal/metadata"
)

// TestPagesRenderSelfContained renders every page of an extension that
// got a config snapshot but no sources yet (as between its start and the
// pipelines' start): each answers 200, draws the pipeline, says what is
// missing, and holds nothing that would run or load from elsewhere.
func TestPagesRenderSelfContained(t *testing.T) {
	s := newStatus(createDefaultConfig().(*Config), extensiontest.NewNopSettings(metadata.Type))
	conf := confmap.NewFromStringMap(map[string]any{"service": map[string]any{"pipelines": map[string]any{
		"metrics": map[string]any{"receivers": []any{"prometheus"}, "processors": []any{"batch"}, "exporters": []any{"remote_write"}},
	}}})
	if err := s.NotifyConfigSnapshot(context.Background(), extensioncapabilities.NewConfigSnapshot(conf, nil)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.routes())
	defer srv.Close()
	for path, want := range map[string][]string{
		"/":                 {"No scrape targets", `<span class="id">prometheus</span>`, `<span class="id">batch</span>`, `<span class="id">remote_write</span>`, "No <code>remote_write</code> exporter is running"},
		"/dropped":          {"No target was dropped"},
		"/?refresh=5":       {`<meta http-equiv="refresh" content="5">`},
		"/api/v1/pipelines": {`"receivers": [`, `"prometheus"`},
		"/api/v1/status":    {`"targets": []`, `"endpoints": []`},
		"/api/v1/targets":   {`"targets": []`},
		"/api/v1/dropped":   {`"counts": {}`},
		"/api/v1/queues":    {`"endpoints": []`},
		"/api/v1/cluster":   {`"clusters": []`},
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s does not hold %q:\n%s", path, w, body)
			}
		}
		if !strings.HasPrefix(path, "/api/") {
			for _, bad := range []string{"<script", "http://", "https://", `href="/`, `src=`} {
				if strings.Contains(string(body), bad) {
					t.Errorf("%s holds %q: not self-contained or not relative", path, bad)
				}
			}
		}
	}
	resp, err := http.Get(srv.URL + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/nothing-here: %d", resp.StatusCode)
	}
}
