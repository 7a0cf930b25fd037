package remotewritereceiver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"weak"

	"github.com/klauspost/compress/snappy"
)

// Bodies and their decompressed payloads are read into buffers kept for the
// next push: a gateway takes pushes of a few hundred KiB to tens of MiB all
// day, and allocating each anew (io.ReadAll doubles its way up, leaving
// garbage of twice the size) is most of what a push costs the garbage
// collector.
//
// Each slot of max_concurrent_requests keeps its own two, and only weakly:
// a buffer is live while a push uses it, and one no push uses is reused if
// the garbage collector has not taken it yet. So the buffers live at any
// moment are those of the pushes in flight, two at most each (the body is
// let go once decompressed), which is what bounds the receiver's memory.
// A shared sync.Pool instead keeps every buffer it was given live for two
// collections, however many pushes went by: with hostile pushes at the
// limits it added hundreds of MiB to the pushes in flight.
type slot struct {
	body, raw weak.Pointer[[]byte]
}

// maxKept keeps exceptional buffers (with the limits turned off) from
// being reused, so that one huge push does not lead the next to hold as much.
const maxKept = 64 << 20

// buffer is w's buffer emptied if it is still there and holds size bytes,
// else a new one.
func buffer(w *weak.Pointer[[]byte], size int) *[]byte {
	if p := w.Value(); p != nil && cap(*p) >= size {
		*p = (*p)[:0]
		return p
	}
	b := make([]byte, 0, size)
	return &b
}

// keep lets p, which its push is done with, be reused through w.
func keep(w *weak.Pointer[[]byte], p *[]byte) {
	if p != nil && cap(*p) <= maxKept {
		*w = weak.Make(p)
	}
}

// readBody reads a body into the slot's body buffer: at once of its
// announced size (within limit, which the server enforces as the body is
// read), else growing as it arrives. The buffer is returned even on error,
// to keep.
func (s *slot) readBody(r io.Reader, contentLength, limit int64) (*[]byte, error) {
	size := int64(64 << 10)
	if contentLength > 0 && (limit <= 0 || contentLength <= limit) {
		size = contentLength + 1 // room to see the end without growing
	}
	p := buffer(&s.body, int(size))
	b := *p
	for {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), 2*cap(b))
			copy(grown, b)
			b = grown
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			*p = b
			return p, nil
		}
		if err != nil {
			*p = b
			return p, err
		}
	}
}

// isTimeout says the connection's read deadline (read_timeout) passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// decompress undoes snappy into the slot's payload buffer, refusing a payload that
// announces more than max bytes (0: no limit) before taking any memory for
// it: snappy's header states the decoded size.
func (s *slot) decompress(body []byte, max int64) (*[]byte, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, refusal(http.StatusBadRequest, "snappy: "+err.Error())
	}
	if max > 0 && int64(n) > max {
		return nil, overLimit("max_decompressed_body_size", http.StatusRequestEntityTooLarge,
			"the body decompresses to %d bytes, over max_decompressed_body_size (%d)", n, max)
	}
	p := buffer(&s.raw, n)
	raw, err := snappy.Decode((*p)[:cap(*p)], body)
	if err != nil {
		return p, refusal(http.StatusBadRequest, fmt.Sprintf("snappy: %v", err))
	}
	*p = raw
	return p, nil
}
