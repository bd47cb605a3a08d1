//! What open does before the first append: find the segments, check that they
//! form one unbroken log, find the end of the valid records and cut off a
//! damaged tail. Everything it drops is reported, never silently.

use std::path::{Path, PathBuf};

use crate::aligned_buffer::BLOCK_SIZE;
use crate::error::{Error, Result};
use crate::format::{parse_segment_name, SegmentHeader, PREPARED_SEGMENT_NAME};
use crate::options::RecoveryMode;
use crate::scanner::{ScanItem, SegmentScanner};
use crate::storage::{OpenMode, Storage};
use crate::LOCK_FILE_NAME;

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

/// A segment found on disk.
#[derive(Clone, Debug)]
pub struct FoundSegment {
    /// Its checked header.
    pub header: SegmentHeader,
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
    /// `Some(offset)` when the segment ends with a valid seal at that offset.
    pub sealed_at: Option<u64>,
}

/// The outcome of recovery: nothing at all (a new log) or a log to continue.
pub struct RecoveredLog {
    /// What was found and done.
    pub report: RecoveryReport,
    /// The segments in LSN order.
    pub segments: Vec<FoundSegment>,
    /// Where appending resumes; `None` for a log with no segments.
    pub tail: Option<RecoveredTail>,
}

/// Recovers the log in `dir` (whose lock the caller holds).
pub fn recover(storage: &dyn Storage, dir: &Path, mode: RecoveryMode) -> Result<RecoveredLog> {
    let mut report = RecoveryReport::default();
    let names = storage
        .list_dir(dir)
        .map_err(|e| Error::io("readdir", dir, e))?;
    let mut segment_paths = Vec::new();
    let mut removed_any = false;
    for name in names {
        if let Some(first_lsn) = parse_segment_name(&name) {
            segment_paths.push((first_lsn, dir.join(&name)));
        } else if name == PREPARED_SEGMENT_NAME {
            // A zero-filled file that never became a segment: nothing of the log is in it.
            let path = dir.join(&name);
            storage
                .remove_file(&path)
                .map_err(|e| Error::io("unlink", &path, e))?;
            report.removed_files.push(name);
            removed_any = true;
        } else if name != LOCK_FILE_NAME {
            report.stray_files.push(name);
        }
    }
    segment_paths.sort();

    let mut scanners = Vec::with_capacity(segment_paths.len());
    for (first_lsn, path) in &segment_paths {
        let scanner = SegmentScanner::open(storage, path)?;
        if scanner.header().first_lsn != *first_lsn {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "header says the first LSN is {} but the file name says {first_lsn}",
                    scanner.header().first_lsn
                ),
            ));
        }
        if let Some(first) = scanners.first() {
            let first: &SegmentScanner = first;
            if first.header().log_id != scanner.header().log_id {
                return Err(Error::corrupt(
                    path,
                    0,
                    format!(
                        "foreign segment: it belongs to another log than {}",
                        first.path().display()
                    ),
                ));
            }
        }
        scanners.push(scanner);
    }

    let mut keep = scanners.len();
    for index in 1..scanners.len() {
        let broken = match scan_middle_segment(&mut scanners[index - 1], mode, &mut report)? {
            Some(damage) => Some(damage),
            None => chain_break(&mut scanners, index)?,
        };
        if let Some(error) = broken {
            match mode {
                RecoveryMode::PointInTime => {
                    keep = index;
                    break;
                }
                RecoveryMode::SkipCorrupted if matches!(error, ChainBreak::BadSeal(_)) => {
                    report.skipped_regions += 1;
                }
                _ => return Err(error.into_error()),
            }
        }
    }
    for scanner in scanners.drain(keep..) {
        let path = scanner.path().to_owned();
        storage
            .remove_file(&path)
            .map_err(|e| Error::io("unlink", &path, e))?;
        report.removed_files.push(file_name(&path));
        removed_any = true;
    }
    if removed_any {
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io("fsync", dir, e))?;
    }

    let segments: Vec<FoundSegment> = scanners
        .iter()
        .map(|scanner| FoundSegment {
            header: *scanner.header(),
        })
        .collect();
    let tail = match scanners.pop() {
        Some(last) => Some(recover_tail(storage, last, mode, &mut report)?),
        None => None,
    };
    report.segments = segments.len();
    if let (Some(first), Some(tail)) = (segments.first(), &tail) {
        report.records =
            (tail.next_lsn - first.header.first_lsn).saturating_sub(report.skipped_records);
    }
    Ok(RecoveredLog {
        report,
        segments,
        tail,
    })
}

enum ChainBreak {
    BadSeal(Error),
    Gap(Error),
}

impl ChainBreak {
    fn into_error(self) -> Error {
        match self {
            ChainBreak::BadSeal(error) | ChainBreak::Gap(error) => error,
        }
    }
}

/// Checks that segment `index - 1` ends with a seal that matches what
/// segment `index` says about it.
fn chain_break(scanners: &mut [SegmentScanner], index: usize) -> Result<Option<ChainBreak>> {
    let next = *scanners[index].header();
    let next_path = scanners[index].path().to_owned();
    let previous = &mut scanners[index - 1];
    let expected_last = next.first_lsn - 1;
    if next.prev_seal_offset == 0 {
        return Ok(Some(ChainBreak::Gap(Error::corrupt(
            &next_path,
            0,
            format!(
                "segment starts a new log but follows {}",
                previous.path().display()
            ),
        ))));
    }
    let Some((_, seal)) = previous.seal_at(next.prev_seal_offset)? else {
        return Ok(Some(ChainBreak::BadSeal(Error::corrupt(
            previous.path(),
            next.prev_seal_offset,
            format!(
                "no valid seal where {} says this segment ends (truncated or damaged middle segment)",
                next_path.display()
            ),
        ))));
    };
    if seal.last_lsn != expected_last {
        return Ok(Some(ChainBreak::Gap(Error::corrupt(
            &next_path,
            0,
            format!(
                "gap or overlap: {} ends at LSN {} but this segment starts at LSN {} (missing or duplicate segment)",
                previous.path().display(),
                seal.last_lsn,
                next.first_lsn
            ),
        ))));
    }
    if seal.digest != next.prev_digest {
        return Ok(Some(ChainBreak::BadSeal(Error::corrupt(
            previous.path(),
            next.prev_seal_offset,
            format!(
                "seal digest does not match the one recorded in {}",
                next_path.display()
            ),
        ))));
    }
    Ok(None)
}

