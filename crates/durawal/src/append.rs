//! The append side: assigning LSNs and copying records into aligned buffers.
//!
//! Everything here runs under the log's mutex, which appenders hold only for
//! a header encode, a CRC32C pass over the payload (hardware, ~20 GB/s) and a
//! memcpy. The CRC has to be inside: it covers the LSN and is seeded with the
//! salt of the segment the record lands in, both decided under the lock.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use crate::aligned_buffer::{AlignedBuffer, BLOCK_SIZE};
use crate::error::{Error, Result};
use crate::format::{
    chain_digest, encode_batch_payload, record_size, RecordHeader, RecordKind, SealPayload,
    SegmentHeader, CHECKPOINT_VERSION, FORMAT_VERSION, SEAL_RECORD_SIZE, SEGMENT_HEADER_SIZE,
    SYNCED_BEFORE_VERSION,
};
use crate::options::MAX_LSN;
use crate::random::Randomness;
use crate::seek_index::SeekIndex;
use crate::segment_sizing::next_segment_size;
use crate::storage::StorageFile;

/// A segment a chunk starts: its header and its size.
#[derive(Clone, Copy, Debug)]
pub struct NewSegment {
    /// Its header (the chunk's first block).
    pub header: SegmentHeader,
    /// The size of its file.
    pub size: u64,
}

/// Bytes destined for one segment file, in file order.
pub struct Chunk {
    /// When set, this chunk starts a new segment: the flusher writes it into
    /// the prepared file and renames that into place.
    pub opens_segment: Option<NewSegment>,
    /// File offset of the first byte of `buffer` (block-aligned).
    pub file_offset: u64,
    /// The bytes.
    pub buffer: AlignedBuffer,
    /// After this chunk the segment is sealed and closed.
    pub seals_segment: bool,
    /// The chunk continues a segment of format 3, and no record went into
    /// it yet: the next one is the first of its flush and carries the
    /// synced-before flag. That flag is true when the flusher writes it,
    /// because the flusher writes the chunks of one flush only after the
    /// previous flush's sync returned (and a failed sync poisons the log,
    /// so nothing is written after it).
    pub next_record_follows_sync: bool,
}

/// The segment file appends continue in after a cut, for the flusher.
pub struct TailFile {
    /// The open file (direct when the log writes directly).
    pub file: Box<dyn StorageFile>,
    /// Its path.
    pub path: PathBuf,
    /// Its first LSN.
    pub first_lsn: u64,
}

/// The limits appends are checked against, from the options.
#[derive(Clone, Copy, Debug)]
pub struct AppendLimits {
    /// Size segments grow to (see `segment_sizing.rs`).
    pub segment_size: u64,
    /// Largest payload of one record.
    pub max_record_size: u64,
    /// Largest payload of one batch.
    pub max_batch_payload: u64,
    /// Most record bytes that may be appended and not yet durable.
    pub buffer_limit: u64,
}

/// The segment appends currently go to.
pub struct ActiveSegment {
    /// Its header.
    pub header: SegmentHeader,
    /// Its size; records and the seal must fit.
    pub capacity: u64,
    /// Where the next record goes.
    pub position: u64,
    /// Chained digest of its records.
    pub digest: u32,
    /// Logical records in it.
    pub record_count: u64,
    /// Offset of its seal when it is already sealed (recovery found it so):
    /// nothing more goes into it, and the next append starts a new segment.
    pub sealed_at: Option<u64>,
}

