package remotewriteexporter

import (
	"testing"
)

// FuzzParseRecord: whatever bytes a queue record holds (a damaged disk, a
// record of another version), reading its header and body never panics,
// and a record that parses decodes or fails cleanly.
func FuzzParseRecord(f *testing.F) {
	b := newBuilder(false)
	b.add(sampleFor("a", 1000, 1), labelsFor("a"))
	f.Add(b.finish(nil))
	b2 := newBuilder(true)
	b2.add(sampleFor("b", 2000, 2), labelsFor("b"))
	f.Add(b2.finish(nil))
	f.Add([]byte{})
	f.Add([]byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		h, body, err := parseRecord(p)
		if err != nil {
			return
		}
		d, err := decodeBody(h, body)
		if err != nil {
			return
		}
		if d.v2 != nil {
			_, _ = toV1(d.v2)
		}
		d.dropOlder(1500)
		_, _, _ = d.encode()
	})
}