/// Reads every record of a middle segment; `Some` when it is not a run of
/// valid records closed by a valid seal. In skip-corrupted mode damaged
/// records are skipped (and counted) as long as valid ones follow.
fn scan_middle_segment(
    scanner: &mut SegmentScanner,
    mode: RecoveryMode,
    report: &mut RecoveryReport,
) -> Result<Option<ChainBreak>> {
    loop {
        let (offset, reason) = match scanner.next_item()? {
            ScanItem::Record { .. } => continue,
            ScanItem::Seal { .. } => return Ok(None),
            ScanItem::End { offset } => (offset, String::from("segment ends without a seal")),
            ScanItem::Damage { offset, reason } => (offset, reason),
        };
        if mode == RecoveryMode::SkipCorrupted {
            let limit = scanner.file_length();
            if let Some((later, header)) = scanner.find_valid_record(offset + 1, limit)? {
                report.skipped_regions += 1;
                report.skipped_records += header.lsn - scanner.next_lsn();
                scanner.resume_at(later, &header);
                continue;
            }
        }
        return Ok(Some(ChainBreak::BadSeal(Error::corrupt(
            scanner.path(),
            offset,
            format!("{reason} (damage inside a middle segment)"),
        ))));
    }
}

/// Scans the last segment to the end of its valid records and applies the
/// recovery mode to whatever follows them.
///
/// A zero header ends the log unless something follows it within the tear
/// window (a torn write). Damage is a torn tail when no valid record of the
/// segment lies more than the tear window beyond it; otherwise it is damage
/// inside the log. Looking past a clean zero header is limited to the tear
/// window, so open does not read the whole preallocated segment.
fn recover_tail(
    storage: &dyn Storage,
    mut scanner: SegmentScanner,
    mode: RecoveryMode,
    report: &mut RecoveryReport,
) -> Result<RecoveredTail> {
    let file_length = scanner.file_length();
    let sealed_at = loop {
        let (offset, reason, search_limit) = match scanner.next_item()? {
            ScanItem::Record { .. } => continue,
            ScanItem::Seal { offset, .. } => break Some(offset),
            ScanItem::End { offset } => {
                let limit = offset + TEAR_WINDOW + BLOCK_SIZE as u64;
                let torn = scanner.find_valid_record(offset + 1, limit)?.is_some();
                if !torn && scanner.end_of_nonzero(offset, limit)? == offset {
                    break None;
                }
                (
                    offset,
                    String::from("unreadable bytes after the last valid record"),
                    limit,
                )
            }
            ScanItem::Damage { offset, reason } => (offset, reason, file_length),
        };
        if mode == RecoveryMode::SkipCorrupted {
            if let Some((later, header)) = scanner.find_valid_record(offset + 1, search_limit)? {
                report.skipped_regions += 1;
                report.skipped_records += header.lsn - scanner.next_lsn();
                scanner.resume_at(later, &header);
                continue;
            }
        }
        if mode != RecoveryMode::PointInTime {
            if let Some((later, _)) =
                scanner.find_valid_record(offset + TEAR_WINDOW, search_limit)?
            {
                return Err(Error::corrupt(
                    scanner.path(),
                    offset,
                    format!("{reason}, followed by valid records at offset {later}: damage inside the log, not a torn tail"),
                ));
            }
        }
        if mode == RecoveryMode::Absolute {
            return Err(Error::corrupt(
                scanner.path(),
                offset,
                format!("{reason} (absolute recovery refuses a damaged tail)"),
            ));
        }
        cut_tail(storage, &mut scanner, offset, search_limit, &reason, report)?;
        break None;
    };
    Ok(RecoveredTail {
        header: *scanner.header(),
        path: scanner.path().to_owned(),
        capacity: file_length,
        position: scanner.position(),
        next_lsn: scanner.next_lsn(),
        digest: scanner.digest(),
        record_count: scanner.record_count(),
        sealed_at,
    })
}

/// Zeroes what follows the last valid record, so that no leftover of a torn
/// write can ever be read as a later record, and syncs it before appending
/// resumes.
fn cut_tail(
    storage: &dyn Storage,
    scanner: &mut SegmentScanner,
    offset: u64,
    until: u64,
    reason: &str,
    report: &mut RecoveryReport,
) -> Result<()> {
    let end = scanner.end_of_nonzero(offset, until)?;
    if end > offset {
        let path = scanner.path().to_owned();
        let file = storage
            .open(&path, OpenMode::ReadWrite, false)
            .map_err(|e| Error::io("open", &path, e))?;
        let zeros = vec![0u8; (end - offset).min(1 << 20) as usize];
        let mut at = offset;
        while at < end {
            let length = ((end - at) as usize).min(zeros.len());
            file.write_all_at(&zeros[..length], at)
                .map_err(|e| Error::io("write", &path, e))?;
            at += length as u64;
        }
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", &path, e))?;
    }
    report.truncated_bytes = end - offset;
    report.truncated_reason = Some(format!(
        "{}: offset {offset}: {reason}",
        scanner.path().display()
    ));
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