/// State shared by appenders and the flusher (always behind the log's mutex).
pub struct AppendState {
    /// LSN of the next record.
    pub next_lsn: u64,
    /// Where appends go.
    pub segment: ActiveSegment,
    /// Chunks not yet taken by the flusher; the last one is being filled.
    pub pending: VecDeque<Chunk>,
    /// Record bytes appended since the flusher last took the chunks.
    pub pending_bytes: u64,
    /// Record bytes the flusher took and has not yet made durable.
    pub in_flight_bytes: u64,
    /// Highest LSN that some caller asked to be made durable.
    pub requested_lsn: u64,
    /// Buffers the flusher gave back, reused to avoid reallocating.
    pub spare_buffers: Vec<AlignedBuffer>,
    /// The failure that poisoned the log, if any.
    pub failure: Option<Arc<Error>>,
    /// Close was requested; no more appends.
    pub closing: bool,
    /// A `truncateAfter` is cutting the log; appends are refused until it is done.
    pub truncating: bool,
    /// The file appends go to from now on, when a cut moved the end of the
    /// log into another segment; the flusher takes it with the next chunks.
    pub tail_handoff: Option<TailFile>,
    /// The limits appends are checked against, fixed at open.
    pub limits: AppendLimits,
    /// Checkpoints appended and not yet known durable: (segment, LSN).
    pub pending_checkpoints: Vec<(u64, u64)>,
    /// Where records are, sparsely, so replay can start near its `from`.
    pub seek_index: SeekIndex,
    /// Scratch space for encoding batch payloads.
    batch_scratch: Vec<u8>,
    /// Where new segments' salts come from.
    randomness: Randomness,
}

impl AppendState {
    /// State for appending at `segment.position`, whose partial block
    /// (`tail_block`, the bytes from the block start to the position) is
    /// already on disk and must be rewritten unchanged by the next flush.
    pub fn new(
        next_lsn: u64,
        segment: ActiveSegment,
        tail_block: &[u8],
        limits: AppendLimits,
        seek_index: SeekIndex,
        randomness: Randomness,
    ) -> Self {
        Self {
            next_lsn,
            pending: VecDeque::from([first_chunk(&segment, tail_block)]),
            segment,
            pending_bytes: 0,
            in_flight_bytes: 0,
            seek_index,
            requested_lsn: 0,
            spare_buffers: Vec::new(),
            failure: None,
            closing: false,
            truncating: false,
            tail_handoff: None,
            limits,
            pending_checkpoints: Vec::new(),
            batch_scratch: Vec::new(),
            randomness,
        }
    }

    /// Continues the log at `next_lsn` in `segment` after a cut (the
    /// flusher has written everything before it), as [`Self::new`] would.
    pub fn restart_at(&mut self, next_lsn: u64, segment: ActiveSegment, tail_block: &[u8]) {
        self.pending = VecDeque::from([first_chunk(&segment, tail_block)]);
        self.segment = segment;
        self.next_lsn = next_lsn;
        self.pending_bytes = 0;
        self.in_flight_bytes = 0;
        self.requested_lsn = self.requested_lsn.min(next_lsn - 1);
        self.pending_checkpoints.retain(|&(_, lsn)| lsn < next_lsn);
    }

