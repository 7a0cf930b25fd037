package scrapeloop

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/scrape"
)

var errBodySizeLimit = errors.New("body size limit exceeded")

// acceptHeader lists the configured scrape protocols in order of preference
// (q from 0.<n+1> down), then anything, as Prometheus asks for them.
func acceptHeader(sps []config.ScrapeProtocol, scheme model.EscapingScheme) string {
	vals := make([]string, 0, len(sps)+1)
	weight := len(config.ScrapeProtocolsHeaders) + 1
	for _, sp := range sps {
		val := config.ScrapeProtocolsHeaders[sp]
		// Only the newer text formats take the escaping parameter.
		if sp == config.PrometheusText1_0_0 || sp == config.OpenMetricsText1_0_0 {
			val += ";" + model.EscapingKey + "=" + scheme.String()
		}
		vals = append(vals, fmt.Sprintf("%s;q=0.%d", val, weight))
		weight--
	}
	vals = append(vals, fmt.Sprintf("*/*;q=0.%d", weight))
	return strings.Join(vals, ",")
}

// fetcher gets one target's exposition: one request, built once, and the
// gzip reader kept between scrapes.
type fetcher struct {
	client    *http.Client
	req       *http.Request
	bodyLimit int64
	gzipr     *gzip.Reader
	buf       *bufio.Reader
}

func newFetcher(client *http.Client, url, accept string, compression bool, timeout time.Duration, bodyLimit int64) (*fetcher, error) {
	req, err := http.NewRequest(http.MethodGet, url, http.NoBody)
	if err != nil {
		return nil, err
	}
	enc := "identity"
	if compression {
		enc = "gzip"
	}
	req.Header.Add("Accept", accept)
	req.Header.Add("Accept-Encoding", enc)
	req.Header.Set("User-Agent", scrape.UserAgent)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	if bodyLimit <= 0 {
		bodyLimit = math.MaxInt64
	}
	return &fetcher{client: client, req: req, bodyLimit: bodyLimit}, nil
}

// fetch appends the (decompressed) body to dst and returns it with the
// response's content type. A body of bodyLimit bytes or more is an error,
// as in Prometheus.
func (f *fetcher) fetch(ctx context.Context, dst []byte) ([]byte, string, error) {
	resp, err := f.client.Do(f.req.WithContext(ctx))
	if err != nil {
		return dst, "", err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return dst, "", fmt.Errorf("server returned HTTP status %s", resp.Status)
	}
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if f.gzipr == nil {
			f.buf = bufio.NewReader(resp.Body)
			if f.gzipr, err = gzip.NewReader(f.buf); err != nil {
				f.gzipr = nil
				return dst, "", err
			}
		} else {
			f.buf.Reset(resp.Body)
			if err := f.gzipr.Reset(f.buf); err != nil {
				return dst, "", err
			}
		}
		r = f.gzipr
		defer f.gzipr.Close()
	}
	dst, n, err := readAll(dst, io.LimitReader(r, f.bodyLimit))
	if err != nil {
		return dst, "", err
	}
	if n >= f.bodyLimit {
		return dst, "", errBodySizeLimit
	}
	return dst, resp.Header.Get("Content-Type"), nil
}

// readAll appends r to dst, growing it as needed, and returns how many bytes
// were read.
func readAll(dst []byte, r io.Reader) ([]byte, int64, error) {
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, int64(len(dst) - start), nil
		}
		if err != nil {
			return dst, int64(len(dst) - start), err
		}
	}
}
