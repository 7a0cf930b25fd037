package diskqueue

import (
	"bytes"
	"errors"
	"testing"
)

func encode(t int64, payload []byte) []byte {
	b := make([]byte, headerSize+len(payload))
	encodeHeader(b, t, payload)
	copy(b[headerSize:], payload)
	return b
}

func TestRecordRoundTripAndDamage(t *testing.T) {
	rec := encode(42, []byte("hello"))
	p, ts, n, err := DecodeRecord(rec)
	if err != nil || string(p) != "hello" || ts != 42 || n != len(rec) {
		t.Fatalf("decode = %q %d %d %v", p, ts, n, err)
	}
	if _, _, _, err := DecodeRecord(rec[:len(rec)-1]); !errors.Is(err, errTorn) {
		t.Fatalf("cut record: %v, want torn", err)
	}
	if _, _, _, err := DecodeRecord(rec[:5]); !errors.Is(err, errTorn) {
		t.Fatalf("cut header: %v, want torn", err)
	}
	bad := bytes.Clone(rec)
	bad[len(bad)-1] ^= 1
	if _, _, _, err := DecodeRecord(bad); !errors.Is(err, errCorrupt) {
		t.Fatalf("flipped bit: %v, want corrupt", err)
	}
	huge := bytes.Clone(rec)
	huge[3] = 0xff
	if _, _, _, err := DecodeRecord(huge); !errors.Is(err, errCorrupt) {
		t.Fatalf("impossible length: %v, want corrupt", err)
	}
}

// FuzzDecodeRecord: no input makes the decoder panic or return a payload
// that did not pass its checksum.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encode(1, []byte("seed")))
	f.Add([]byte{})
	f.Add(make([]byte, headerSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _, n, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if n != headerSize+len(p) || n > len(b) {
			t.Fatalf("size %d for payload %d in %d bytes", n, len(p), len(b))
		}
		if _, _, _, err := DecodeRecord(encode(0, p)); err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
	})
}