    /// LSN of the last appended record (0 when none).
    pub fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }

    /// Refuses work once the log is poisoned or closing.
    pub fn check_open(&self) -> Result<()> {
        if let Some(failure) = &self.failure {
            return Err(Error::Poisoned(failure.clone()));
        }
        if self.closing {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Refuses appends while the log cannot take them.
    fn check_appendable(&self) -> Result<()> {
        self.check_open()?;
        if self.truncating {
            return Err(Error::Busy(
                "truncateAfter is cutting the log; append once it has finished",
            ));
        }
        Ok(())
    }

    /// Appends one record; returns its LSN.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64> {
        self.append_single(RecordKind::Data, payload)
    }

    /// Appends a checkpoint record; returns its LSN.
    pub fn checkpoint(&mut self, payload: &[u8]) -> Result<u64> {
        let lsn = self.append_single(RecordKind::Checkpoint, payload)?;
        self.pending_checkpoints
            .push((self.segment.header.first_lsn, lsn));
        Ok(lsn)
    }

    fn append_single(&mut self, kind: RecordKind, payload: &[u8]) -> Result<u64> {
        self.check_appendable()?;
        if payload.len() as u64 > self.limits.max_record_size {
            return Err(Error::TooLarge {
                what: "record",
                size: payload.len() as u64,
                limit: self.limits.max_record_size,
            });
        }
        self.append_record(kind, 1, payload)
    }

    /// Appends `records` as one atomic batch; returns the first and last LSN.
    pub fn append_batch(&mut self, records: &[&[u8]]) -> Result<(u64, u64)> {
        self.check_appendable()?;
        if records.is_empty() {
            return Err(Error::InvalidArgument(
                "appendBatch needs at least one record".into(),
            ));
        }
        if let Some(record) = records
            .iter()
            .find(|record| record.len() as u64 > self.limits.max_record_size)
        {
            return Err(Error::TooLarge {
                what: "record",
                size: record.len() as u64,
                limit: self.limits.max_record_size,
            });
        }
        let payload_size = 4 + records
            .iter()
            .map(|record| 4 + record.len() as u64)
            .sum::<u64>();
        if payload_size > self.limits.max_batch_payload {
            return Err(Error::TooLarge {
                what: "batch",
                size: payload_size,
                limit: self.limits.max_batch_payload,
            });
        }
        let mut scratch = std::mem::take(&mut self.batch_scratch);
        scratch.clear();
        encode_batch_payload(records, &mut scratch);
        let result = self.append_record(RecordKind::Batch, records.len() as u64, &scratch);
        self.batch_scratch = scratch;
        let first = result?;
        Ok((first, first + records.len() as u64 - 1))
    }

    /// Record bytes appended and not yet durable.
    pub fn buffered_bytes(&self) -> u64 {
        self.pending_bytes + self.in_flight_bytes
    }

    fn append_record(&mut self, kind: RecordKind, lsn_count: u64, payload: &[u8]) -> Result<u64> {
        let lsn = self.next_lsn;
        if lsn + lsn_count - 1 > MAX_LSN {
            return Err(Error::LsnExhausted { max: MAX_LSN });
        }
        let size = record_size(payload.len()) as u64;
        let buffered = self.buffered_bytes();
        if buffered + size > self.limits.buffer_limit {
            return Err(Error::Backpressure {
                buffered,
                size,
                limit: self.limits.buffer_limit,
            });
        }
        // A segment of format 1 (left by an older version) cannot hold a
        // checkpoint: the log moves on to a segment of today's format.
        if self.segment.sealed_at.is_some()
            || self.segment.position + size + SEAL_RECORD_SIZE as u64 > self.segment.capacity
            || (kind == RecordKind::Checkpoint && self.segment.header.version < CHECKPOINT_VERSION)
        {
            self.rotate(size)?;
        }
        let chunk = self
            .pending
            .back_mut()
            .expect("a chunk is always being filled");
        let header = RecordHeader::encode_flagged(
            self.segment.header.salt,
            kind,
            lsn,
            std::mem::take(&mut chunk.next_record_follows_sync),
            payload,
        );
        chunk.buffer.extend_from_slice(&header);
        chunk.buffer.extend_from_slice(payload);
        chunk
            .buffer
            .extend_zeroed(size as usize - header.len() - payload.len());
        let record_crc = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
        self.seek_index
            .note(self.segment.header.first_lsn, lsn, self.segment.position);
        self.segment.position += size;
        self.segment.digest = chain_digest(self.segment.digest, record_crc);
        self.segment.record_count += lsn_count;
        self.next_lsn += lsn_count;
        self.pending_bytes += size;
        Ok(lsn)
    }

    /// Seals the active segment (unless it is sealed already) and starts the
    /// next one, big enough for a record of `record_bytes`. Both happen in
    /// memory here; the flusher makes them real in order.
    fn rotate(&mut self, record_bytes: u64) -> Result<()> {
        let current = self.segment.header;
        let seal_offset = match self.segment.sealed_at {
            Some(offset) => Some(offset),
            // An empty segment (left by recovery, too small for this record)
            // is replaced under the same name rather than sealed: a second
            // segment starting at the same LSN would collide with it.
            None if self.segment.record_count == 0 => None,
            None => {
                let offset = self.segment.position;
                self.seal_current_segment();
                Some(offset)
            }
        };
        let next_header = match seal_offset {
            Some(offset) => SegmentHeader {
                version: FORMAT_VERSION,
                salt: self.randomness.salt()?,
                log_id: current.log_id,
                first_lsn: self.next_lsn,
                prev_seal_offset: offset,
                prev_digest: self.segment.digest,
            },
            None => SegmentHeader {
                version: FORMAT_VERSION,
                salt: self.randomness.salt()?,
                ..current
            },
        };
        let next_size = next_segment_size(
            self.segment.capacity,
            record_bytes,
            self.limits.segment_size,
        );
        let mut buffer = self.spare_buffers.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(&next_header.encode());
        self.pending.push_back(Chunk {
            opens_segment: Some(NewSegment {
                header: next_header,
                size: next_size,
            }),
            file_offset: 0,
            buffer,
            seals_segment: false,
            next_record_follows_sync: false,
        });
        self.segment = ActiveSegment {
            header: next_header,
            capacity: next_size,
            position: SEGMENT_HEADER_SIZE as u64,
            digest: 0,
            record_count: 0,
            sealed_at: None,
        };
        Ok(())
    }

    /// Appends the seal record that closes the active segment.
    fn seal_current_segment(&mut self) {
        let last_lsn = self.last_lsn();
        let seal = SealPayload {
            record_count: self.segment.record_count,
            last_lsn,
            digest: self.segment.digest,
        }
        .encode();
        let chunk = self
            .pending
            .back_mut()
            .expect("a chunk is always being filled");
        let header = RecordHeader::encode_flagged(
            self.segment.header.salt,
            RecordKind::Seal,
            last_lsn,
            std::mem::take(&mut chunk.next_record_follows_sync),
            &seal,
        );
        chunk.buffer.extend_from_slice(&header);
        chunk.buffer.extend_from_slice(&seal);
        chunk
            .buffer
            .extend_zeroed(SEAL_RECORD_SIZE - header.len() - seal.len());
        chunk.seals_segment = true;
    }

    /// Hands every pending chunk to the flusher and starts a new chunk that
    /// begins with a copy of the partial tail block. Rewriting that block is
    /// safe because the copy is byte-identical to what is (or will be) on
    /// disk, so a torn rewrite cannot damage records already acknowledged.
    pub fn take_pending(&mut self) -> (VecDeque<Chunk>, u64) {
        let last = self.pending.back().expect("a chunk is always being filled");
        let block_start = self.segment.position - self.segment.position % BLOCK_SIZE as u64;
        let from = (block_start - last.file_offset) as usize;
        let to = (self.segment.position - last.file_offset) as usize;
        let mut buffer = self.spare_buffers.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(&last.buffer.as_slice()[from..to]);
        let fresh = Chunk {
            opens_segment: None,
            file_offset: block_start,
            buffer,
            seals_segment: false,
            next_record_follows_sync: follows_sync(&self.segment),
        };
        let taken = std::mem::replace(&mut self.pending, VecDeque::from([fresh]));
        self.in_flight_bytes += self.pending_bytes;
        self.pending_bytes = 0;
        (taken, self.last_lsn())
    }
}

/// The chunk appends start filling at `segment.position`: it begins with
/// `tail_block`, the bytes of the partial block before the position, which
/// the next flush rewrites unchanged.
fn first_chunk(segment: &ActiveSegment, tail_block: &[u8]) -> Chunk {
    let mut buffer = AlignedBuffer::new();
    buffer.extend_from_slice(tail_block);
    Chunk {
        opens_segment: None,
        file_offset: segment.position - tail_block.len() as u64,
        buffer,
        seals_segment: false,
        next_record_follows_sync: follows_sync(segment),
    }
}

/// Whether the first record of a chunk continuing `segment` carries the
/// synced-before flag: in segments of a format that has it.
fn follows_sync(segment: &ActiveSegment) -> bool {
    segment.header.version >= SYNCED_BEFORE_VERSION
}
