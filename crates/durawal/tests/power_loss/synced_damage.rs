//! Format 3's promise under power loss: damage to a synced record is never
//! cut as a torn tail. In the image of every power-failure point and fate
//! of the appending workload, a bit is flipped in the payload of the last
//! record that a later valid record proves synced (one with the
//! synced-before flag); recovery must refuse the log, naming that record's
//! offset, rather than open it without the record. (That every torn
//! unsynced write is still cut is what the other workloads check: each of
//! their images must open.)

use std::sync::{Arc, Mutex};

use durawal::format::{
    parse_segment_name, HeaderCheck, RecordHeader, SegmentHeader, RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
};
use durawal::Error;

use crate::appending;
use crate::explorer::{explore_points, random_draws, Checked, Exploration, PointRun};
use crate::fates::Fate;
use crate::log_check::open;
use crate::sim_disk::{Disk, Mutation};

/// The valid records at the start of a segment's records: (offset, header).
fn valid_records(segment: &[u8]) -> Vec<(usize, RecordHeader)> {
    let Ok(header) = SegmentHeader::decode(&segment[..SEGMENT_HEADER_SIZE]) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_SIZE;
    while offset + RECORD_HEADER_SIZE <= segment.len() {
        let bytes = segment[offset..offset + RECORD_HEADER_SIZE]
            .try_into()
            .unwrap();
        let HeaderCheck::Valid(record) = RecordHeader::decode(header.salt, bytes) else {
            break;
        };
        let end = offset + record.record_size();
        if end > segment.len()
            || !record.payload_matches(
                header.salt,
                bytes,
                &segment[offset + 24..offset + 24 + record.length as usize],
            )
        {
            break;
        }
        records.push((offset, record));
        offset = end;
    }
    records
}

fn check(disk: &Mutex<Disk>, fate: Fate) -> Checked {
    let mut image = disk.lock().unwrap().after_power_loss(fate);
    let Some(name) = image
        .entries
        .keys()
        .filter(|name| parse_segment_name(name).is_some())
        .max()
        .cloned()
    else {
        return Ok(0);
    };
    let records = valid_records(image.file(&name).unwrap());
    let proof = records.iter().rposition(|(_, header)| header.synced_before);
    let Some(victim) = proof
        .filter(|&index| index > 0)
        .map(|index| records[index - 1])
    else {
        return Ok(0);
    };
    let (offset, header) = victim;
    let (at, bit) = match header.length {
        0 => (offset + 8, 0),
        length => (offset + RECORD_HEADER_SIZE + length as usize / 2, 5),
    };
    image.flip_bit(&name, at, bit);
    match open(&Arc::new(Mutex::new(image))) {
        Err(Error::Corrupt { offset: found, .. }) if found == offset as u64 => Ok(1),
        Err(error) => Err(format!(
            "a flipped bit in the synced record at {name} offset {offset}: {error}"
        )),
        Ok(wal) => Err(format!(
            "a flipped bit in the synced record at {name} offset {offset} (LSN {}) was \
             cut as a torn tail: the log opened with {} records",
            header.lsn,
            wal.last_lsn()
        )),
    }
}

/// Every power-failure point of the appending workload.
pub fn explore(mutation: Mutation) -> Exploration {
    explore_points(false, random_draws(), |point| {
        let (disk, acknowledged) = appending::run(point, mutation);
        let operations = disk.lock().unwrap().operations;
        PointRun {
            progress: format!("acknowledged {acknowledged}"),
            check: Box::new(move |fate| check(&disk, fate)),
            operations,
        }
    })
}
