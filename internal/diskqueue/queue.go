package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// SyncPolicy says when appended data is fsynced.
type SyncPolicy int

const (
	// SyncInterval fsyncs every Options.SyncInterval (the default): a crash
	// of the process loses nothing, a crash of the machine at most that long.
	SyncInterval SyncPolicy = iota
	// SyncAlways fsyncs before Append returns.
	SyncAlways
	// SyncNever leaves it to the operating system.
	SyncNever
)

// FullPolicy says what Append does when the queue is at MaxBytes.
type FullPolicy int

const (
	// DropOldest deletes the oldest segment, counting what it held (the default).
	DropOldest FullPolicy = iota
	// Block makes Append wait for the reader to free space, or its context to end.
	Block
)

// Options configure a queue. Dir is required; zero values take defaults.
type Options struct {
	Dir          string
	MaxBytes     int64         // default 1 GiB
	SegmentBytes int64         // default 16 MiB, at most MaxBytes/4
	Sync         SyncPolicy    // default SyncInterval
	SyncInterval time.Duration // default 1 s
	Full         FullPolicy    // default DropOldest
	now          func() time.Time
}

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("diskqueue: closed")

// ErrTooLarge is returned for a record that could never fit the queue.
var ErrTooLarge = errors.New("diskqueue: record larger than the queue")

// Stats describe a queue at one moment.
type Stats struct {
	Bytes         int64     // on disk, acknowledged parts of the oldest segment included
	Records       int64     // not yet acknowledged
	Oldest        time.Time // append time of the oldest unacknowledged record; zero if none
	DroppedRecs   int64     // dropped because the queue was full
	DroppedBytes  int64
	CorruptRecs   int64 // skipped because they failed their checksum
	RepairedBytes int64 // cut from a torn tail at Open
}

// Record is what the reader gets: the payload (valid until the next call to
// Next), when it was appended, and the offset to Ack once it is delivered.
type Record struct {
	Payload []byte
	Time    time.Time
	End     int64
}

// Queue is a disk-backed FIFO. Append may be called concurrently; Next and
// Ack belong to one reader.
type Queue struct {
	opts Options

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change waiters care about
	segs     []segment
	head     *os.File
	dirty    bool // head written since the last fsync
	writeOff int64
	ackOff   int64
	readOff  int64
	records  int64   // unacknowledged
	pending  []int64 // ends of records handed out by Next, not yet acknowledged
	stats    Stats
	ckpt     *checkpoint
	closed   bool
	wbuf     []byte

	// reader side, used by Next only
	rfile *os.File
	rbase int64
	rbuf  []byte

	stopSync chan struct{}
	syncDone chan struct{}
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("diskqueue: Options.Dir is required")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 16 << 20
	}
	if o.SegmentBytes > o.MaxBytes/4 {
		o.SegmentBytes = max(o.MaxBytes/4, headerSize+1)
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second
	}
	if o.now == nil {
		o.now = time.Now
	}
	return nil
}

