//! A process crash, a reopen, then a power loss. The crash leaves written
//! but unsynced bytes and names pending (in the page cache of a machine
//! that keeps running); the next process recovers them, calls them durable
//! and appends after them. A power loss after that must not take away
//! anything the reopened log called durable, nor what it acknowledged.

use std::sync::{Arc, Mutex};

use crate::appending;
use crate::explorer::{explore_points, random_draws, Checked, Exploration, PointRun};
use crate::fates::Fate;
use crate::log_check::{check_prefix, open, open_after_power_loss, record};
use crate::sim_disk::{Disk, Mutation};

/// Records the reopened log appends and syncs.
const MORE_RECORDS: u64 = 2;

/// The two images a power loss can hit after the reopen, and what each must keep.
struct Reopened {
    /// The disk right after the reopen, and the LSN the log then called durable.
    after_open: Mutex<Disk>,
    durable_at_open: u64,
    /// The disk after the reopened log appended, synced and closed, and
    /// the LSN it acknowledged.
    after_close: Mutex<Disk>,
    acknowledged: u64,
}

/// Reopens what the crash left, notes what the log calls durable, appends,
/// syncs and closes.
fn reopen(crashed: &Disk) -> Result<Reopened, String> {
    let disk = Arc::new(Mutex::new(crashed.after_process_crash(u64::MAX)));
    let snapshot = || Mutex::new(disk.lock().unwrap().after_process_crash(u64::MAX));
    let wal = open(&disk).map_err(|error| format!("reopen refused: {error}"))?;
    let durable_at_open = wal.durable_lsn();
    let after_open = snapshot();
    let mut acknowledged = durable_at_open;
    for lsn in wal.last_lsn() + 1..=wal.last_lsn() + MORE_RECORDS {
        wal.append(&record(lsn)).map_err(|e| e.to_string())?;
        acknowledged = wal.sync(None).map_err(|e| e.to_string())?;
    }
    wal.close().map_err(|e| e.to_string())?;
    Ok(Reopened {
        after_open,
        durable_at_open,
        after_close: snapshot(),
        acknowledged,
    })
}

fn check(reopened: &Result<Reopened, String>, fate: Fate) -> Checked {
    let reopened = reopened.as_ref()?;
    let wal = open_after_power_loss(&reopened.after_open, fate)?;
    check_prefix(&wal, reopened.durable_at_open, |lsn| Some(record(lsn)))
        .map_err(|failure| format!("power lost right after the reopen: {failure}"))?;
    let wal = open_after_power_loss(&reopened.after_close, fate)?;
    check_prefix(&wal, reopened.acknowledged, |lsn| Some(record(lsn)))
        .map_err(|failure| format!("power lost after the reopened log closed: {failure}"))?;
    Ok(2)
}

/// Every crash point of the appending workload, as a process crash.
pub fn explore(mutation: Mutation, first_only: bool) -> Exploration {
    explore_points(first_only, random_draws(), |point| {
        let (crashed, _) = appending::run(point, mutation);
        let crashed = crashed.lock().unwrap();
        let reopened = reopen(&crashed);
        PointRun {
            progress: "process crash, reopen".into(),
            check: Box::new(move |fate| check(&reopened, fate)),
            operations: crashed.operations,
        }
    })
}
