//! The read-only half of recovery: what the log holds, what is damaged, and
//! what must be repaired. Nothing here writes, creates or removes a file.

use std::path::Path;

use super::{FoundSeal, RecoveredTail, RecoveryReport, Repair, TEAR_WINDOW};
use crate::catalogue::SegmentEntry;
use crate::control_files::read_control;
use crate::error::{Error, Result};
use crate::format::{
    parse_segment_name, ControlKind, ControlRecord, RecordKind, SealPayload, PREPARED_SEGMENT_NAME,
};
use crate::options::RecoveryMode;
use crate::scanner::{ScanItem, SegmentScanner};
use crate::seek_index::{SeekIndex, SegmentPoints};
use crate::storage::Storage;
use crate::LOCK_FILE_NAME;

/// What the log in `dir` is, and what must be repaired before appending to it.
pub struct Inspection {
    /// What was found, and what the repairs will drop.
    pub report: RecoveryReport,
    /// LSN of the first record of the first segment; `None` for a log with no segments.
    pub first_lsn: Option<u64>,
    /// Where appending resumes once the repairs are applied; `None` for a log with no segments.
    pub tail: Option<RecoveredTail>,
    /// What [`super::repair`] must do, in order, before the log is appended to.
    pub repairs: Vec<Repair>,
    /// Where the records of the kept segments are, sparsely.
    pub seek_index: SeekIndex,
    /// The kept segments by first LSN.
    pub segments: Vec<(u64, SegmentEntry)>,
}

/// Reads the log in `dir` and decides what it holds, under the rules of
/// `mode`, without writing, creating or removing anything.
pub fn inspect(storage: &dyn Storage, dir: &Path, mode: RecoveryMode) -> Result<Inspection> {
    inspect_visible(storage, dir, mode, None)
}

