//! Options of an open log, with their limits and defaults.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::{record_size, RECORD_HEADER_SIZE, SEAL_RECORD_SIZE, SEGMENT_HEADER_SIZE};
use crate::retention::Retention;

/// Smallest segment size accepted: room for the header and a few blocks of records.
pub const MIN_SEGMENT_SIZE: u64 = 64 * 1024;
/// Largest segment size accepted (4 GiB): record offsets and lengths stay in u32 range.
pub const MAX_SEGMENT_SIZE: u64 = 4 << 30;
/// Default segment size (64 MiB).
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default largest record payload (16 MiB), lowered to fit small segments.
pub const DEFAULT_MAX_RECORD_SIZE: u64 = 16 << 20;
/// Largest LSN the log assigns: 2^53 - 1, the largest integer a JavaScript number holds exactly.
pub const MAX_LSN: u64 = (1 << 53) - 1;
/// Default most bytes appended and not yet durable (64 MiB).
pub const DEFAULT_BUFFER_LIMIT: u64 = 64 << 20;
/// Segment sizes must be multiples of this (the direct-I/O block).
pub const SEGMENT_SIZE_GRANULE: u64 = 4096;

/// When the flusher makes appended records durable on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every `write` asks for durability; concurrent writers share one sync (group commit).
    Always,
    /// Only explicit `sync` calls and close make records durable.
    Never,
    /// Sync whatever is pending at this interval.
    Interval(Duration),
    /// Sync as soon as this many bytes are pending.
    Bytes(u64),
}

/// Whether to bypass the page cache for writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectIo {
    /// Use O_DIRECT when the filesystem accepts it, buffered I/O otherwise.
    Auto,
    /// Require O_DIRECT; opening fails where the filesystem refuses it.
    Required,
    /// Always buffered I/O.
    Off,
}

/// What recovery does with damage it finds on open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Cut a damaged tail of the last segment (a torn unsynced write) and report it;
    /// refuse damage anywhere else.
    TolerateTail,
    /// Refuse any damage, even a torn tail.
    Absolute,
    /// Keep the longest valid prefix of the log and drop everything after the first damage.
    PointInTime,
    /// Skip damaged records, keep every valid record after them, report what was skipped.
    SkipCorrupted,
}

/// Options for [`crate::Wal::open`].
#[derive(Clone, Debug)]
pub struct Options {
    /// When records become durable without an explicit sync.
    pub sync: SyncPolicy,
    /// Size every segment file is preallocated to, in bytes.
    pub segment_size: u64,
    /// Direct I/O choice.
    pub direct_io: DirectIo,
    /// Damage handling at open.
    pub recovery: RecoveryMode,
    /// Largest payload of one record, in bytes; `None` for the default:
    /// 16 MiB, or the segment's record capacity when that is smaller.
    pub max_record_size: Option<u64>,
    /// Most bytes that may be appended and not yet durable; an append past it
    /// fails with [`Error::Backpressure`] instead of buffering without bound.
    /// `None`: see [`Options::buffer_limit`].
    pub buffer_limit: Option<u64>,
    /// Which sealed segments are removed without being asked.
    pub retention: Retention,
    /// Size of the first segment of a new log; `None` for the default, 1 MiB
    /// (or `segment_size` when smaller). Each later segment doubles the one
    /// before, up to `segment_size`; set it to `segment_size` to preallocate
    /// full-size segments from the start.
    pub first_segment_size: Option<u64>,
    /// Derive the log id and segment salts from this seed instead of the
    /// operating system's generator, so that the same writes (with
    /// deterministic flushes) produce byte-identical files: for format
    /// fixtures and tests only. A real log must not set it: salts are what
    /// keep a stale record from another log or segment from validating.
    pub random_seed: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Always,
            segment_size: DEFAULT_SEGMENT_SIZE,
            direct_io: DirectIo::Auto,
            recovery: RecoveryMode::TolerateTail,
            max_record_size: None,
            buffer_limit: None,
            retention: Retention::default(),
            first_segment_size: None,
            random_seed: None,
        }
    }
}

/// Payload bytes a single record may have in a segment of `segment_size` bytes.
pub fn record_capacity(segment_size: u64) -> u64 {
    segment_size - (SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE + SEAL_RECORD_SIZE + 8) as u64
}

impl Options {
    /// Checks ranges; the message names the option and what is allowed.
    pub fn validate(&self) -> Result<()> {
        let size = self.segment_size;
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size)
            || !size.is_multiple_of(SEGMENT_SIZE_GRANULE)
        {
            return Err(Error::InvalidArgument(format!(
                "segmentSize must be a multiple of {SEGMENT_SIZE_GRANULE} between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE} bytes; got {size}"
            )));
        }
        if let Some(first) = self.first_segment_size {
            if !(MIN_SEGMENT_SIZE..=size).contains(&first)
                || !first.is_multiple_of(SEGMENT_SIZE_GRANULE)
            {
                return Err(Error::InvalidArgument(format!(
                    "the first segment size must be a multiple of {SEGMENT_SIZE_GRANULE} between {MIN_SEGMENT_SIZE} and segmentSize ({size}) bytes; got {first}"
                )));
            }
        }
        let capacity = record_capacity(size);
        if self.max_record_size == Some(0) || self.max_record_size() > capacity {
            return Err(Error::InvalidArgument(format!(
                "maxRecordSize must be between 1 and {capacity} bytes for a segmentSize of {size}; got {}",
                self.max_record_size()
            )));
        }
        let record_limit = record_size(self.max_record_size() as usize) as u64;
        if self.buffer_limit() < record_limit {
            return Err(Error::InvalidArgument(format!(
                "the buffer limit must hold at least one record of maxRecordSize ({record_limit} bytes with its header); got {}",
                self.buffer_limit()
            )));
        }
        match self.sync {
            SyncPolicy::Interval(interval)
                if interval.is_zero() || interval > Duration::from_secs(3600) =>
            {
                Err(Error::InvalidArgument(format!(
                    "sync.intervalMs must be between 1 and 3600000; got {}",
                    interval.as_millis()
                )))
            }
            SyncPolicy::Bytes(0) => Err(Error::InvalidArgument(
                "sync.bytes must be at least 1".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The record size limit in effect.
    pub fn max_record_size(&self) -> u64 {
        self.max_record_size
            .unwrap_or(DEFAULT_MAX_RECORD_SIZE.min(record_capacity(self.segment_size)))
    }

    /// The buffer limit in effect; by default [`DEFAULT_BUFFER_LIMIT`], or
    /// room for two records of the largest size when that is more.
    pub fn buffer_limit(&self) -> u64 {
        self.buffer_limit.unwrap_or_else(|| {
            DEFAULT_BUFFER_LIMIT.max(2 * record_size(self.max_record_size() as usize) as u64)
        })
    }

    /// Largest payload of one batch (count, lengths and records): a batch is
    /// one physical record, so it must fit a segment like any record.
    pub fn max_batch_payload(&self) -> u64 {
        record_capacity(self.segment_size)
    }
}
