//! The appending workload: one writer appends records (every tenth a
//! checkpoint) and syncs every third, through several segment rotations.

use std::sync::{Arc, Mutex};

use crate::explorer::{explore_points, random_draws, Checked, Exploration, PointRun};
use crate::fates::Fate;
use crate::log_check::{check_prefix, open, open_after_power_loss, record};
use crate::sim_disk::{Disk, Mutation};

const RECORDS: u64 = 150;

/// Which LSNs the workload writes as checkpoints.
fn is_checkpoint(lsn: u64) -> bool {
    lsn % 10 == 7
}

/// Runs the workload on a disk that fails at operation `power_fails_at`;
/// returns the disk and the highest LSN a sync acknowledged.
pub fn run(power_fails_at: u64, mutation: Mutation) -> (Arc<Mutex<Disk>>, u64) {
    let disk = Disk::new(power_fails_at, mutation);
    let mut acknowledged = 0;
    if let Ok(wal) = open(&disk) {
        for lsn in 1..=RECORDS {
            let appended = if is_checkpoint(lsn) {
                wal.checkpoint(&record(lsn))
            } else {
                wal.append(&record(lsn))
            };
            if appended.is_err() {
                break;
            }
            if lsn % 3 == 0 {
                match wal.sync(None) {
                    Ok(durable) => acknowledged = durable,
                    Err(_) => break,
                }
            }
        }
        let _ = wal.close();
    }
    (disk, acknowledged)
}

/// Checks the image `fate` leaves: the oracle, and the last checkpoint is
/// the last one among the records recovered.
pub fn check(disk: &Mutex<Disk>, fate: Fate, acknowledged: u64) -> Checked {
    let wal = open_after_power_loss(disk, fate)?;
    let last = check_prefix(&wal, acknowledged, |lsn| Some(record(lsn)))?;
    let expected_checkpoint = (1..=last).rev().find(|&lsn| is_checkpoint(lsn));
    if wal.last_checkpoint() != expected_checkpoint {
        return Err(format!(
            "last checkpoint {:?}, expected {expected_checkpoint:?}",
            wal.last_checkpoint()
        ));
    }
    Ok(1)
}

/// Every power-failure point of the workload.
pub fn explore(mutation: Mutation, first_only: bool) -> Exploration {
    explore_points(first_only, random_draws(), |point| {
        let (disk, acknowledged) = run(point, mutation);
        let operations = disk.lock().unwrap().operations;
        PointRun {
            check: Box::new(move |fate| check(&disk, fate, acknowledged)),
            progress: format!("acknowledged {acknowledged}"),
            operations,
        }
    })
}
