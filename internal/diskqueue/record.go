package diskqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// headerSize is length (4) + crc (4) + unix nanos (8).
const headerSize = 16

// MaxRecordSize bounds one record's payload; a length above it in a header
// can only be corruption.
const MaxRecordSize = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn means the bytes end inside a record: a write cut short.
var errTorn = errors.New("diskqueue: torn record")

// errCorrupt means a complete record failed its checksum or its length is impossible.
var errCorrupt = errors.New("diskqueue: corrupt record")

// encodeHeader fills the header for payload written at time t.
func encodeHeader(hdr []byte, t int64, payload []byte) {
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(hdr[8:16], uint64(t))
	crc := crc32.Update(0, castagnoli, hdr[8:16])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(hdr[4:8], crc)
}

// decodeHeader reads a header: payload length, crc and time.
func decodeHeader(hdr []byte) (n int, crc uint32, t int64, err error) {
	if len(hdr) < headerSize {
		return 0, 0, 0, errTorn
	}
	n = int(binary.LittleEndian.Uint32(hdr[0:4]))
	if n > MaxRecordSize {
		return 0, 0, 0, fmt.Errorf("%w: length %d over the %d limit", errCorrupt, n, MaxRecordSize)
	}
	return n, binary.LittleEndian.Uint32(hdr[4:8]), int64(binary.LittleEndian.Uint64(hdr[8:16])), nil
}

// checkRecord verifies a payload against its header's crc and time.
func checkRecord(hdr []byte, crc uint32, payload []byte) error {
	c := crc32.Update(0, castagnoli, hdr[8:16])
	c = crc32.Update(c, castagnoli, payload)
	if c != crc {
		return fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	return nil
}

// DecodeRecord decodes one record at the start of b, returning its payload
// (aliasing b), its time and its total size on disk.
func DecodeRecord(b []byte) (payload []byte, t int64, size int, err error) {
	n, crc, t, err := decodeHeader(b)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(b) < headerSize+n {
		return nil, 0, 0, errTorn
	}
	payload = b[headerSize : headerSize+n]
	if err := checkRecord(b, crc, payload); err != nil {
		return nil, 0, 0, err
	}
	return payload, t, headerSize + n, nil
}
