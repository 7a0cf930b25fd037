package remotewritereceiver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/klauspost/compress/snappy"
)

// Bodies and their decompressed payloads are read into pooled buffers:
// a gateway takes pushes of a few hundred KiB to tens of MiB all day, and
// allocating each anew (io.ReadAll doubles its way up, leaving garbage of
// twice the size) is most of what a push costs the garbage collector.
var buffers sync.Pool

// maxPooled keeps exceptional buffers (with the limits turned off) out of
// the pool, so that one huge push does not stay in memory.
const maxPooled = 64 << 20

func getBuffer(size int) *[]byte {
	if p, ok := buffers.Get().(*[]byte); ok {
		if cap(*p) >= size {
			*p = (*p)[:0]
			return p
		}
		buffers.Put(p)
	}
	b := make([]byte, 0, size)
	return &b
}

func putBuffer(p *[]byte) {
	if p != nil && cap(*p) <= maxPooled {
		buffers.Put(p)
	}
}

// readBody reads a body into a pooled buffer: at once of its announced size
// (within limit, which the server enforces as the body is read), else
// growing as it arrives. The buffer is returned even on error, for
// putBuffer.
func readBody(r io.Reader, contentLength, limit int64) (*[]byte, error) {
	size := int64(64 << 10)
	if contentLength > 0 && (limit <= 0 || contentLength <= limit) {
		size = contentLength + 1 // room to see the end without growing
	}
	p := getBuffer(int(size))
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

// decompress undoes snappy into a pooled buffer, refusing a payload that
// announces more than max bytes (0: no limit) before taking any memory for
// it: snappy's header states the decoded size.
func decompress(body []byte, max int64) (*[]byte, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, refusal(http.StatusBadRequest, "snappy: "+err.Error())
	}
	if max > 0 && int64(n) > max {
		return nil, overLimit("max_decompressed_body_size", http.StatusRequestEntityTooLarge,
			"the body decompresses to %d bytes, over max_decompressed_body_size (%d)", n, max)
	}
	p := getBuffer(n)
	raw, err := snappy.Decode((*p)[:cap(*p)], body)
	if err != nil {
		return p, refusal(http.StatusBadRequest, fmt.Sprintf("snappy: %v", err))
	}
	*p = raw
	return p, nil
}
