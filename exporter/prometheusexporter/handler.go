package prometheusexporter

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"
)

// ServeHTTP answers a scrape in the format the Accept header asks for:
// delimited protobuf (which carries native histograms), the text format,
// or OpenMetrics when the scraper takes nothing else (see negotiate);
// gzip-compressed when the scraper accepts it, as Prometheus does.
func (e *promExporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	format := negotiate(r.Header)
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

// negotiate picks the exposition format. OpenMetrics names a counter's
// family without _total, so a Prometheus scraping it would file the HELP
// and TYPE of node_cpu_seconds_total under node_cpu_seconds (and the
// counter go_memstats_alloc_bytes_total's over the gauge
// go_memstats_alloc_bytes), and it writes a counter whose name lacks
// _total as unknown: what text targets — most of them — exposed would not
// be what is stored. So a scraper that accepts protobuf or text as well
// (Prometheus always does, though it lists OpenMetrics first) gets the
// first of those it lists; one that asks for OpenMetrics alone gets it.
func negotiate(h http.Header) expfmt.Format {
	format := expfmt.NegotiateIncludingOpenMetrics(h)
	if format.FormatType() == expfmt.TypeOpenMetrics && acceptsOtherThanOpenMetrics(h.Get("Accept")) {
		return expfmt.Negotiate(h)
	}
	return format
}

// acceptsOtherThanOpenMetrics reports whether an Accept header takes the
// text or protobuf format (listed, or through a wildcard) with q > 0.
func acceptsOtherThanOpenMetrics(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		media, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if zeroQ(params) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(media)) {
		case "text/plain", "text/*", "*/*", expfmt.ProtoType:
			return true
		}
	}
	return false
}

// zeroQ reports whether media-type parameters hold q=0.
func zeroQ(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f == 0 {
				return true
			}
		}
	}
	return false
}

// acceptsGzip reads an Accept-Encoding header: gzip listed, and not with q=0.
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			return !zeroQ(params)
		}
	}
	return false
}
