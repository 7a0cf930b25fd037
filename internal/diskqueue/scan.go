package diskqueue

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
)

// Damage inside a segment is told apart from a torn tail by what follows
// it: a torn tail is an unfinished record with nothing valid after it, while
// damage (a zeroed page, flipped bits, an overwritten length) is followed by
// records that still pass their checks. The scanner finds those again by
// trying every byte offset after the damage as a record start; a candidate
// counts only when its length fits the segment and its CRC matches, so a
// false resynchronisation needs a CRC-32C collision.

// span is a range [from, to) of stream offsets.
type span struct{ from, to int64 }

// recordReader reads and checks records of one open segment file, reusing
// its buffer between calls.
type recordReader struct {
	f   *os.File
	buf []byte
	win []byte
}

// validAt checks the record at file position pos of a file of size end,
// returning its header fields and total size when it is whole and intact.
// The payload is in r.buf until the next call.
func (r *recordReader) validAt(pos, end int64) (payload []byte, t int64, size int64, ok bool) {
	if end-pos < headerSize {
		return nil, 0, 0, false
	}
	var hdr [headerSize]byte
	if _, err := r.f.ReadAt(hdr[:], pos); err != nil {
		return nil, 0, 0, false
	}
	n, crc, t, err := decodeHeader(hdr[:])
	if err != nil || pos+headerSize+int64(n) > end {
		return nil, 0, 0, false
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	payload = r.buf[:n]
	if _, err := r.f.ReadAt(payload, pos+headerSize); err != nil {
		return nil, 0, 0, false
	}
	if checkRecord(hdr[:], crc, payload) != nil {
		return nil, 0, 0, false
	}
	return payload, t, headerSize + int64(n), true
}

// resyncWindow is how much of the file the resynchronising search reads at
// a time.
const resyncWindow = 64 << 10

// resync finds the first position p in [from, end) at which a whole, intact
// record starts. Only candidates whose length field fits are checked in
// full, so a damaged region costs about one read of it.
func (r *recordReader) resync(from, end int64) (int64, bool) {
	if cap(r.win) < resyncWindow+headerSize {
		r.win = make([]byte, resyncWindow+headerSize)
	}
	for base := from; end-base >= headerSize; base += resyncWindow {
		w := r.win[:min(int64(resyncWindow+headerSize), end-base)]
		n, err := r.f.ReadAt(w, base)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, false
		}
		w = w[:n]
		for i := 0; i+headerSize <= len(w) && i < resyncWindow; i++ {
			l := int64(binary.LittleEndian.Uint32(w[i:]))
			p := base + int64(i)
			if l > MaxRecordSize || p+headerSize+l > end {
				continue
			}
			if _, _, _, ok := r.validAt(p, end); ok {
				return p, true
			}
		}
	}
	return 0, false
}

// segScan is what a full check of one segment found.
type segScan struct {
	records  int64
	bad      []span // damaged ranges, stream offsets
	badBytes int64
	good     int64 // stream offset just after the last intact record
}

// scanSegment checks every record of segment s from stream offset off to
// its end. Damaged ranges followed by intact records are listed in bad;
// what follows the last intact record is left to the caller (a torn tail
// in the head, damage elsewhere).
func scanSegment(dir string, s segment, off int64) (segScan, error) {
	res := segScan{good: off}
	f, err := os.Open(segPath(dir, s.base))
	if err != nil {
		return res, err
	}
	defer f.Close()
	r := recordReader{f: f}
	pos, end := off-s.base, s.size
	for pos < end {
		if _, _, size, ok := r.validAt(pos, end); ok {
			res.records++
			pos += size
			res.good = s.base + pos
			continue
		}
		next, ok := r.resync(pos+1, end)
		if !ok {
			break
		}
		res.bad = append(res.bad, span{s.base + pos, s.base + next})
		res.badBytes += next - pos
		pos = next
	}
	return res, nil
}