/// [`inspect`] for a reader that may look only at records up to `visible`
/// (the durable LSN a writer published): the last segment's scan ends before
/// the first record past it, as at a clean end. Past that LSN a live writer
/// may be writing at this very moment, and a half-written flush followed by
/// a later one would read as damage to synced records.
pub fn inspect_visible(
    storage: &dyn Storage,
    dir: &Path,
    mode: RecoveryMode,
    visible: Option<u64>,
) -> Result<Inspection> {
    let mut report = RecoveryReport::default();
    let mut repairs = Vec::new();
    let names = storage
        .list_dir(dir)
        .map_err(|e| Error::io("readdir", dir, e))?;
    let head = read_control(storage, dir, ControlKind::Head)?;
    let cut = read_control(storage, dir, ControlKind::Cut)?;
    let mut segment_paths = Vec::new();
    for name in names {
        if let Some(first_lsn) = parse_segment_name(&name) {
            segment_paths.push((first_lsn, dir.join(&name)));
        } else if is_unfinished_file(&name) {
            // A file that never became a segment or a control file: nothing
            // of the log is in it.
            plan_removal(dir.join(&name), &mut repairs, &mut report);
        } else if !is_log_file(&name) {
            report.stray_files.push(name);
        }
    }
    segment_paths.sort();
    // Segments before the one HEAD names, and after the cut an unfinished
    // truncateAfter asked for, are what those interrupted operations had
    // not removed yet; recovery finishes them. The first segment stays even
    // when the cut empties it, so that the log keeps its place.
    if let Some(head) = &head {
        let below = segment_paths.partition_point(|(first, _)| *first < head.lsn);
        for (_, path) in segment_paths.drain(..below) {
            plan_removal(path, &mut repairs, &mut report);
        }
    }
    if let Some(cut) = &cut {
        let kept = segment_paths
            .partition_point(|(first, _)| *first <= cut.lsn)
            .max(1)
            .min(segment_paths.len());
        for (_, path) in segment_paths.drain(kept..) {
            plan_removal(path, &mut repairs, &mut report);
        }
    }

    // Open every segment header. In point-in-time mode a damaged one ends the
    // log there; an entry that is not a regular file, or a valid header that
    // contradicts its name or belongs to another log, is a misplaced file,
    // not damage, and is always refused.
    let mut scanners: Vec<SegmentScanner> = Vec::with_capacity(segment_paths.len());
    let mut cut_from = segment_paths.len();
    for (index, (first_lsn, path)) in segment_paths.iter().enumerate() {
        let file = SegmentScanner::open_file(storage, path)?;
        let scanner = match SegmentScanner::read_header(file, path) {
            Ok(scanner) => scanner,
            Err(Error::Corrupt { .. }) if mode == RecoveryMode::PointInTime && index > 0 => {
                cut_from = index;
                break;
            }
            Err(error) => return Err(error),
        };
        check_belongs(&scanner, *first_lsn, scanners.first())?;
        scanners.push(scanner);
    }
    check_starts_the_log(dir, scanners.first(), head.as_ref())?;
    if let (Some(cut), Some(first)) = (&cut, scanners.first()) {
        check_same_log(dir, cut, first)?;
    }

    // Read every middle segment and check that each one continues the one before.
    let mut seal_before_cut = None;
    for index in 1..scanners.len() {
        let (problem, seal) =
            match scan_middle_segment(&mut scanners[index - 1], mode, &mut report)? {
                SegmentEnd::Sealed { offset, seal } => (
                    continuation_break(&scanners[index - 1], offset, &seal, &scanners[index]),
                    Some(FoundSeal { offset, seal }),
                ),
                SegmentEnd::Broken(error) => (Some(error), None),
            };
        let Some(error) = problem else {
            continue;
        };
        match mode {
            RecoveryMode::PointInTime => {
                cut_from = index;
                seal_before_cut = seal;
                break;
            }
            RecoveryMode::SkipCorrupted if seal.is_none() => {
                let next_first_lsn = scanners[index].header().first_lsn;
                let next_lsn = scanners[index - 1].next_lsn();
                // A segment starting at an LSN the damaged one already holds
                // overlaps it (a fork's segment, say): skipping to it would
                // replay those LSNs twice, and hide or replace records.
                if next_first_lsn < next_lsn {
                    return Err(Error::corrupt(
                        scanners[index].path(),
                        0,
                        format!(
                            "overlap: {} holds records up to LSN {} but this segment starts at LSN {next_first_lsn} (duplicate or forked segment)",
                            scanners[index - 1].path().display(),
                            next_lsn - 1
                        ),
                    ));
                }
                report.skipped_regions += 1;
                report.skipped_records += next_first_lsn - next_lsn;
            }
            _ => return Err(error),
        }
    }
    scanners.truncate(cut_from);
    for (_, path) in &segment_paths[cut_from..] {
        repairs.push(Repair::RemoveFile(path.clone()));
        report.removed_files.push(file_name(path));
    }

    let first_lsn = scanners.first().map(|scanner| scanner.header().first_lsn);
    report.segments = scanners.len();
    let mut seek_index = SeekIndex::default();
    let tail = match scanners.pop() {
        Some(mut last) => {
            let limit = match (&cut, visible) {
                (Some(cut), Some(visible)) if visible < cut.lsn => TailLimit::Visible(visible),
                (Some(cut), _) => TailLimit::Cut(cut.lsn),
                (None, Some(visible)) => TailLimit::Visible(visible),
                (None, None) => TailLimit::None,
            };
            let tail = inspect_tail(
                &mut last,
                mode,
                limit,
                seal_before_cut,
                &mut report,
                &mut repairs,
            )?;
            seek_index.insert(last.header().first_lsn, last.take_seek_points());
            Some(tail)
        }
        None => None,
    };
    for scanner in &mut scanners {
        seek_index.insert(scanner.header().first_lsn, scanner.take_seek_points());
    }
    let segments = catalogue_entries(storage, &scanners, tail.as_ref())?;
    if cut.is_some() {
        // The cut must be on disk before its record goes: without the
        // record, a later segment that reappeared would read as damage.
        repairs.push(Repair::SyncDir);
        plan_removal(
            dir.join(ControlKind::Cut.file_name()),
            &mut repairs,
            &mut report,
        );
    }
    if let (Some(first_lsn), Some(tail)) = (first_lsn, &tail) {
        report.records = (tail.next_lsn - first_lsn).saturating_sub(report.skipped_records);
    }
    Ok(Inspection {
        report,
        first_lsn,
        tail,
        repairs,
        seek_index,
        segments,
    })
}

/// A file of the log's own beside its segments.
fn is_log_file(name: &str) -> bool {
    name == LOCK_FILE_NAME
        || name == ControlKind::Head.file_name()
        || name == ControlKind::Cut.file_name()
        || name == ControlKind::Durable.file_name()
}

/// A file the log writes under a temporary name before renaming it.
fn is_unfinished_file(name: &str) -> bool {
    name == PREPARED_SEGMENT_NAME
        || name == ControlKind::Head.temporary_name()
        || name == ControlKind::Cut.temporary_name()
}

fn plan_removal(path: std::path::PathBuf, repairs: &mut Vec<Repair>, report: &mut RecoveryReport) {
    report.removed_files.push(file_name(&path));
    repairs.push(Repair::RemoveFile(path));
}

