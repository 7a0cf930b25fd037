package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Next returns the next record after the last one it returned (after the
// checkpoint, right after Open), waiting for one to be appended if needed.
// Damaged ranges are skipped (counted once: at Open if found there, else
// here), and so is a segment file removed behind the queue's back.
func (q *Queue) Next(ctx context.Context) (Record, error) {
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return Record{}, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			q.mu.Unlock()
			return Record{}, err
		}
		q.readOff = max(q.readOff, q.ackOff) // drop-oldest may have moved past it
		if q.readOff >= q.writeOff {
			// Nothing unread is left, so the count is exact again whatever
			// damage found after Open made it guess.
			q.records = int64(len(q.pending))
			if err := q.wait(ctx); err != nil {
				q.mu.Unlock()
				return Record{}, err
			}
			continue
		}
		if sp, ok := q.badAt(q.readOff); ok {
			q.readOff = sp.to
			continue
		}
		seg, off := q.locate(q.readOff)
		if off != q.readOff {
			q.readOff = off // past a gap left by a vanished segment
			continue
		}
		q.mu.Unlock()
		rec, next, corrupt, err := q.readAt(seg, off)
		q.mu.Lock()
		if q.readOff != off {
			continue // dropped under us; start again from the new position
		}
		if errors.Is(err, os.ErrNotExist) {
			q.segmentVanished(seg, off)
			continue
		}
		if err != nil {
			q.mu.Unlock()
			return Record{}, err
		}
		q.readOff = next
		if corrupt {
			q.stats.CorruptRecs++
			q.stats.CorruptBytes += next - off
			q.records = max(q.records-1, int64(len(q.pending)))
			q.passDamage(next)
			continue
		}
		rec.End = next
		q.pending = append(q.pending, next)
		q.mu.Unlock()
		return rec, nil
	}
}

// passDamage moves the checkpoint past damage the reader skipped when
// nothing is in flight before it, so it is not met again after a restart;
// call with mu held.
func (q *Queue) passDamage(next int64) {
	if len(q.pending) == 0 && q.ackOff < next {
		q.ackOff = next
		if err := q.ckpt.write(q.ackOff, q.opts.Sync == SyncAlways); err != nil {
			q.ioError(err)
		}
		q.deleteAcked()
	}
}

// segmentVanished handles a segment file removed by someone else while
// queued: its unread bytes are lost, counted as damage, and reading goes on
// with the next segment. A vanished head is replaced by a new file, since
// appending to the unlinked one would lose everything written to it. Call
// with mu held.
func (q *Queue) segmentVanished(seg segment, off int64) {
	i := slices.IndexFunc(q.segs, func(s segment) bool { return s.base == seg.base })
	if i < 0 {
		return // dropped by the queue itself meanwhile
	}
	cur := q.segs[i]
	q.ioError(fmt.Errorf("diskqueue: segment %s was removed with %d unread bytes", segPath(q.opts.Dir, cur.base), cur.end()-off))
	q.stats.CorruptRecs++
	q.stats.CorruptBytes += cur.end() - off
	q.records = max(q.records-1, int64(len(q.pending)))
	if i == len(q.segs)-1 {
		if err := q.rotate(); err != nil {
			q.ioError(err)
			q.readOff = cur.end()
			return
		}
	}
	q.segs = slices.Delete(q.segs, i, i+1)
	q.readOff = cur.end()
	q.passDamage(cur.end())
}

// badAt returns the damaged range found at Open that holds off; call with mu held.
func (q *Queue) badAt(off int64) (span, bool) {
	for _, sp := range q.bad {
		if off >= sp.from && off < sp.to {
			return sp, true
		}
		if sp.from > off {
			break
		}
	}
	return span{}, false
}