// Open opens (creating if needed) the queue in opts.Dir and repairs what a
// crash left behind. It never fails on damaged data, only on I/O errors.
func Open(opts Options) (*Queue, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	q := &Queue{opts: opts, changed: make(chan struct{})}
	ckpt, ackOff, err := openCheckpoint(opts.Dir)
	if err != nil {
		return nil, err
	}
	q.ckpt = ckpt
	if q.segs, err = listSegments(opts.Dir); err != nil {
		return nil, err
	}
	if len(q.segs) == 0 {
		q.segs = []segment{{base: ackOff}}
		f, err := os.OpenFile(segPath(opts.Dir, ackOff), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	last := &q.segs[len(q.segs)-1]
	size, cut, err := repairTail(segPath(opts.Dir, last.base))
	if err != nil {
		return nil, err
	}
	last.size, q.stats.RepairedBytes = size, cut
	q.writeOff = last.end()
	// The checkpoint may point before the oldest segment (dropped since) or
	// past the end (a torn tail was cut): bring it inside the stream.
	q.ackOff = min(max(ackOff, q.segs[0].base), q.writeOff)
	q.readOff = q.ackOff
	for _, s := range q.segs {
		if s.end() <= q.ackOff {
			continue
		}
		n, err := countRecords(opts.Dir, s, max(q.ackOff, s.base))
		if err != nil {
			return nil, err
		}
		q.records += n
	}
	q.deleteAcked()
	if q.head, err = os.OpenFile(segPath(opts.Dir, last.base), os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	if opts.Sync == SyncInterval {
		q.stopSync, q.syncDone = make(chan struct{}), make(chan struct{})
		go q.syncLoop()
	}
	return q, nil
}

// notify wakes everyone waiting for a change; call with mu held.
func (q *Queue) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// wait releases mu until the next change or the end of ctx; call with mu held.
func (q *Queue) wait(ctx context.Context) error {
	ch := q.changed
	q.mu.Unlock()
	defer q.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Append adds a record. When it returns nil the record is written, and
// fsynced if the policy is SyncAlways.
func (q *Queue) Append(ctx context.Context, payload []byte) error {
	size := int64(headerSize + len(payload))
	if size > q.opts.MaxBytes-q.opts.SegmentBytes && size > q.opts.SegmentBytes {
		return fmt.Errorf("%w: %d bytes, queue holds %d", ErrTooLarge, size, q.opts.MaxBytes)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && q.writeOff-q.segs[0].base+size > q.opts.MaxBytes {
		if q.opts.Full == DropOldest {
			if err := q.dropOldest(); err != nil {
				return err
			}
			continue
		}
		if err := q.wait(ctx); err != nil {
			return fmt.Errorf("diskqueue: full (%d bytes): %w", q.opts.MaxBytes, err)
		}
	}
	if q.closed {
		return ErrClosed
	}
	var zero [headerSize]byte
	q.wbuf = append(q.wbuf[:0], zero[:]...)
	encodeHeader(q.wbuf, q.opts.now().UnixNano(), payload)
	q.wbuf = append(q.wbuf, payload...)
	if _, err := q.head.Write(q.wbuf); err != nil {
		// A short write (disk full, say) must not leave a partial record
		// for the next one to land after: cut the segment back to where it
		// ended, so the queue stays usable once there is room again.
		if terr := q.head.Truncate(q.segs[len(q.segs)-1].size); terr != nil {
			return fmt.Errorf("diskqueue: writing %s: %w (and cutting the partial record: %v)", q.head.Name(), err, terr)
		}
		return fmt.Errorf("diskqueue: writing %s: %w", q.head.Name(), err)
	}
	q.segs[len(q.segs)-1].size += size
	q.writeOff += size
	q.records++
	q.dirty = true
	if q.opts.Sync == SyncAlways {
		if err := q.head.Sync(); err != nil {
			return err
		}
		q.dirty = false
	}
	if q.segs[len(q.segs)-1].size >= q.opts.SegmentBytes {
		if err := q.rotate(); err != nil {
			return err
		}
	}
	q.notify()
	return nil
}

// rotate closes the head segment and starts a new one at writeOff.
func (q *Queue) rotate() error {
	if q.opts.Sync != SyncNever {
		if err := q.head.Sync(); err != nil {
			return err
		}
	}
	if err := q.head.Close(); err != nil {
		return err
	}
	f, err := os.OpenFile(segPath(q.opts.Dir, q.writeOff), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	q.head, q.dirty = f, false
	q.segs = append(q.segs, segment{base: q.writeOff})
	return nil
}

// dropOldest deletes the oldest segment to make room, counting the records
// of it that were not yet acknowledged.
func (q *Queue) dropOldest() error {
	if len(q.segs) == 1 {
		if err := q.rotate(); err != nil { // the head must not be dropped while written
			return err
		}
	}
	old := q.segs[0]
	from := max(q.ackOff, old.base)
	if from < old.end() {
		n, _ := countRecords(q.opts.Dir, old, from)
		q.stats.DroppedRecs += n
		q.stats.DroppedBytes += old.end() - from
		q.records -= n
	}
	if err := os.Remove(segPath(q.opts.Dir, old.base)); err != nil && !os.IsNotExist(err) {
		return err
	}
	q.segs = q.segs[1:]
	if q.ackOff < old.end() {
		q.ackOff = old.end()
		q.pending = q.pending[:0]
		if err := q.ckpt.write(q.ackOff, q.opts.Sync == SyncAlways); err != nil {
			return err
		}
	}
	q.readOff = max(q.readOff, q.ackOff)
	return nil
}

// deleteAcked removes segments wholly before ackOff, never the head.
func (q *Queue) deleteAcked() {
	for len(q.segs) > 1 && q.segs[0].end() <= q.ackOff {
		_ = os.Remove(segPath(q.opts.Dir, q.segs[0].base))
		q.segs = q.segs[1:]
	}
}

func (q *Queue) syncLoop() {
	defer close(q.syncDone)
	t := time.NewTicker(q.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-q.stopSync:
			return
		case <-t.C:
			q.mu.Lock()
			if q.dirty && !q.closed {
				_ = q.head.Sync()
				_ = q.ckpt.f.Sync()
				q.dirty = false
			}
			q.mu.Unlock()
		}
	}
}
