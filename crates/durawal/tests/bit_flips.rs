//! Pins how recovery treats flipped bits. In the last record of the log (every
//! bit of its header, sampled bits of its payload) a flip is a damaged tail:
//! cut back to the previous record and reported, or refused in absolute mode.
//! In a record with more than `TEAR_WINDOW` (4 MiB) of valid records after it,
//! a flip cannot be a torn write: tolerate-tail and absolute must refuse with
//! `Corrupt` naming the file and the record's offset, point-in-time must keep
//! exactly the records before it, skip-corrupted must keep every other record
//! and count the one it lost. The exact window boundary is pinned too.

mod common;

use std::path::Path;

use common::*;
use durawal::{RecoveryMode, TEAR_WINDOW};

const BIG_SEGMENT: u64 = 8 << 20;

/// A log over two small segments whose last record is a 100-byte data record.
fn small_log(rng: &mut Rng) -> (tempfile::TempDir, Expected) {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(SMALL_SEGMENT);
    let wal = open(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    while expected.layout.segments.len() < 2 || expected.layout.records_in(1).len() < 10 {
        let len = rng.range(1, 400) as usize;
        expected.append(&wal, rng.nonzero_bytes(len));
    }
    expected.append(&wal, rng.nonzero_bytes(100));
    wal.close().unwrap();
    (dir, expected)
}

#[test]
fn any_flipped_bit_in_the_last_record_cuts_the_tail_to_the_previous_record() {
    let mut rng = Rng::from_env(0x5eed_0301);
    let (dir, expected) = small_log(&mut rng);
    let layout = &expected.layout;
    let last_segment = layout.segments.len() - 1;
    let name = layout.file_name(last_segment);
    let original = read_file(&dir.path().join(&name));
    let last = layout.records.last().unwrap().clone();
    assert_eq!(last.segment, last_segment);

    let mut bits: Vec<u64> = (0..RECORD_HEADER_SIZE * 8).collect();
    let payload_bits = last.payload_len * 8;
    bits.extend((0..16).map(|bit| RECORD_HEADER_SIZE * 8 + bit));
    bits.extend((payload_bits - 16..payload_bits).map(|bit| RECORD_HEADER_SIZE * 8 + bit));
    bits.extend((0..48).map(|_| RECORD_HEADER_SIZE * 8 + rng.range(0, payload_bits - 1)));
    for bit in bits {
        let variant = copy_log(dir.path());
        let mut damaged = original.clone();
        damaged[(last.offset + bit / 8) as usize] ^= 1 << (bit % 8);
        write_file(&variant.path().join(&name), &damaged);
        let oracle = oracle(&expected, last_segment, &original, &damaged);
        assert_eq!(oracle.keep, last.first_lsn - 1);
        assert!(oracle.truncated > 0);
        check_recovery(
            variant.path(),
            &name,
            &expected.payloads,
            &oracle,
            &format!("bit {bit} of the last record"),
        );
    }
}

/// A log in one 8 MiB segment with about 6 MiB of records.
fn big_log(rng: &mut Rng) -> (tempfile::TempDir, Expected) {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(BIG_SEGMENT);
    let wal = open(dir.path(), options(BIG_SEGMENT, RecoveryMode::TolerateTail));
    while expected.layout.segments[0].end < 6 << 20 {
        let len = rng.range(2000, 6000) as usize;
        expected.append(&wal, rng.nonzero_bytes(len));
        if rng.range(0, 200) == 0 {
            wal.sync(None).unwrap();
        }
    }
    wal.close().unwrap();
    assert_eq!(expected.layout.segments.len(), 1);
    (dir, expected)
}

/// Copies the log and flips one payload bit of physical record `index`.
fn damage_record(dir: &Path, expected: &Expected, index: usize) -> tempfile::TempDir {
    let record = &expected.layout.records[index];
    let variant = copy_log(dir);
    flip_bit(
        &variant
            .path()
            .join(expected.layout.file_name(record.segment)),
        record.offset + RECORD_HEADER_SIZE + record.payload_len / 2,
        3,
    );
    variant
}

#[test]
fn a_flipped_bit_with_megabytes_of_valid_records_after_it_is_damage_inside_the_log() {
    let mut rng = Rng::from_env(0x5eed_0302);
    let (dir, expected) = big_log(&mut rng);
    let layout = &expected.layout;
    let index = layout
        .records
        .iter()
        .position(|r| r.offset >= 1 << 20)
        .unwrap();
    let damaged = layout.records[index].clone();
    assert!(layout.segments[0].end - damaged.offset > TEAR_WINDOW + (256 << 10));
    let path_in = |dir: &Path| dir.join(layout.file_name(0));
    let total = expected.payloads.len() as u64;
    let lost = damaged.first_lsn;

    for mode in [RecoveryMode::TolerateTail, RecoveryMode::Absolute] {
        let variant = damage_record(dir.path(), &expected, index);
        let error = open_err(variant.path(), options(BIG_SEGMENT, mode));
        assert_eq!(
            corrupt_location(&error),
            (path_in(variant.path()), damaged.offset),
            "{mode:?}: {error}"
        );
        // Refusing must not have changed a byte.
        let before = damage_record(dir.path(), &expected, index);
        assert!(
            read_file(&path_in(variant.path())) == read_file(&path_in(before.path())),
            "{mode:?} modified the refused log"
        );
    }

    // Point in time: exactly the records before the damaged one survive.
    let variant = damage_record(dir.path(), &expected, index);
    let damaged_bytes = read_file(&path_in(variant.path()));
    {
        let wal = open(
            variant.path(),
            options(BIG_SEGMENT, RecoveryMode::PointInTime),
        );
        let report = wal.recovery().clone();
        assert_eq!(report.records, lost - 1, "{report:?}");
        assert_eq!(
            report.truncated_bytes,
            end_of_nonzero(&damaged_bytes, damaged.offset) - damaged.offset
        );
        let reason = report.truncated_reason.clone().unwrap_or_default();
        assert!(
            reason.contains(&format!("offset {}", damaged.offset)),
            "{reason}"
        );
        assert_log(&wal, &expected.payloads[..(lost - 1) as usize]);
        assert_eq!(wal.append(b"after point-in-time").unwrap(), lost);
        wal.close().unwrap();
    }
    {
        let wal = open(variant.path(), options(BIG_SEGMENT, RecoveryMode::Absolute));
        let mut after = expected.payloads[..(lost - 1) as usize].to_vec();
        after.push(b"after point-in-time".to_vec());
        assert_eq!(wal.recovery().truncated_bytes, 0);
        assert_log(&wal, &after);
    }

    // Skip corrupted: everything but the damaged record, which is counted.
    let variant = damage_record(dir.path(), &expected, index);
    for reopen in 0..2 {
        let wal = open(
            variant.path(),
            options(BIG_SEGMENT, RecoveryMode::SkipCorrupted),
        );
        let report = wal.recovery().clone();
        let appended = reopen as u64;
        assert_eq!(
            (
                report.skipped_records,
                report.skipped_regions,
                report.truncated_bytes
            ),
            (1, 1, 0),
            "reopen {reopen}: {report:?}"
        );
        assert_eq!(report.records, total - 1 + appended, "reopen {reopen}");
        let records = read_all(&wal);
        let mut wanted: Vec<(u64, Vec<u8>)> = expected
            .payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64 + 1, p.clone()))
            .filter(|(lsn, _)| *lsn != lost)
            .collect();
        if reopen == 1 {
            wanted.push((total + 1, b"after skip".to_vec()));
        }
        assert_eq!(records.len(), wanted.len(), "reopen {reopen}");
        assert!(records == wanted, "reopen {reopen}: wrong records or bytes");
        if reopen == 0 {
            assert_eq!(
                wal.append(b"after skip").unwrap(),
                total + 1,
                "LSNs are never reused"
            );
        }
        wal.close().unwrap();
    }
}

