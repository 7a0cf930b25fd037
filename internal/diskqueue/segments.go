package diskqueue

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const segSuffix = ".seg"

// segment is one file of the stream, holding offsets [base, base+size).
type segment struct {
	base, size int64
}

func (s segment) end() int64 { return s.base + s.size }

func segPath(dir string, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, segSuffix))
}

// listSegments returns the segment files of dir in stream order.
func listSegments(dir string) ([]segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		base, err := strconv.ParseInt(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil {
			continue // not ours
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		segs = append(segs, segment{base: base, size: info.Size()})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].base < segs[j].base })
	return segs, nil
}

// truncateSegment cuts a segment file to size and makes the cut durable.
func truncateSegment(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// countRecords counts the records of segment s from stream offset off to
// its end, for the statistics of a dropped segment: it walks the headers
// without reading payloads, resynchronising past a header that cannot be
// right.
func countRecords(dir string, s segment, off int64) (int64, error) {
	f, err := os.Open(segPath(dir, s.base))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := recordReader{f: f}
	hdr := make([]byte, headerSize)
	var n int64
	for pos := off - s.base; pos < s.size; {
		if _, err := f.ReadAt(hdr, pos); err != nil {
			return n, nil
		}
		l, _, _, err := decodeHeader(hdr)
		if err != nil || pos+headerSize+int64(l) > s.size {
			next, ok := r.resync(pos+1, s.size)
			if !ok {
				return n, nil
			}
			pos = next
			continue
		}
		pos += headerSize + int64(l)
		n++
	}
	return n, nil
}

// The checkpoint file holds two slots, written alternately, so a write cut
// short spoils only one: [seq u64][offset u64][crc32c u32].
const (
	ckptName = "checkpoint"
	slotSize = 20
)

type checkpoint struct {
	f     *os.File
	seq   uint64
	dirty bool // written since the last fsync
}

func openCheckpoint(dir string) (*checkpoint, int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, ckptName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	// Both slots take their disk blocks now, so that moving the checkpoint
	// later never needs new space: acknowledging must work on a full disk,
	// since it is what frees space.
	if st, err := f.Stat(); err == nil && st.Size() < 2*slotSize {
		if _, err := f.WriteAt(make([]byte, 2*slotSize-st.Size()), st.Size()); err != nil {
			f.Close()
			return nil, 0, err
		}
	}
	c := &checkpoint{f: f}
	var off int64
	buf := make([]byte, slotSize)
	for slot := int64(0); slot < 2; slot++ {
		if _, err := f.ReadAt(buf, slot*slotSize); err != nil {
			continue
		}
		if crc32.Checksum(buf[:16], castagnoli) != binary.LittleEndian.Uint32(buf[16:20]) {
			continue // torn or never written
		}
		if seq := binary.LittleEndian.Uint64(buf[0:8]); seq >= c.seq {
			c.seq, off = seq, int64(binary.LittleEndian.Uint64(buf[8:16]))
		}
	}
	return c, off, nil
}

// write records offset in the slot after the current one.
func (c *checkpoint) write(off int64, sync bool) error {
	c.seq++
	var buf [slotSize]byte
	binary.LittleEndian.PutUint64(buf[0:8], c.seq)
	binary.LittleEndian.PutUint64(buf[8:16], uint64(off))
	binary.LittleEndian.PutUint32(buf[16:20], crc32.Checksum(buf[:16], castagnoli))
	if _, err := c.f.WriteAt(buf[:], int64(c.seq%2)*slotSize); err != nil {
		return err
	}
	if sync {
		return c.sync()
	}
	c.dirty = true
	return nil
}

func (c *checkpoint) sync() error {
	c.dirty = false
	return c.f.Sync()
}
