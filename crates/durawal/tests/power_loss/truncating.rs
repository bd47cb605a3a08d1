//! The truncating workload: records, then `truncate_before`, then
//! `truncate_after` and new records under the LSNs it freed. Recovery must
//! find the log's head where `HEAD` put it (or where it was, if the
//! truncation had not finished) and a tail that is wholly the old one or
//! wholly the new one, never a mix.

use std::sync::{Arc, Mutex};

use crate::explorer::{explore_points, random_draws, Checked, Exploration, PointRun};
use crate::fates::Fate;
use crate::log_check::{open, open_after_power_loss, read_all, record};
use crate::sim_disk::{Disk, Mutation};

/// Records written before the truncations; the cut keeps LSNs up to `CUT`.
const FIRST_RECORDS: u64 = 48;
/// `truncate_before` is asked for this LSN.
const HEAD_TARGET: u64 = 30;
/// `truncate_after` keeps the records up to this LSN.
const CUT: u64 = 40;
/// Records written after the cut, under the LSNs it freed and beyond.
const LATER_RECORDS: u64 = 16;

/// The bytes written at `lsn` after the cut: not those of `record(lsn)`, so
/// that a mix of the old and the new tail cannot pass for either.
fn rewritten(lsn: u64) -> Vec<u8> {
    let mut bytes = record(lsn);
    bytes.iter_mut().for_each(|byte| *byte ^= 0xa5);
    bytes
}

/// How far the truncating workload got before the power failed.
#[derive(Clone, Copy, Debug, Default)]
struct TruncationProgress {
    /// Highest LSN a sync acknowledged before the cut, and after it.
    acknowledged_before_cut: u64,
    acknowledged_after_cut: u64,
    head_started: bool,
    /// The first LSN `truncate_before` reported.
    head_done: Option<u64>,
    cut_started: bool,
    cut_done: bool,
}

fn run(power_fails_at: u64, mutation: Mutation) -> (Arc<Mutex<Disk>>, TruncationProgress) {
    let disk = Disk::new(power_fails_at, mutation);
    let mut progress = TruncationProgress::default();
    let Ok(wal) = open(&disk) else {
        return (disk, progress);
    };
    let mut run = || -> durawal::Result<()> {
        for lsn in 1..=FIRST_RECORDS {
            wal.append(&record(lsn))?;
            if lsn % 3 == 0 {
                progress.acknowledged_before_cut = wal.sync(None)?;
            }
        }
        disk.lock().unwrap().truncating = true;
        progress.head_started = true;
        progress.head_done = Some(wal.truncate_before(HEAD_TARGET)?);
        progress.cut_started = true;
        wal.truncate_after(CUT)?;
        progress.cut_done = true;
        progress.acknowledged_after_cut = CUT;
        for lsn in CUT + 1..=CUT + LATER_RECORDS {
            wal.append(&rewritten(lsn))?;
            if lsn % 3 == 0 {
                progress.acknowledged_after_cut = wal.sync(None)?;
            }
        }
        Ok(())
    };
    let _ = run();
    let _ = wal.close();
    (disk, progress)
}

/// Recovers the image of the truncating workload: the head is where it was
/// or where `HEAD` put it (only the latter once `truncate_before` returned),
/// records up to the cut are the first ones, and the records after it are
/// wholly the old ones (before the cut finished) or wholly the new ones,
/// every acknowledged record of that generation included.
fn check(disk: &Mutex<Disk>, fate: Fate, progress: &TruncationProgress, new_head: u64) -> Checked {
    let wal = open_after_power_loss(disk, fate)?;
    let first = wal.first_lsn().max(1);
    let allowed_heads: &[u64] = match (progress.head_started, progress.head_done) {
        (false, _) => &[1],
        (true, None) => &[1, new_head],
        (true, Some(_)) => &[new_head],
    };
    let last = wal.last_lsn();
    if last >= first && !allowed_heads.contains(&first) {
        return Err(format!(
            "the log begins at {first}; allowed: {allowed_heads:?}"
        ));
    }
    let records = read_all(&wal)?;
    let lsns: Vec<u64> = records.iter().map(|(lsn, _)| *lsn).collect();
    if lsns != (first..=last).collect::<Vec<_>>() {
        return Err(format!("not dense from {first} to {last}: {lsns:?}"));
    }
    let after_cut: Vec<&(u64, Vec<u8>)> = records.iter().filter(|(lsn, _)| *lsn > CUT).collect();
    let new_tail = after_cut
        .first()
        .is_some_and(|(lsn, data)| *data == rewritten(*lsn));
    for (lsn, data) in &records {
        let expected = if *lsn > CUT && new_tail {
            rewritten(*lsn)
        } else {
            record(*lsn)
        };
        if *data != expected {
            return Err(format!("wrong bytes at LSN {lsn} (new tail: {new_tail})"));
        }
    }
    let must_reach = match (progress.cut_started, progress.cut_done) {
        (false, _) => progress.acknowledged_before_cut,
        // The cut may or may not have taken effect; either tail is whole.
        (true, false) if last > CUT => progress.acknowledged_before_cut,
        (true, false) => progress.acknowledged_before_cut.min(CUT),
        (true, true) if !new_tail && last > CUT => {
            return Err(format!(
                "the cut finished but the old records after {CUT} are back"
            ));
        }
        (true, true) => progress.acknowledged_after_cut,
    };
    if last < must_reach {
        return Err(format!(
            "acknowledged LSN {must_reach} lost: log ends at {last}"
        ));
    }
    Ok(1)
}

/// Every power-failure point of the workload.
pub fn explore(mutation: Mutation, first_only: bool) -> Exploration {
    let (_, complete) = run(u64::MAX, mutation);
    let new_head = complete
        .head_done
        .expect("the workload truncates without a power failure");
    assert!(
        new_head > 1 && new_head <= HEAD_TARGET,
        "truncate_before removed nothing: {new_head}"
    );
    explore_points(first_only, random_draws(), |point| {
        let (disk, progress) = run(point, mutation);
        let operations = disk.lock().unwrap().operations;
        PointRun {
            progress: format!("{progress:?}"),
            check: Box::new(move |fate| check(&disk, fate, &progress, new_head)),
            operations,
        }
    })
}