/// In a log without synced-before flags (format 2), damage followed by a
/// valid record that starts exactly `TEAR_WINDOW` bytes later is damage
/// inside the log; when the log ends one record earlier, the damage is
/// within the window a torn write can span and the tail is cut.
#[test]
fn the_tear_window_boundary_is_exact() {
    let mut rng = Rng::from_env(0x5eed_0303);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(BIG_SEGMENT);
    let wal = open(dir.path(), options(BIG_SEGMENT, RecoveryMode::TolerateTail));
    while expected.layout.segments[0].end < 1 << 20 {
        let len = rng.range(100, 5000) as usize;
        expected.append(&wal, rng.nonzero_bytes(len));
    }
    let damaged_index = expected.layout.records.len();
    expected.append(&wal, rng.nonzero_bytes(3000));
    let target = expected.layout.records[damaged_index].offset + TEAR_WINDOW;
    while target - expected.layout.segments[0].end > 8000 {
        let len = rng.range(2000, 5000) as usize;
        expected.append(&wal, rng.nonzero_bytes(len));
    }
    let filler = target - expected.layout.segments[0].end - RECORD_HEADER_SIZE;
    expected.append(&wal, rng.nonzero_bytes(filler as usize));
    let probe = expected.layout.records.len();
    expected.append(&wal, rng.nonzero_bytes(500));
    wal.close().unwrap();
    assert_eq!(expected.layout.records[probe].offset, target);
    let damaged = expected.layout.records[damaged_index].clone();
    let name = expected.layout.file_name(0);
    rewrite_as_format_2(&dir.path().join(&name), &expected.layout.records);

    let variant = damage_record(dir.path(), &expected, damaged_index);
    let error = open_err(
        variant.path(),
        options(BIG_SEGMENT, RecoveryMode::TolerateTail),
    );
    assert_eq!(
        corrupt_location(&error),
        (variant.path().join(&name), damaged.offset),
        "{error}"
    );

    // Without the probe record the last valid record starts 4 MiB - 8 bytes or
    // less after the damage: a torn tail, cut in tolerate-tail mode.
    let path = variant.path().join(&name);
    let mut bytes = read_file(&path);
    let probe_offset = expected.layout.records[probe].offset as usize;
    bytes[probe_offset..probe_offset + record_size(500) as usize].fill(0);
    write_file(&path, &bytes);
    let wal = open(
        variant.path(),
        options(BIG_SEGMENT, RecoveryMode::TolerateTail),
    );
    let report = wal.recovery().clone();
    assert_eq!(report.records, damaged.first_lsn - 1, "{report:?}");
    assert_eq!(
        report.truncated_bytes,
        end_of_nonzero(&bytes, damaged.offset) - damaged.offset
    );
    assert_log(&wal, &expected.payloads[..(damaged.first_lsn - 1) as usize]);
}
