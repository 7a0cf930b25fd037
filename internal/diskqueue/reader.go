package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Next returns the next record after the last one it returned (after the
// checkpoint, right after Open), waiting for one to be appended if needed.
func (q *Queue) Next(ctx context.Context) (Record, error) {
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return Record{}, ErrClosed
		}
		q.readOff = max(q.readOff, q.ackOff) // drop-oldest may have moved past it
		if q.readOff >= q.writeOff {
			if err := q.wait(ctx); err != nil {
				q.mu.Unlock()
				return Record{}, err
			}
			continue
		}
		seg, ok := q.segmentAt(q.readOff)
		if !ok {
			q.readOff = q.segs[0].base
			continue
		}
		off := q.readOff
		q.mu.Unlock()
		rec, next, corrupt, err := q.readAt(seg, off)
		q.mu.Lock()
		if errors.Is(err, os.ErrNotExist) || q.readOff != off {
			continue // dropped under us; start again from the new position
		}
		if err != nil {
			q.mu.Unlock()
			return Record{}, err
		}
		q.readOff = next
		if corrupt {
			q.stats.CorruptRecs++
			q.records--
			if len(q.pending) == 0 && q.ackOff < next {
				// Nothing in flight before it: move the checkpoint past the
				// damage so it is not met again after a restart.
				q.ackOff = next
				_ = q.ckpt.write(q.ackOff, q.opts.Sync == SyncAlways)
				q.deleteAcked()
			}
			continue
		}
		rec.End = next
		q.pending = append(q.pending, next)
		q.mu.Unlock()
		return rec, nil
	}
}

// segmentAt finds the segment holding stream offset off; call with mu held.
func (q *Queue) segmentAt(off int64) (segment, bool) {
	for i, s := range q.segs {
		if off >= s.base && (off < s.end() || i == len(q.segs)-1) {
			if off == s.end() && i+1 < len(q.segs) {
				continue
			}
			return s, true
		}
	}
	return segment{}, false
}

// readAt reads the record at stream offset off of segment seg. A damaged
// record is reported as corrupt with the offset to resume at: the next
// record when its header is sound, else the end of the segment.
func (q *Queue) readAt(seg segment, off int64) (rec Record, next int64, corrupt bool, err error) {
	if q.rfile == nil || q.rbase != seg.base {
		if q.rfile != nil {
			q.rfile.Close()
			q.rfile = nil
		}
		f, err := os.Open(segPath(q.opts.Dir, seg.base))
		if err != nil {
			return rec, 0, false, err
		}
		q.rfile, q.rbase = f, seg.base
	}
	pos := off - seg.base
	var hdr [headerSize]byte
	if _, err := q.rfile.ReadAt(hdr[:], pos); err != nil {
		return rec, seg.end(), true, nil
	}
	n, crc, t, err := decodeHeader(hdr[:])
	if err != nil || off+headerSize+int64(n) > seg.end() {
		return rec, seg.end(), true, nil
	}
	if cap(q.rbuf) < n {
		q.rbuf = make([]byte, n)
	}
	payload := q.rbuf[:n]
	if _, err := q.rfile.ReadAt(payload, pos+headerSize); err != nil {
		return rec, seg.end(), true, nil
	}
	next = off + headerSize + int64(n)
	if checkRecord(hdr[:], crc, payload) != nil {
		return rec, next, true, nil
	}
	return Record{Payload: payload, Time: time.Unix(0, t)}, next, false, nil
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
	st.Records = q.records
	if q.ackOff < q.writeOff {
		if seg, ok := q.segmentAt(q.ackOff); ok {
			if f, err := os.Open(segPath(q.opts.Dir, seg.base)); err == nil {
				var hdr [headerSize]byte
				if _, err := f.ReadAt(hdr[:], q.ackOff-seg.base); err == nil {
					if _, _, t, err := decodeHeader(hdr[:]); err == nil {
						st.Oldest = time.Unix(0, t)
					}
				}
				f.Close()
			}
		}
	}
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
		errs = append(errs, q.head.Sync(), q.ckpt.f.Sync())
	}
	errs = append(errs, q.head.Close(), q.ckpt.f.Close())
	if q.rfile != nil {
		errs = append(errs, q.rfile.Close())
	}
	return errors.Join(errs...)
}
