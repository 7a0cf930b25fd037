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
	SyncInterval time.Duration // default 1 s; also how often the head file is checked
	Full         FullPolicy    // default DropOldest
	now          func() time.Time
	fsync        func(*os.File) error // (*os.File).Sync; tests make it fail, as EIO would
}

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("diskqueue: closed")

// ErrTooLarge is returned for a record that could never fit the queue.
var ErrTooLarge = errors.New("diskqueue: record larger than the queue")

// Stats describe a queue at one moment.
type Stats struct {
	Bytes         int64     // on disk, acknowledged parts of the oldest segment included
	PendingBytes  int64     // of those, the bytes not yet acknowledged (the backlog)
	Records       int64     // not yet acknowledged
	Oldest        time.Time // append time of the oldest unacknowledged record; zero if none
	DroppedRecs   int64     // dropped because the queue was full
	DroppedBytes  int64
	CorruptRecs   int64 // damaged ranges skipped (each held at least one record)
	CorruptBytes  int64 // bytes in those ranges
	RepairedBytes int64 // cut from a torn tail at Open
	IOErrors      int64 // failed fsyncs and segment rotations (the queue went on)
	LastIOError   error
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
	bad      []span  // damaged ranges found at Open, in order; the reader skips them
	syncErr  error   // a failed background fsync, reported by the next Append
	dirDirty bool    // segments removed since the directory was last fsynced
	stats    Stats
	ckpt     *checkpoint
	closed   bool
	wbuf     []byte

	// reader side, used by Next only
	rr    recordReader
	rbase int64

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
	if o.fsync == nil {
		o.fsync = (*os.File).Sync
	}
	return nil
}

// Open opens (creating if needed) the queue in opts.Dir and repairs what a
// crash or a damaged disk left behind. It never fails on damaged data, only
// on I/O errors. Every record after the checkpoint is read and checked once
// here, so that damage is found, skipped and counted before anything is
// sent, and the record count is exact.
func Open(opts Options) (*Queue, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	q := &Queue{opts: opts, changed: make(chan struct{})}
	ckpt, stored, err := openCheckpoint(opts.Dir)
	if err != nil {
		return nil, err
	}
	q.ckpt = ckpt
	if q.segs, err = listSegments(opts.Dir); err != nil {
		return nil, err
	}
	if len(q.segs) == 0 {
		q.segs = []segment{{base: stored}}
		f, err := os.OpenFile(segPath(opts.Dir, stored), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		f.Close()
		if err := q.syncDir(); err != nil {
			return nil, err
		}
	}
	// The checkpoint may point before the oldest segment (dropped since).
	q.ackOff = max(stored, q.segs[0].base)
	q.fitSegments()
	for i := range q.segs {
		if err := q.check(i); err != nil {
			return nil, err
		}
	}
	q.writeOff = q.segs[len(q.segs)-1].end()
	// Or past the end (a torn tail was cut, the file was truncated): bring it
	// inside the stream and write that down, or records appended from here
	// on would lie below a stale checkpoint and be skipped at the next Open.
	q.ackOff = min(q.ackOff, q.writeOff)
	if q.ackOff != stored {
		if err := q.ckpt.write(q.ackOff, opts.Sync != SyncNever); err != nil {
			return nil, err
		}
	}
	q.readOff = q.ackOff
	q.deleteAcked()
	last := q.segs[len(q.segs)-1]
	if q.head, err = os.OpenFile(segPath(opts.Dir, last.base), os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	q.stopSync, q.syncDone = make(chan struct{}), make(chan struct{})
	go q.syncLoop()
	return q, nil
}

// fitSegments makes each segment end where the next begins, as written:
// bytes added to a segment after the next one started are ignored, and the
// part of a truncated segment that is missing is lost; both are counted
// (where not yet acknowledged). Call from Open.
func (q *Queue) fitSegments() {
	for i := 0; i+1 < len(q.segs); i++ {
		s, next := &q.segs[i], q.segs[i+1]
		if next.base <= q.ackOff || s.end() == next.base {
			continue
		}
		q.stats.CorruptRecs++
		if s.end() > next.base {
			q.stats.CorruptBytes += s.end() - max(next.base, q.ackOff)
			s.size = next.base - s.base
		} else {
			q.stats.CorruptBytes += next.base - max(s.end(), q.ackOff)
		}
	}
}

// check scans segment i from the checkpoint on: its intact records are
// counted, damaged ranges are remembered (the reader skips them) and
// counted, and what follows the last intact record is a torn tail in the
// head, cut off, or damage in any other segment.
func (q *Queue) check(i int) error {
	s := &q.segs[i]
	head := i == len(q.segs)-1
	from := max(q.ackOff, s.base)
	if from >= s.end() {
		return nil
	}
	res, err := scanSegment(q.opts.Dir, *s, from)
	if err != nil {
		return err
	}
	q.records += res.records
	q.bad = append(q.bad, res.bad...)
	q.stats.CorruptRecs += int64(len(res.bad))
	q.stats.CorruptBytes += res.badBytes
	if res.good == s.end() {
		return nil
	}
	if !head {
		q.bad = append(q.bad, span{res.good, s.end()})
		q.stats.CorruptRecs++
		q.stats.CorruptBytes += s.end() - res.good
		return nil
	}
	if err := truncateSegment(segPath(q.opts.Dir, s.base), res.good-s.base); err != nil {
		return err
	}
	q.stats.RepairedBytes += s.end() - res.good
	s.size = res.good - s.base
	return nil
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
	if len(payload) > MaxRecordSize {
		return fmt.Errorf("%w: %d bytes, a record holds at most %d", ErrTooLarge, len(payload), MaxRecordSize)
	}
	if size > q.opts.MaxBytes-q.opts.SegmentBytes && size > q.opts.SegmentBytes {
		return fmt.Errorf("%w: %d bytes, queue holds %d", ErrTooLarge, size, q.opts.MaxBytes)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.syncErr; err != nil {
		// Said once: what was written before the failed fsync may not survive
		// a machine crash, and the caller should know before it counts on more.
		q.syncErr = nil
		return err
	}
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
	q.notify()
	if q.opts.Sync == SyncAlways {
		if err := q.opts.fsync(q.head); err != nil {
			q.ioError(err)
			return fmt.Errorf("diskqueue: fsync of %s: %w", q.head.Name(), err)
		}
		q.dirty = false
	}
	if q.segs[len(q.segs)-1].size >= q.opts.SegmentBytes {
		// The record is written: a failed rotation is counted and tried
		// again at the next Append, the head growing past its size meanwhile.
		if err := q.rotate(); err != nil {
			q.ioError(err)
		}
	}
	return nil
}

// ioError counts a failure the queue survives; call with mu held.
func (q *Queue) ioError(err error) {
	q.stats.IOErrors++
	q.stats.LastIOError = err
}

// rotate starts a new head segment at writeOff. The new file is created
// before the old one is closed, so a failure (no inodes, EMFILE, EACCES)
// leaves the current head in use.
func (q *Queue) rotate() error {
	path := segPath(q.opts.Dir, q.writeOff)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("diskqueue: starting segment: %w", err)
	}
	if q.opts.Sync != SyncNever {
		// The new file's name must be durable before records in it count.
		if err := q.syncDir(); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("diskqueue: starting segment: %w", err)
		}
		if err := q.opts.fsync(q.head); err != nil {
			q.ioError(fmt.Errorf("diskqueue: fsync of %s: %w", q.head.Name(), err))
		}
	}
	q.head.Close()
	q.head, q.dirty = f, false
	q.segs = append(q.segs, segment{base: q.writeOff})
	return nil
}

// syncDir fsyncs the queue directory, making created and removed segment
// names durable.
func (q *Queue) syncDir() error {
	d, err := os.Open(q.opts.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("diskqueue: fsync of %s: %w", q.opts.Dir, err)
	}
	q.dirDirty = false
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
		q.records = max(q.records-n, 0)
	}
	if err := os.Remove(segPath(q.opts.Dir, old.base)); err != nil && !os.IsNotExist(err) {
		return err
	}
	q.dirDirty = true
	q.segs = q.segs[1:]
	if q.ackOff < old.end() {
		q.ackOff = old.end()
		q.pending = q.pending[:0]
		if err := q.ckpt.write(q.ackOff, q.opts.Sync == SyncAlways); err != nil {
			return err
		}
	}
	q.readOff = max(q.readOff, q.ackOff)
	q.trimBad()
	return nil
}

