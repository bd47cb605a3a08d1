//! What must hold after a failed operation (RELIABILITY.md rule 3, G4):
//! the log is poisoned for good once a write or sync of its data failed
//! (every call begun after it reported the failure fails, and so does
//! close); the failed sync is never retried on that file, and nothing of
//! the log is written or synced after the failure; and, once the writes no
//! successful sync covered are lost, a reopen on the real filesystem finds
//! a prefix of what was appended, byte-exact, with every acknowledged
//! record in it.

use std::path::Path;

use crate::disk::{Disk, Plan, Seen};
use crate::workload::{options, Run};
use durawal::format::{ControlKind, PREPARED_SEGMENT_NAME};
use durawal::{Error, Wal};

/// What a case came to, for the summary.
pub struct Outcome {
    /// The operation the fault hit, as "kind name" (`None`: the run made
    /// fewer operations than the run that counted them).
    pub faulted: Option<String>,
    /// A write or sync of log data failed, which must poison the log.
    pub data: bool,
    /// The log did not open.
    pub open_failed: bool,
    /// Some call reported the log poisoned.
    pub poisoned: bool,
    /// Syncs that failed (none of them retried, or the case fails).
    pub failed_syncs: u64,
}

pub fn check(plan: &Plan, run: &Run, disk: &Disk, dir: &Path) -> Result<Outcome, String> {
    let data = disk.seen.iter().any(|seen| seen.data && seen.failed);
    if let Some(error) = &run.open_error {
        if !matches!(error, Error::Io { .. }) {
            return Err(format!("open failed with {error:?}, not an I/O error"));
        }
    } else {
        check_calls(run, data)?;
        if !plan.persistent {
            check_harmless(run, &disk.seen)?;
        }
    }
    check_disk(&disk.seen)?;
    disk.lose_unsynced_writes()
        .map_err(|error| format!("could not drop the unsynced writes: {error}"))?;
    check_reopen(run, dir)?;
    let faulted = disk.seen.iter().find(|seen| seen.failed);
    Ok(Outcome {
        faulted: faulted.map(|seen| format!("{} {}", seen.kind, file_class(&seen.name))),
        data,
        open_failed: run.open_error.is_some(),
        poisoned: run
            .calls
            .iter()
            .any(|call| matches!(call.error, Some(Error::Poisoned(_)))),
        failed_syncs: disk
            .seen
            .iter()
            .filter(|seen| seen.kind == "sync" && seen.failed)
            .count() as u64,
    })
}

/// Every error is `Poisoned` carrying an I/O error; once one was reported,
/// every call begun afterwards fails; a failed write or sync of log data
/// makes close fail.
fn check_calls(run: &Run, data_fault: bool) -> Result<(), String> {
    for call in &run.calls {
        match &call.error {
            None => {}
            Some(Error::Poisoned(cause)) if matches!(**cause, Error::Io { .. }) => {}
            Some(error) => {
                return Err(format!(
                    "{} failed with {error:?}, not Poisoned by an I/O error",
                    call.what
                ))
            }
        }
    }
    let first_report = run
        .calls
        .iter()
        .filter(|call| call.error.is_some())
        .map(|call| call.ended)
        .min();
    if let Some(reported) = first_report {
        if let Some(call) = run
            .calls
            .iter()
            .find(|call| call.started > reported && call.error.is_none())
        {
            return Err(format!(
                "{} succeeded after the log reported a failure",
                call.what
            ));
        }
    }
    let close = run.calls.iter().find(|call| call.what == "close");
    if (data_fault || first_report.is_some()) && close.is_some_and(|call| call.error.is_none()) {
        return Err("close succeeded after a failed write or sync of log data".into());
    }
    Ok(())
}

/// A single failure the log is documented to get over must not fail any
/// call: writing `DURABLE` (FORMAT.md: failing to write it never fails the
/// log), and preparing the next segment (docs/durability.md: a failed
/// preparation holds no log data and is tried once more when the segment
/// is needed).
fn check_harmless(run: &Run, seen: &[Seen]) -> Result<(), String> {
    let Some(failed) = seen.iter().find(|seen| seen.failed) else {
        return Ok(());
    };
    let durable_file = failed.name == ControlKind::Durable.file_name();
    let preparation = failed.name == PREPARED_SEGMENT_NAME
        && !failed.data
        && matches!(failed.kind, "open" | "write" | "sync" | "remove");
    if !durable_file && !preparation {
        return Ok(());
    }
    match run.calls.iter().find(|call| call.error.is_some()) {
        Some(call) => Err(format!(
            "{} failed ({:?}) after a failed {} of {}, which the log gets over",
            call.what, call.error, failed.kind, failed.name
        )),
        None => Ok(()),
    }
}

/// No sync of a file after a sync of it failed, and nothing of the log
/// written or synced after a write or sync of its data failed.
fn check_disk(seen: &[Seen]) -> Result<(), String> {
    for failed in seen
        .iter()
        .filter(|seen| seen.kind == "sync" && seen.failed)
    {
        let retried = seen.iter().find(|later| {
            later.index > failed.index && later.kind == "sync" && later.file == failed.file
        });
        if let Some(retry) = retried {
            return Err(format!(
                "{} (file {:?}) synced again at operation {} after its sync failed at {}",
                failed.name, failed.file, retry.index, failed.index
            ));
        }
    }
    let first_data_failure = seen.iter().find(|seen| seen.data && seen.failed);
    if let Some(failure) = first_data_failure {
        if let Some(later) = seen
            .iter()
            .find(|later| later.index > failure.index && later.data)
        {
            return Err(format!(
                "{} of {} at operation {} after the {} of {} failed at {}",
                later.kind, later.name, later.index, failure.kind, failure.name, failure.index
            ));
        }
    }
    Ok(())
}

/// Reopens on the real filesystem: a dense run of the records appended,
/// byte-exact, from where truncation may have moved the head to past every
/// acknowledged one.
fn check_reopen(run: &Run, dir: &Path) -> Result<(), String> {
    let wal = Wal::open(dir, options()).map_err(|error| format!("reopen failed: {error}"))?;
    let (first, last) = (wal.first_lsn(), wal.last_lsn());
    let head_limit = run.truncated_below.unwrap_or(1);
    if last > 0 && first > head_limit {
        return Err(format!(
            "the log begins at LSN {first}; truncation could move it to {head_limit} at most"
        ));
    }
    if last < run.acknowledged {
        return Err(format!(
            "acknowledged LSN {} lost: the log ends at {last}",
            run.acknowledged
        ));
    }
    let mut cursor = wal
        .replay(first, last)
        .map_err(|error| format!("replay refused: {error}"))?;
    let records =
        crate::common::try_drain(&mut cursor).map_err(|error| format!("replay failed: {error}"))?;
    let lsns = records.iter().map(|(lsn, _)| *lsn);
    if last > 0 && !lsns.eq(first..=last) {
        return Err(format!(
            "replay is not LSNs {first}..={last}: {} records",
            records.len()
        ));
    }
    for (lsn, bytes) in &records {
        match run.appended.get(lsn) {
            Some(appended) if appended == bytes => {}
            Some(_) => return Err(format!("LSN {lsn}: wrong bytes after reopen")),
            None => return Err(format!("LSN {lsn} was never appended")),
        }
    }
    wal.close()
        .map_err(|error| format!("close after reopen failed: {error}"))
}

/// A file name with the LSN of a segment left out, for the summary.
fn file_class(name: &str) -> String {
    match durawal::format::parse_segment_name(name) {
        Some(_) => "segment".into(),
        None => name.replace(|c: char| c.is_ascii_digit(), ""),
    }
}
