//! durawal: a write-ahead log with group commit, direct I/O, CRC32C-checked
//! records and crash recovery.
//!
//! [`Wal::append`] copies a record into an aligned buffer and returns its LSN
//! at once; a dedicated flush thread writes and syncs whole groups of records
//! and publishes the durable LSN. See `docs/architecture.md` and
//! `docs/FORMAT.md` in the repository.

#![warn(missing_docs)]

mod aligned_buffer;
mod append;
mod catalogue;
mod control_files;
mod durable_file;
mod error;
mod flusher;
pub mod format;
mod options;
mod random;
mod read_only;
mod recovery;
mod replay;
mod retention;
mod scanner;
mod seek_index;
mod segment_files;
mod segment_sizing;
pub mod storage;
mod truncation;
mod wal;

pub use error::{panic_message, Error, Result};
pub use options::{
    record_capacity, DirectIo, Options, RecoveryMode, SyncPolicy, DEFAULT_BUFFER_LIMIT,
    DEFAULT_MAX_RECORD_SIZE, DEFAULT_SEGMENT_SIZE, MAX_LSN, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE,
    SEGMENT_SIZE_GRANULE,
};
pub use read_only::{ChangeListener, LogReader};
pub use recovery::{
    inspect, FoundSeal, Inspection, RecoveredTail, RecoveryReport, Repair, TEAR_WINDOW,
};
pub use replay::{ReplayBatch, ReplayCursor};
pub use retention::Retention;
pub use wal::{FlushEvent, FlushListener, IoMode, Wal};

/// Name of the lock file in the log directory. It also serves as the direct-I/O probe.
pub const LOCK_FILE_NAME: &str = "LOCK";