// locate finds the segment holding stream offset off (the first one that
// ends after it, or the head) and the offset to read there: off itself, or
// the segment's start when off lies in a gap left by a vanished segment.
// Call with mu held.
func (q *Queue) locate(off int64) (segment, int64) {
	for i, s := range q.segs {
		if off < s.end() || i == len(q.segs)-1 {
			return s, max(off, s.base)
		}
	}
	panic("diskqueue: no segments") // Open always leaves a head
}

// readAt reads the record at stream offset off of segment seg. A damaged
// record is reported as corrupt with the offset to resume at: the next
// intact record of the segment, else its end.
func (q *Queue) readAt(seg segment, off int64) (rec Record, next int64, corrupt bool, err error) {
	if q.rr.f == nil || q.rbase != seg.base {
		if q.rr.f != nil {
			q.rr.f.Close()
			q.rr.f = nil
		}
		f, err := os.Open(segPath(q.opts.Dir, seg.base))
		if err != nil {
			return rec, 0, false, err
		}
		q.rr.f, q.rbase = f, seg.base
	}
	pos := off - seg.base
	payload, t, size, ok := q.rr.validAt(pos, seg.size)
	if ok {
		return Record{Payload: payload, Time: time.Unix(0, t)}, off + size, false, nil
	}
	if p, found := q.rr.resync(pos+1, seg.size); found {
		return rec, seg.base + p, true, nil
	}
	return rec, seg.end(), true, nil
}

// Ack marks every record up to end (a Record.End) delivered: the checkpoint
// moves there and whole segments before it are deleted.
func (q *Queue) Ack(end int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if end <= q.ackOff {
		return nil // already past it (dropped while in flight)
	}
	if end > q.writeOff {
		return fmt.Errorf("diskqueue: ack at %d beyond the end %d", end, q.writeOff)
	}
	for len(q.pending) > 0 && q.pending[0] <= end {
		q.pending = q.pending[1:]
		q.records--
	}
	q.ackOff = end
	q.readOff = max(q.readOff, end)
	if err := q.ckpt.write(end, q.opts.Sync == SyncAlways); err != nil {
		return err
	}
	q.deleteAcked()
	q.notify()
	return nil
}

// Stats returns the queue's figures now.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.stats
	st.Bytes = q.writeOff - q.segs[0].base
	st.PendingBytes = q.writeOff - max(q.ackOff, q.segs[0].base)
	st.Records = q.records
	st.Oldest = q.oldest()
	return st
}

// Close syncs and closes the queue; waiting Append and Next calls return ErrClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.notify()
	q.mu.Unlock()
	if q.stopSync != nil {
		close(q.stopSync)
		<-q.syncDone
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var errs []error
	if q.opts.Sync != SyncNever {
		errs = append(errs, q.opts.fsync(q.head), q.opts.fsync(q.ckpt.f))
		if q.dirDirty {
			errs = append(errs, q.syncDir())
		}
	}
	errs = append(errs, q.head.Close(), q.ckpt.f.Close())
	if q.rr.f != nil {
		errs = append(errs, q.rr.f.Close())
	}
	return errors.Join(errs...)
}

// oldest is the append time of the first unacknowledged intact record, or
// zero; call with mu held.
func (q *Queue) oldest() time.Time {
	off := q.ackOff
	if sp, ok := q.badAt(off); ok {
		off = sp.to
	}
	if off >= q.writeOff {
		return time.Time{}
	}
	seg, off := q.locate(off)
	f, err := os.Open(segPath(q.opts.Dir, seg.base))
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	var hdr [headerSize]byte
	if _, err := f.ReadAt(hdr[:], off-seg.base); err != nil {
		return time.Time{}
	}
	if _, _, t, err := decodeHeader(hdr[:]); err == nil {
		return time.Unix(0, t)
	}
	return time.Time{}
}

// IOErrors returns how many failures the queue survived (fsyncs,
// rotations, vanished segments) and the last of them, cheaply enough to ask
// after every record.
func (q *Queue) IOErrors() (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats.IOErrors, q.stats.LastIOError
}
