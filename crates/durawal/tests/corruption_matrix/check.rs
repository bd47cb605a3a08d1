//! Opens one damaged log in every recovery mode, each on its own copy, and
//! checks what happened against what the oracle allows: a refusal must be
//! `Corrupt` naming an allowed file and offset and must leave every byte of
//! the directory as it was; an open must replay exactly what the oracle
//! says, byte for byte, report its cut, and take a new record that a reopen
//! finds after the recovered ones. A panic anywhere is a failure, and so is
//! an allocation past [`ALLOCATION_LIMIT`].

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use crate::allocations::largest_during;
use crate::common::memory::{image_of, storage_with, Image, MemoryStorage, MEMORY_DIR};
use crate::common::try_drain;
use crate::logs::{options, OriginalLog};
use crate::oracle::{Cut, Expect, Opened, Refusal};
use durawal::format::PREPARED_SEGMENT_NAME;
use durawal::{panic_message, Error, RecoveryMode, Wal};

pub const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTail,
    RecoveryMode::Absolute,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

/// Largest single allocation recovery or replay may make on a matrix log.
/// The logs are at most a few hundred KiB; their scans read 1 MiB windows
/// at most. A length read from a damaged header and trusted would ask for
/// far more (the matrix's lies reach 4 GiB).
pub const ALLOCATION_LIMIT: usize = 4 << 20;

/// A damaged copy of a log and what recovery may make of it.
pub struct Variant {
    /// What was done to the log, for the failure message.
    pub label: String,
    pub image: Image,
    pub expect: Expect,
}

type Records = Vec<(u64, Vec<u8>)>;

/// What checking one variant found: a failure per mode that went wrong,
/// and the largest allocation recovery and replay made.
pub struct Checked {
    pub failures: Vec<String>,
    pub largest_allocation: usize,
}

/// Opens `variant` in every mode and checks each outcome.
pub fn check(log: &OriginalLog, variant: &Variant) -> Checked {
    let mut checked = Checked {
        failures: Vec::new(),
        largest_allocation: 0,
    };
    for mode in MODES {
        let outcome = catch_unwind(AssertUnwindSafe(|| check_mode(log, variant, mode)));
        let failure = match outcome {
            Ok(Ok(largest)) => {
                checked.largest_allocation = checked.largest_allocation.max(largest);
                continue;
            }
            Ok(Err(failure)) => failure,
            Err(panic) => format!("panicked: {}", panic_message(&*panic)),
        };
        checked.failures.push(format!(
            "{mode:?}: {failure}\n    expected: {:?}",
            variant.expect
        ));
    }
    checked
}

fn dir() -> &'static Path {
    Path::new(MEMORY_DIR)
}

/// Opens the variant in `mode` and checks the outcome; returns the largest
/// allocation made, or what is wrong.
fn check_mode(log: &OriginalLog, variant: &Variant, mode: RecoveryMode) -> Result<usize, String> {
    let allowed = variant.expect.allowed(mode);
    let storage = storage_with(&variant.image);
    let open = || Wal::open_with(dir(), options(log.profile, mode), storage.clone(), None);
    let (opened, mut largest) = largest_during(open);
    let wal = match opened {
        Err(error) => {
            check_refusal(&error, &allowed.refusals, variant, &storage)?;
            return within_limit(largest);
        }
        Ok(wal) => wal,
    };
    let Some(wanted) = allowed.open else {
        return Err(format!(
            "opened with {} records ({:?}) where only a refusal naming {:?} is allowed",
            wal.last_lsn(),
            wal.recovery(),
            allowed.refusals
        ));
    };
    let (replayed, replay_largest) = largest_during(|| replay(&wal));
    largest = largest.max(replay_largest);
    let replayed = replayed?;
    match &wanted {
        Opened::Exactly {
            intact,
            cut,
            removed,
            stray,
        } => {
            check_exact(log, &wal, &replayed, *intact, cut.as_ref(), stray)?;
            check_removed(&wal, removed, &storage)?;
        }
        Opened::Salvage { intact } => check_salvage(log, &wal, &replayed, *intact)?,
    }
    let reopen_mode = match wanted {
        Opened::Exactly { .. } => RecoveryMode::Absolute,
        Opened::Salvage { .. } => RecoveryMode::SkipCorrupted,
    };
    continue_after_recovery(log, wal, replayed, &storage, reopen_mode)?;
    within_limit(largest)
}

