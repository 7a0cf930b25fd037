package prometheusexporter

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"
)

// ServeHTTP answers a scrape in the format the Accept header asks for:
// delimited protobuf (which carries native histograms), OpenMetrics, or
// the text format when nothing else is asked; gzip-compressed when the
// scraper accepts it, as Prometheus does.
func (e *promExporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
	fams := families(e.store.snapshot(e.now()), e.cfg.SendTimestamps)

	// Encoded whole before anything is sent, so a failure is an error
	// answer rather than a truncated exposition read as complete.
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			e.set.Logger.Error("Cannot encode a metric family", zap.String("family", f.GetName()), zap.Error(err))
			http.Error(w, "encoding "+f.GetName()+": "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", string(format))
	w.Header().Add("Vary", "Accept, Accept-Encoding")
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		_, _ = w.Write(buf.Bytes())
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz := gzip.NewWriter(w)
	_, _ = gz.Write(buf.Bytes())
	_ = gz.Close()
}

// acceptsGzip reads an Accept-Encoding header: gzip listed, and not with q=0.
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
