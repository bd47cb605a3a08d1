//! The many-writers workload: several threads append and sync at once, so
//! that flushes carry records of several writers (group commit) and
//! segments rotate under concurrent appends. Which LSN a writer's record
//! gets depends on the scheduler, so the workload notes the bytes it
//! appended at each LSN and the oracle compares with those.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::explorer::{explore_points, random_draws, Checked, Exploration, PointRun};
use crate::fates::Fate;
use crate::log_check::{check_prefix, open, open_after_power_loss};
use crate::sim_disk::{Disk, Mutation};

const WRITERS: u64 = 4;
const RECORDS_PER_WRITER: u64 = 60;

/// The `sequence`-th record of `writer`: 1–5 KiB, naming both.
fn payload(writer: u64, sequence: u64) -> Vec<u8> {
    let length = 1024 + ((writer * 7919 + sequence * 1543) % 4096) as usize;
    let mut bytes: Vec<u8> = (0..length)
        .map(|i| (writer * 61 + sequence * 31 + i as u64) as u8)
        .collect();
    bytes[..16].copy_from_slice(&[writer.to_le_bytes(), sequence.to_le_bytes()].concat());
    bytes
}

/// What the writers did before the power failed.
#[derive(Default)]
struct Appended {
    /// The bytes appended at each LSN.
    records: BTreeMap<u64, Vec<u8>>,
    /// The highest LSN a sync acknowledged.
    acknowledged: u64,
}

fn run(power_fails_at: u64, mutation: Mutation) -> (Arc<Mutex<Disk>>, Appended) {
    let disk = Disk::new(power_fails_at, mutation);
    let appended = Mutex::new(Appended::default());
    if let Ok(wal) = open(&disk) {
        std::thread::scope(|scope| {
            for writer in 0..WRITERS {
                let (wal, appended) = (&wal, &appended);
                scope.spawn(move || {
                    for sequence in 0..RECORDS_PER_WRITER {
                        let bytes = payload(writer, sequence);
                        let Ok(lsn) = wal.append(&bytes) else { return };
                        appended.lock().unwrap().records.insert(lsn, bytes);
                        if sequence % 2 == 1 {
                            let Ok(durable) = wal.sync(Some(lsn)) else {
                                return;
                            };
                            let mut appended = appended.lock().unwrap();
                            appended.acknowledged = appended.acknowledged.max(durable);
                        }
                    }
                });
            }
        });
        let _ = wal.close();
    }
    (disk, appended.into_inner().unwrap())
}

fn check(disk: &Mutex<Disk>, fate: Fate, appended: &Appended) -> Checked {
    let wal = open_after_power_loss(disk, fate)?;
    check_prefix(&wal, appended.acknowledged, |lsn| {
        appended.records.get(&lsn).cloned()
    })?;
    Ok(1)
}

/// Every power-failure point of the workload (counted on one run; the
/// interleaving, and so the operation at each point, varies from run to run).
pub fn explore(mutation: Mutation, first_only: bool) -> Exploration {
    explore_points(first_only, random_draws(), |point| {
        let (disk, appended) = run(point, mutation);
        let operations = disk.lock().unwrap().operations;
        PointRun {
            progress: format!("acknowledged {}", appended.acknowledged),
            check: Box::new(move |fate| check(&disk, fate, &appended)),
            operations,
        }
    })
}