fn within_limit(largest: usize) -> Result<usize, String> {
    if largest > ALLOCATION_LIMIT {
        return Err(format!(
            "an allocation of {largest} bytes, past the limit of {ALLOCATION_LIMIT}"
        ));
    }
    Ok(largest)
}

fn replay(wal: &Wal) -> Result<Records, String> {
    let mut cursor = wal
        .replay(1, u64::MAX)
        .map_err(|error| format!("replay refused after open: {error}"))?;
    try_drain(&mut cursor).map_err(|error| format!("replay failed after open: {error}"))
}

/// A refusal must be allowed, name an allowed file and offset, and leave
/// the directory exactly as it was.
fn check_refusal(
    error: &Error,
    refusals: &[Refusal],
    variant: &Variant,
    storage: &MemoryStorage,
) -> Result<(), String> {
    let Error::Corrupt { file, offset, .. } = error else {
        return Err(format!("refused with {error:?}, not Corrupt"));
    };
    if refusals.is_empty() {
        return Err(format!(
            "refused ({error}) where the contract wants it opened"
        ));
    }
    let named = refusals.iter().any(|refusal| {
        *file == dir().join(&refusal.file) && refusal.offset.is_none_or(|at| at == *offset)
    });
    if !named {
        return Err(format!(
            "refused ({error}), but the contract names {refusals:?}"
        ));
    }
    let after = image_of(storage);
    if after != variant.image {
        let changed: Vec<&String> = after
            .keys()
            .chain(variant.image.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|name| after.get(*name) != variant.image.get(*name))
            .collect();
        return Err(format!("a refused open ({error}) changed {changed:?}"));
    }
    Ok(())
}

/// Exactly LSNs `1..=intact`, the original bytes, nothing skipped, and the
/// cut (or none) reported as the oracle says.
fn check_exact(
    log: &OriginalLog,
    wal: &Wal,
    replayed: &Records,
    intact: u64,
    cut: Option<&Cut>,
    stray: &[String],
) -> Result<(), String> {
    let payloads = &log.expected.payloads;
    check_original(replayed, payloads)?;
    let lsns: Vec<u64> = replayed.iter().map(|(lsn, _)| *lsn).collect();
    if lsns.len() as u64 != intact || lsns.last().is_some_and(|&last| last != intact) {
        return Err(format!(
            "replayed {} records ending at LSN {:?}; the valid prefix is LSNs 1..={intact}",
            lsns.len(),
            lsns.last()
        ));
    }
    let report = wal.recovery();
    let counts = (report.records, wal.last_lsn(), wal.durable_lsn());
    let skipped = (report.skipped_regions, report.skipped_records);
    if counts != (intact, intact, intact) || skipped != (0, 0) {
        return Err(format!(
            "records, last and durable LSN {counts:?}, skipped {skipped:?}; wanted {intact} and nothing skipped: {report:?}"
        ));
    }
    let reason = report.truncated_reason.as_deref();
    match cut {
        None if report.truncated_bytes != 0 || reason.is_some() => {
            return Err(format!("a cut nothing called for: {report:?}"));
        }
        None => {}
        Some(cut) => {
            let named = format!("{}: offset {}", dir().join(&cut.file).display(), cut.offset);
            if report.truncated_bytes != cut.bytes || !reason.is_some_and(|r| r.contains(&named)) {
                return Err(format!(
                    "the cut must zero {} bytes and name \"{named}\": {report:?}",
                    cut.bytes
                ));
            }
        }
    }
    if let Some(missing) = stray.iter().find(|name| !report.stray_files.contains(name)) {
        return Err(format!("stray file {missing} not listed: {report:?}"));
    }
    Ok(())
}