/// The catalogue's view of the kept segments: `middle` (every one but the
/// last, all sealed) and the segment `tail` describes.
fn catalogue_entries(
    storage: &dyn Storage,
    middle: &[SegmentScanner],
    tail: Option<&RecoveredTail>,
) -> Result<Vec<(u64, SegmentEntry)>> {
    let sealed_at = |path: &Path| {
        storage
            .modified(path)
            .map_err(|e| Error::io("stat", path, e))
    };
    let mut entries = Vec::with_capacity(middle.len() + 1);
    for scanner in middle {
        let entry = SegmentEntry {
            path: scanner.path().to_owned(),
            bytes: scanner.file_length(),
            sealed_at: Some(sealed_at(scanner.path())?),
            last_checkpoint: scanner.last_checkpoint(),
        };
        entries.push((scanner.header().first_lsn, entry));
    }
    if let Some(tail) = tail {
        let entry = SegmentEntry {
            path: tail.path.clone(),
            bytes: tail.capacity,
            sealed_at: match tail.seal {
                Some(_) => Some(sealed_at(&tail.path)?),
                None => None,
            },
            last_checkpoint: tail.last_checkpoint,
        };
        entries.push((tail.header.first_lsn, entry));
    }
    Ok(entries)
}

/// Plans `truncateAfter(lsn)` on a log whose every record is on disk: the
/// segment at `path` (the one holding LSN `lsn + 1`, or the log's first)
/// becomes the last one, cut before the first record holding an LSN above
/// `lsn`. Returns where appending resumes, the repairs that zero the cut
/// part, and the seek points of what remains of the segment.
pub fn inspect_cut(
    storage: &dyn Storage,
    path: &Path,
    lsn: u64,
    mode: RecoveryMode,
) -> Result<(RecoveredTail, Vec<Repair>, SegmentPoints)> {
    let mut scanner = SegmentScanner::read_header(SegmentScanner::open_file(storage, path)?, path)?;
    let mut repairs = Vec::new();
    let tail = inspect_tail(
        &mut scanner,
        mode,
        TailLimit::Cut(lsn),
        None,
        &mut RecoveryReport::default(),
        &mut repairs,
    )?;
    Ok((tail, repairs, scanner.take_seek_points()))
}

