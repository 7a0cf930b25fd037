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
// Open repairs what a crash can leave: a torn record at the end of the head
// segment is cut off; a record whose CRC fails elsewhere is skipped and
// counted; a checkpoint slot that fails its CRC is ignored in favour of the
// other. The queue is bounded in bytes: when full, the oldest segment is
// dropped (counted) or Append blocks, as FullPolicy says. Memory use does not
// depend on how much is queued.
package diskqueue
