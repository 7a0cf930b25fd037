package scrapeloop

import "sync"

// maxSpareBodies bounds the read buffers kept between scrapes: about as many
// as scrapes run at once here, each the size of a body.
const maxSpareBodies = 4

// bodyBuffers hands out read buffers. Unlike a sync.Pool it keeps them
// across garbage collections: a body of a few megabytes regrown from
// nothing every scrape would double what a scrape allocates.
type bodyBuffers struct {
	mu    sync.Mutex
	spare [][]byte
}

// get returns an empty buffer of at least size bytes.
func (b *bodyBuffers) get(size int) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, buf := range b.spare {
		if cap(buf) >= size {
			b.spare = append(b.spare[:i], b.spare[i+1:]...)
			return buf[:0]
		}
	}
	// None big enough: a new one with room for growth (bodies vary).
	return make([]byte, 0, size+size/8+4096)
}

// put keeps buf for a later get, dropping the smallest when full.
func (b *bodyBuffers) put(buf []byte) {
	if cap(buf) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.spare) < maxSpareBodies {
		b.spare = append(b.spare, buf[:0])
		return
	}
	small := 0
	for i := range b.spare {
		if cap(b.spare[i]) < cap(b.spare[small]) {
			small = i
		}
	}
	if cap(buf) > cap(b.spare[small]) {
		b.spare[small] = buf[:0]
	}
}
