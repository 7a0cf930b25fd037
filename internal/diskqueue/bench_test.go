package diskqueue

import (
	"context"
	"testing"
)

// A record the size of a compressed remote-write request of ~2,000 samples.
const benchRecord = 16 << 10

func BenchmarkAppend(b *testing.B) {
	q, err := Open(Options{Dir: b.TempDir(), MaxBytes: 64 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	payload := make([]byte, benchRecord)
	b.SetBytes(benchRecord)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := q.Append(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDrain reads and acknowledges a backlog, as a sender catching up does.
func BenchmarkDrain(b *testing.B) {
	q, err := Open(Options{Dir: b.TempDir(), MaxBytes: 64 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	payload := make([]byte, benchRecord)
	for i := 0; i < b.N; i++ {
		if err := q.Append(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(benchRecord)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec, err := q.Next(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Ack(rec.End); err != nil {
			b.Fatal(err)
		}
	}
}
