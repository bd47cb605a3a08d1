//! What every workload shares: the log's options on the simulated disk, the
//! records it writes, and the oracle a recovered image must satisfy.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use durawal::{DirectIo, Options, RecoveryMode, SyncPolicy, Wal};

use crate::fates::Fate;
use crate::sim_disk::{Disk, SimStorage};

const SEGMENT_SIZE: u64 = 64 * 1024;

/// The bytes written at `lsn`: 2.5–6.5 KiB, so that a segment holds about a
/// dozen records and the workloads rotate.
pub fn record(lsn: u64) -> Vec<u8> {
    let length = 2560 + (lsn * 1543 % 4096) as usize;
    (0..length).map(|i| (lsn as usize * 31 + i) as u8).collect()
}

pub fn options() -> Options {
    Options {
        segment_size: SEGMENT_SIZE,
        sync: SyncPolicy::Never,
        direct_io: DirectIo::Off,
        recovery: RecoveryMode::TolerateTail,
        ..Options::default()
    }
}

pub fn dir() -> PathBuf {
    PathBuf::from("/simulated-log")
}

/// Opens the log on `disk`.
pub fn open(disk: &Arc<Mutex<Disk>>) -> durawal::Result<Wal> {
    Wal::open_with(&dir(), options(), Arc::new(SimStorage(disk.clone())), None)
}

/// Opens the image `fate` leaves of `disk` after a power failure.
pub fn open_after_power_loss(disk: &Mutex<Disk>, fate: Fate) -> Result<Wal, String> {
    let image = Arc::new(Mutex::new(disk.lock().unwrap().after_power_loss(fate)));
    open(&image).map_err(|error| format!("refused: {error}"))
}

/// Every record of the open log, in order.
pub fn read_all(wal: &Wal) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut records = Vec::new();
    let mut cursor = wal
        .replay(1, wal.last_lsn())
        .map_err(|error| error.to_string())?;
    while let Some(batch) = cursor
        .next_batch(100, 1 << 20)
        .map_err(|error| error.to_string())?
    {
        let mut start = 0;
        for (end, lsn) in batch.ends.iter().zip(&batch.lsns) {
            records.push((*lsn, batch.data[start..*end as usize].to_vec()));
            start = *end as usize;
        }
    }
    Ok(records)
}

/// The oracle: the log holds a prefix of what was appended, dense from 1,
/// byte-exact (`expected` gives the bytes appended at an LSN), reaching at
/// least `acknowledged`. Returns its last LSN.
pub fn check_prefix(
    wal: &Wal,
    acknowledged: u64,
    expected: impl Fn(u64) -> Option<Vec<u8>>,
) -> Result<u64, String> {
    let last = wal.last_lsn();
    if last < acknowledged {
        return Err(format!(
            "acknowledged LSN {acknowledged} lost: log ends at {last}"
        ));
    }
    let records = read_all(wal)?;
    for (index, (lsn, data)) in records.iter().enumerate() {
        if *lsn != index as u64 + 1 {
            return Err(format!("LSN {lsn} where {} was expected", index + 1));
        }
        if Some(data) != expected(*lsn).as_ref() {
            return Err(format!("wrong bytes at LSN {lsn}"));
        }
    }
    if records.len() as u64 != last {
        return Err(format!(
            "replay ended at {} but the log ends at {last}",
            records.len()
        ));
    }
    Ok(last)
}