/// Checks a segment's header against its file name and the log's id.
fn check_belongs(
    scanner: &SegmentScanner,
    first_lsn: u64,
    first_segment: Option<&SegmentScanner>,
) -> Result<()> {
    let header = scanner.header();
    let path = scanner.path();
    if header.first_lsn != first_lsn {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "header says the first LSN is {} but the file name says {first_lsn}",
                header.first_lsn
            ),
        ));
    }
    if let Some(first) = first_segment {
        if first.header().log_id != header.log_id {
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
    Ok(())
}

/// Checks that the first segment present is the first segment of the log:
/// the one `HEAD` names when truncation removed earlier ones, else one whose
/// header names no previous segment's seal. A deleted head of the log is
/// refused, in every mode, rather than replayed as a shorter log.
fn check_starts_the_log(
    dir: &Path,
    first: Option<&SegmentScanner>,
    head: Option<&ControlRecord>,
) -> Result<()> {
    let Some(first) = first else {
        return match head {
            Some(head) => Err(Error::corrupt(
                dir.join(ControlKind::Head.file_name()),
                0,
                format!(
                    "the log begins with the segment starting at LSN {}, and no segment is present",
                    head.lsn
                ),
            )),
            None => Ok(()),
        };
    };
    let header = first.header();
    if let Some(head) = head {
        check_same_log(dir, head, first)?;
        if header.first_lsn == head.lsn {
            return Ok(());
        }
        return Err(Error::corrupt(
            dir.join(ControlKind::Head.file_name()),
            0,
            format!(
                "the log's first segment is missing: HEAD says the log begins with the segment starting at LSN {}, and the first segment present is {}",
                head.lsn,
                first.path().display()
            ),
        ));
    }
    if header.prev_seal_offset == 0 {
        return Ok(());
    }
    Err(Error::corrupt(
        first.path(),
        0,
        format!(
            "the log's first segment is missing: this segment follows one that sealed at LSN {} (its header names that segment's seal at offset {}), and no segment before it is present",
            header.first_lsn - 1,
            header.prev_seal_offset
        ),
    ))
}

/// Checks that a control file was written for the log `first` belongs to.
fn check_same_log(dir: &Path, control: &ControlRecord, first: &SegmentScanner) -> Result<()> {
    if control.log_id == first.header().log_id {
        return Ok(());
    }
    Err(Error::corrupt(
        dir.join(control.kind.file_name()),
        0,
        format!(
            "foreign control file: it belongs to another log than {}",
            first.path().display()
        ),
    ))
}

/// How a fully read middle segment ended.
enum SegmentEnd {
    /// With a valid seal at `offset`.
    Sealed { offset: u64, seal: SealPayload },
    /// With damage or without a seal.
    Broken(Error),
}

/// Checks that `next` continues `previous`, whose valid seal is at `seal_offset`:
/// its first LSN follows the seal's last, and its header names that seal.
fn continuation_break(
    previous: &SegmentScanner,
    seal_offset: u64,
    seal: &SealPayload,
    next: &SegmentScanner,
) -> Option<Error> {
    let header = next.header();
    let reason = if header.prev_seal_offset == 0 {
        format!(
            "segment starts a new log but follows {}",
            previous.path().display()
        )
    } else if seal.last_lsn + 1 != header.first_lsn {
        format!(
            "gap or overlap: {} ends at LSN {} but this segment starts at LSN {} (missing or duplicate segment)",
            previous.path().display(),
            seal.last_lsn,
            header.first_lsn
        )
    } else if header.prev_seal_offset != seal_offset || header.prev_digest != seal.digest {
        format!(
            "does not continue {}: its header names a seal at offset {} with digest {:#010x}, the segment's seal is at offset {seal_offset} with digest {:#010x} (replaced segment)",
            previous.path().display(),
            header.prev_seal_offset,
            header.prev_digest,
            seal.digest
        )
    } else {
        return None;
    };
    Some(Error::corrupt(next.path(), 0, reason))
}

/// Reads every record of a middle segment. In skip-corrupted mode damaged
/// records are skipped (and counted) as long as valid ones follow.
fn scan_middle_segment(
    scanner: &mut SegmentScanner,
    mode: RecoveryMode,
    report: &mut RecoveryReport,
) -> Result<SegmentEnd> {
    loop {
        let (offset, reason) = match scanner.next_item()? {
            ScanItem::Record { .. } => continue,
            ScanItem::Seal { offset, seal } => return Ok(SegmentEnd::Sealed { offset, seal }),
            ScanItem::End { offset } | ScanItem::Stop { offset } => {
                (offset, String::from("segment ends without a seal"))
            }
            ScanItem::Damage { offset, reason } => (offset, reason),
        };
        if mode == RecoveryMode::SkipCorrupted && skip_damage(scanner, offset, report)? {
            continue;
        }
        return Ok(SegmentEnd::Broken(Error::corrupt(
            scanner.path(),
            offset,
            format!("{reason} (damage inside a middle segment)"),
        )));
    }
}

/// Applies the skip-corrupted rule at `offset` and counts what it skipped;
/// false when nothing valid follows in the segment.
fn skip_damage(
    scanner: &mut SegmentScanner,
    offset: u64,
    report: &mut RecoveryReport,
) -> Result<bool> {
    let Some(skipped) = scanner.skip_damage(offset)? else {
        return Ok(false);
    };
    report.skipped_regions += 1;
    report.skipped_records += skipped.lsns;
    Ok(true)
}

/// Scans the last segment to the end of its valid records and applies the
/// recovery mode to whatever follows them.
fn inspect_tail(
    scanner: &mut SegmentScanner,
    mode: RecoveryMode,
    limit: TailLimit,
    known_seal: Option<FoundSeal>,
    report: &mut RecoveryReport,
    repairs: &mut Vec<Repair>,
) -> Result<RecoveredTail> {
    let file_length = scanner.file_length();
    if let TailLimit::Cut(lsn) | TailLimit::Visible(lsn) = limit {
        scanner.stop_after(lsn);
    }
    let seal = match known_seal {
        Some(seal) => Some(seal),
        None => scan_tail(scanner, mode, limit, report, repairs)?,
    };
    Ok(RecoveredTail {
        header: *scanner.header(),
        path: scanner.path().to_owned(),
        capacity: file_length,
        position: scanner.position(),
        next_lsn: scanner.next_lsn(),
        // After a skip the scanner's digest no longer covers the whole
        // segment; the seal's digest does, and the next header must repeat it.
        digest: seal.map_or(scanner.digest(), |found| found.seal.digest),
        record_count: scanner.record_count(),
        seal,
        last_checkpoint: scanner.last_checkpoint(),
    })
}

/// Where the scan of the last segment ends early.
#[derive(Clone, Copy)]
enum TailLimit {
    /// Nowhere: at the end of its valid records.
    None,
    /// After the last LSN an interrupted `truncateAfter` keeps: what follows is cut.
    Cut(u64),
    /// After the LSN a reader may see (see [`inspect_visible`]): what
    /// follows is not looked at.
    Visible(u64),
}

/// Scans the last segment from where `scanner` stands; returns its seal when
/// it is sealed.
///
/// The written part ends cleanly at a zero header followed only by zeros to
/// the end of the file. Anything else after the last valid record is damage,
/// and damage is a torn tail only when no valid record of the segment
/// (a seal included) starts more than the tear window beyond it, wherever in
/// the file that record is: the whole rest of the segment is searched, so a
/// zeroed header deep inside the log is refused, not cut.
fn scan_tail(
    scanner: &mut SegmentScanner,
    mode: RecoveryMode,
    limit: TailLimit,
    report: &mut RecoveryReport,
    repairs: &mut Vec<Repair>,
) -> Result<Option<FoundSeal>> {
    let file_length = scanner.file_length();
    loop {
        let (offset, reason) = match scanner.next_item()? {
            ScanItem::Record { .. } => continue,
            ScanItem::Seal { offset, seal } => return Ok(Some(FoundSeal { offset, seal })),
            ScanItem::Stop { .. } if matches!(limit, TailLimit::Visible(_)) => return Ok(None),
            ScanItem::Stop { offset } => {
                let reason = format!(
                    "records after LSN {}, which an interrupted truncateAfter removes",
                    scanner.next_lsn() - 1
                );
                cut_tail(scanner, offset, &reason, report, repairs)?;
                return Ok(None);
            }
            ScanItem::End { offset } => {
                if scanner.next_nonzero(offset, file_length)?.is_none() {
                    return Ok(None);
                }
                (
                    offset,
                    String::from("unreadable bytes after the last valid record"),
                )
            }
            ScanItem::Damage { offset, reason } => (offset, reason),
        };
        if mode == RecoveryMode::SkipCorrupted && skip_damage(scanner, offset, report)? {
            continue;
        }
        if let Some(synced) = synced_damage(scanner, offset, &reason)? {
            if mode != RecoveryMode::PointInTime {
                return Err(Error::corrupt(scanner.path(), offset, synced));
            }
            cut_tail(scanner, offset, &synced, report, repairs)?;
            return Ok(None);
        }
        if mode != RecoveryMode::PointInTime {
            let expected_last = scanner.next_lsn() - 1;
            let beyond = scanner.find_record(offset + TEAR_WINDOW, file_length, |header| {
                header.lsn >= expected_last
            })?;
            if let Some((later, _)) = beyond {
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
        cut_tail(scanner, offset, &reason, report, repairs)?;
        return Ok(None);
    }
}

/// Says why the damage at `offset` is damage to synced records rather than
/// a torn write, when a later record proves it: a valid record of this
/// segment past the damage that carries the synced-before flag was written
/// only after every byte before it, the damaged ones included, had been
/// synced. A crash cannot tear synced bytes, so such damage (bit rot, a
/// misdirected or lost write) is never cut silently as a tail.
fn synced_damage(
    scanner: &mut SegmentScanner,
    offset: u64,
    reason: &str,
) -> Result<Option<String>> {
    let next_lsn = scanner.next_lsn();
    let proof = scanner.find_record(offset + 1, scanner.file_length(), |header| {
        header.synced_before && header.lsn >= next_lsn - 1
    })?;
    Ok(proof.map(|(later, header)| {
        let last_lost = match header.kind {
            RecordKind::Seal => header.lsn,
            _ => header.lsn - 1,
        };
        let lost = if last_lost >= next_lsn {
            format!("LSNs {next_lsn} to {last_lost}")
        } else {
            format!(
                "no whole record, but the log cannot be trusted past LSN {}",
                next_lsn - 1
            )
        };
        format!(
            "{reason}; the record at offset {later} (LSN {}) was written after every byte \
             before it had been synced, so this is damage to synced records, not a torn \
             write: {lost} lost",
            header.lsn
        )
    }))
}

/// Plans the cut of everything after the last valid record: the repair
/// zeroes it, so that no leftover of a torn write can ever be read as a later
/// record.
fn cut_tail(
    scanner: &mut SegmentScanner,
    offset: u64,
    reason: &str,
    report: &mut RecoveryReport,
    repairs: &mut Vec<Repair>,
) -> Result<()> {
    let end = scanner.end_of_nonzero(offset, scanner.file_length())?;
    if end > offset {
        repairs.push(Repair::Zero {
            path: scanner.path().to_owned(),
            from: offset,
            to: end,
        });
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