// deleteAcked removes segments wholly before ackOff, never the head.
func (q *Queue) deleteAcked() {
	for len(q.segs) > 1 && q.segs[0].end() <= q.ackOff {
		_ = os.Remove(segPath(q.opts.Dir, q.segs[0].base))
		q.segs = q.segs[1:]
		q.dirDirty = true
	}
	q.trimBad()
}

// trimBad forgets damaged ranges the checkpoint has passed.
func (q *Queue) trimBad() {
	i := 0
	for i < len(q.bad) && q.bad[i].to <= q.ackOff {
		i++
	}
	q.bad = q.bad[i:]
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
			if !q.closed {
				if q.opts.Sync == SyncInterval {
					q.syncNow()
				}
				q.checkHead()
			}
			q.mu.Unlock()
		}
	}
}

// checkHead replaces a head segment whose file was removed from the
// directory: records appended to the unlinked file would be gone at the next
// start. Call with mu held.
func (q *Queue) checkHead() {
	path := segPath(q.opts.Dir, q.segs[len(q.segs)-1].base)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return
	}
	q.ioError(fmt.Errorf("diskqueue: head segment %s was removed; starting a new one", path))
	if err := q.rotate(); err != nil {
		q.ioError(err)
	}
}

// syncNow fsyncs what is dirty; call with mu held. A failed fsync of the
// head (EIO) may have lost written pages: it is counted, reported by the
// next Append, and writing moves on to a fresh segment.
func (q *Queue) syncNow() {
	if q.dirty {
		if err := q.opts.fsync(q.head); err != nil {
			err = fmt.Errorf("diskqueue: fsync of %s failed, records written since the last good fsync may not survive a machine crash: %w", q.head.Name(), err)
			q.ioError(err)
			q.syncErr = err
			if q.segs[len(q.segs)-1].size > 0 {
				if rerr := q.rotate(); rerr != nil {
					q.ioError(rerr)
				}
			}
		}
		q.dirty = false
	}
	if q.ckpt.dirty {
		if err := q.ckpt.sync(); err != nil {
			q.ioError(fmt.Errorf("diskqueue: fsync of the checkpoint: %w", err))
		}
	}
	if q.dirDirty {
		if err := q.syncDir(); err != nil {
			q.ioError(err)
		}
	}
}
