//! A power loss during recovery: the image a first power loss left is
//! opened on a disk whose power fails again at each operation of that open
//! (its repairs: zeroing a torn tail, finishing a truncation, removing
//! leftovers; and the files a new writer creates), and the image of that
//! second failure must still hold every record the first workload had
//! acknowledged.

use std::sync::{Arc, Mutex};

use crate::appending;
use crate::explorer::{explore_points, Checked, Exploration, PointRun};
use crate::fates::Fate;
use crate::log_check::{check_prefix, open, open_after_power_loss, record};
use crate::sim_disk::{Disk, Mutation};

/// What the second power failure leaves of the disk: a subset of the
/// fates, to keep the product of both failures within the per-push budget.
const SECOND_FATES: [Fate; 3] = [
    Fate::DropAll,
    Fate::KeepAll,
    Fate::TornSectors { sector: 512 },
];

fn check(first: &Mutex<Disk>, fate: Fate, acknowledged: u64) -> Checked {
    let image = first.lock().unwrap().after_power_loss(fate);
    let recovery_operations = {
        let disk = Arc::new(Mutex::new(image.after_process_crash(u64::MAX)));
        drop(open(&disk).map_err(|error| format!("refused: {error}"))?);
        let operations = disk.lock().unwrap().operations;
        operations
    };
    let mut states = 0;
    for point in 1..=recovery_operations {
        let disk = Arc::new(Mutex::new(image.after_process_crash(point)));
        if let Ok(wal) = open(&disk) {
            let _ = wal.close();
        }
        for second in SECOND_FATES {
            let wal = open_after_power_loss(&disk, second)?;
            check_prefix(&wal, acknowledged, |lsn| Some(record(lsn))).map_err(|failure| {
                format!("power lost again at operation {point} of recovery, {second:?}: {failure}")
            })?;
            states += 1;
        }
    }
    Ok(states)
}

/// Every power-failure point of the appending workload, with the fixed
/// fates only (each is multiplied by the recovery's operations).
pub fn explore(mutation: Mutation, first_only: bool) -> Exploration {
    explore_points(first_only, 0, |point| {
        let (disk, acknowledged) = appending::run(point, mutation);
        let operations = disk.lock().unwrap().operations;
        PointRun {
            progress: format!("acknowledged {acknowledged}"),
            check: Box::new(move |fate| check(&disk, fate, acknowledged)),
            operations,
        }
    })
}
