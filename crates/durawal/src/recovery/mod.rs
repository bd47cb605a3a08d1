//! What open does before the first append: find the segments, check that they
//! form one unbroken log, find the end of the valid records and cut off a
//! damaged tail. Everything it drops is reported, never silently.
//!
//! It is two steps: a read-only [`inspect`]ion that decides what the log is
//! and which [`Repair`]s it needs, and [`repair`], which applies them. A
//! reader that must not write (another process, a read-only directory, a
//! full disk) can use the inspection alone.

mod inspect;
mod repair;

pub use inspect::{inspect, inspect_cut, inspect_visible, Inspection};
pub use repair::{repair, Repair};

use std::path::{Path, PathBuf};

use crate::catalogue::SegmentEntry;
use crate::error::{Error, Result};
use crate::format::{parse_segment_name, segment_file_name, SealPayload, SegmentHeader};
use crate::options::RecoveryMode;
use crate::scanner::SegmentScanner;
use crate::seek_index::SeekIndex;
use crate::storage::{OpenMode, Storage};

/// At most this many bytes are written between two syncs (see the flusher),
/// so a crash can tear at most this much of the log. Valid records found
/// further than this past damage prove the damage is not a torn write.
pub const TEAR_WINDOW: u64 = 4 << 20;

/// What recovery found and what it did about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the log after recovery.
    pub segments: usize,
    /// Logical records in the log after recovery.
    pub records: u64,
    /// Bytes cut from the end of the last segment.
    pub truncated_bytes: u64,
    /// Why they were cut, with file and offset.
    pub truncated_reason: Option<String>,
    /// Damaged regions skipped in skip-corrupted mode.
    pub skipped_regions: u64,
    /// LSNs lost in those regions.
    pub skipped_records: u64,
    /// Segment files deleted (point-in-time recovery past damage, leftover preparations).
    pub removed_files: Vec<String>,
    /// Unrelated files found in the directory and left alone.
    pub stray_files: Vec<String>,
}

/// Where appending resumes.
pub struct RecoveredTail {
    /// The last segment's header.
    pub header: SegmentHeader,
    /// Its path.
    pub path: PathBuf,
    /// Its length (its capacity for records).
    pub capacity: u64,
    /// Offset where the next record goes.
    pub position: u64,
    /// LSN of the next record.
    pub next_lsn: u64,
    /// Digest of the records in the segment.
    pub digest: u32,
    /// Logical records in the segment.
    pub record_count: u64,
    /// The valid seal the segment ends with, if it does.
    pub seal: Option<FoundSeal>,
    /// LSN of the last checkpoint record in the segment.
    pub last_checkpoint: Option<u64>,
}

/// A seal that closes a segment, and where it is.
#[derive(Clone, Copy, Debug)]
pub struct FoundSeal {
    /// Offset of the seal record.
    pub offset: u64,
    /// What it says; its digest is what the next segment's header repeats.
    pub seal: SealPayload,
}

/// The outcome of recovery: nothing at all (a new log) or a log to continue.
pub struct RecoveredLog {
    /// What was found and done.
    pub report: RecoveryReport,
    /// Where appending resumes; `None` for a log with no segments.
    pub tail: Option<RecoveredTail>,
    /// Where the records are, sparsely, for replay to start near its `from`.
    pub seek_index: SeekIndex,
    /// The kept segments by first LSN.
    pub segments: Vec<(u64, SegmentEntry)>,
}

/// Recovers the log in `dir` (whose lock the caller holds): makes durable
/// what an earlier writer left pending, inspects the log, then applies the
/// repairs the inspection found necessary.
pub fn recover(storage: &dyn Storage, dir: &Path, mode: RecoveryMode) -> Result<RecoveredLog> {
    make_durable_what_a_crash_left(storage, dir)?;
    let inspection = inspect(storage, dir, mode)?;
    repair(storage, dir, &inspection.repairs)?;
    Ok(RecoveredLog {
        report: inspection.report,
        tail: inspection.tail,
        seek_index: inspection.seek_index,
        segments: inspection.segments,
    })
}

/// A writer that crashed (a process crash, not a power loss) can leave
/// records written but not yet synced in the page cache of its last
/// segment, and a segment renamed into place whose name the directory has
/// not yet synced. Recovery reads both and would call them durable, and the
/// log would append after them, so a power loss after the reopen could
/// take away records already reported durable, or the whole segment holding
/// newly acknowledged ones. Syncing the directory and the last segment
/// first makes what recovery then reads what stable storage holds. (Only
/// the last segment can hold unsynced bytes: a segment is synced before
/// the next one is created.)
fn make_durable_what_a_crash_left(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let names = storage
        .list_dir(dir)
        .map_err(|e| Error::io("readdir", dir, e))?;
    let Some(last) = names
        .iter()
        .filter_map(|name| parse_segment_name(name))
        .max()
    else {
        return Ok(());
    };
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync", dir, e))?;
    let path = dir.join(segment_file_name(last));
    // First as the scanner opens it, so that an entry that is not a regular
    // file is refused as a misplaced file (a directory would fail the next
    // open with EISDIR); then for writing, because Windows' FlushFileBuffers
    // refuses a read-only handle.
    drop(SegmentScanner::open_file(storage, &path)?);
    storage
        .open(&path, OpenMode::ReadWrite, false)
        .map_err(|e| Error::open_failed(&path, e))?
        .sync_data()
        .map_err(|e| Error::io("fdatasync", &path, e))
}