/// Every replayed record is the one appended under its LSN, in LSN order.
fn check_original(replayed: &Records, payloads: &[Vec<u8>]) -> Result<(), String> {
    let mut previous = 0;
    for (lsn, bytes) in replayed {
        if *lsn <= previous {
            return Err(format!("LSN {lsn} replayed after LSN {previous}"));
        }
        previous = *lsn;
        match payloads.get(*lsn as usize - 1) {
            Some(original) if original == bytes => {}
            Some(original) => {
                return Err(format!(
                    "LSN {lsn}: wrong bytes ({} bytes; the original has {})",
                    bytes.len(),
                    original.len()
                ))
            }
            None => return Err(format!("LSN {lsn} was never written")),
        }
    }
    Ok(())
}

/// The files recovery removed are exactly `removed`, and they are gone.
fn check_removed(wal: &Wal, removed: &[String], storage: &MemoryStorage) -> Result<(), String> {
    let reported: BTreeSet<&String> = wal.recovery().removed_files.iter().collect();
    let wanted: BTreeSet<&String> = removed.iter().collect();
    if reported != wanted {
        return Err(format!(
            "removed {reported:?}; the oracle removes {wanted:?}"
        ));
    }
    // The writer prepares a new next segment as soon as it is open, under
    // the name of the leftover recovery removed.
    let present = image_of(storage);
    let still_there =
        |name: &&String| *name != PREPARED_SEGMENT_NAME && present.contains_key(*name);
    match removed.iter().find(still_there) {
        Some(name) => Err(format!("{name} is reported removed and still there")),
        None => Ok(()),
    }
}

/// Skip-corrupted: original records in LSN order, LSNs `1..=intact` among
/// them, and every LSN up to the log's last that replay does not return
/// counted as skipped.
fn check_salvage(
    log: &OriginalLog,
    wal: &Wal,
    replayed: &Records,
    intact: u64,
) -> Result<(), String> {
    check_original(replayed, &log.expected.payloads)?;
    let prefix_kept = replayed
        .iter()
        .take(intact as usize)
        .enumerate()
        .all(|(index, (lsn, _))| *lsn == index as u64 + 1);
    if !prefix_kept || (replayed.len() as u64) < intact {
        return Err(format!(
            "the valid prefix LSNs 1..={intact} is not whole in what was replayed"
        ));
    }
    let report = wal.recovery();
    let count = replayed.len() as u64;
    let last = wal.last_lsn();
    let skipped_counted = report.skipped_records == last.saturating_sub(count)
        && (report.skipped_records == 0 || report.skipped_regions > 0);
    if report.records != count || !skipped_counted || last > log.records() {
        return Err(format!(
            "replayed {count} records, the log ends at LSN {last}: the report must count the rest as skipped: {report:?}"
        ));
    }
    if wal.durable_lsn() != last {
        return Err(format!(
            "durable LSN {} after recovery, last {last}",
            wal.durable_lsn()
        ));
    }
    Ok(())
}

/// Appends a record after recovery, closes, reopens in `reopen_mode` and
/// finds what was recovered followed by the new record under the next LSN:
/// the repairs left a log that is whole (absolute mode accepts it) and that
/// continues.
fn continue_after_recovery(
    log: &OriginalLog,
    wal: Wal,
    mut replayed: Records,
    storage: &Arc<MemoryStorage>,
    reopen_mode: RecoveryMode,
) -> Result<(), String> {
    let record = b"appended after recovery".to_vec();
    let next = wal.last_lsn() + 1;
    let lsn = wal
        .append(&record)
        .map_err(|error| format!("append after recovery failed: {error}"))?;
    if lsn != next {
        return Err(format!("append after recovery took LSN {lsn}, not {next}"));
    }
    wal.sync(None)
        .and_then(|_| wal.close())
        .map_err(|error| format!("sync or close after recovery failed: {error}"))?;
    drop(wal);
    let reopened = Wal::open_with(
        dir(),
        options(log.profile, reopen_mode),
        storage.clone(),
        None,
    )
    .map_err(|error| format!("reopen ({reopen_mode:?}) after recovery failed: {error}"))?;
    let again = replay(&reopened)?;
    replayed.push((lsn, record));
    if again != replayed {
        return Err(format!(
            "after an append and a reopen ({reopen_mode:?}) replay gave {} records ending at {:?}; wanted {} ending at {lsn}",
            again.len(),
            again.last().map(|(lsn, _)| lsn),
            replayed.len()
        ));
    }
    Ok(())
}
