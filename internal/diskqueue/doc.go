// Package diskqueue is Sluice's durability point: a FIFO of opaque records
// (encoded, compressed remote-write requests) in segment files on disk, with
// one writer side and one reader.
//
// Layout of a queue directory:
//
//	00000000000000000000.seg   segment files, named by the stream offset of
//	00000000000067108864.seg   their first byte; the last one is the head
//	checkpoint                 two slots, each [seq u64][offset u64][crc u32]
//
// A record is [length u32][crc32c u32][unix nanos i64][payload], the CRC over
// time and payload. Append returns once the record is written (and fsynced as
// the SyncPolicy says); the reader reads records in order and Ack moves the
// read position, which the checkpoint keeps. After a crash everything after
// the checkpoint is read again: delivery is at least once, and the reader
// acknowledging each request as it succeeds bounds the repeats to the request
// in flight.
//
// Open checks every record after the checkpoint (length, CRC) and repairs
// what a crash or a failing disk can leave:
//   - an unfinished record at the end of the head segment with nothing valid
//     after it is a torn tail, and is cut off (RepairedBytes);
//   - damage followed by intact records (a zeroed page, flipped bits, an
//     overwritten length, in any segment) is skipped by resynchronising on
//     the next offset whose length fits and whose CRC matches, and counted
//     (CorruptRecs ranges, CorruptBytes); only the records overlapping the
//     damage are lost;
//   - a segment that was truncated or grew after the next one started is
//     fitted to where the next begins, the difference counted;
//   - a checkpoint slot that fails its CRC is ignored in favour of the other;
//     with both spoiled the queue replays from its oldest segment (repeats,
//     no loss); a checkpoint pointing outside the data is clamped and the
//     clamp written back.
//
// At run time a segment removed from the directory is skipped and counted,
// a removed head is replaced, a failed rotation keeps the current head, and a
// failed fsync is counted (IOErrors) and returned by the next Append. The
// queue is bounded in bytes: when full, the oldest segment is dropped
// (counted) or Append blocks, as FullPolicy says. Memory use does not depend
// on how much is queued.
package diskqueue
