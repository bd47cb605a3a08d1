//! Pins what recovery and replay do with damage inside the log that a crash
//! cannot explain. In the last segment, damage with a valid record of the same
//! segment more than the tear window beyond it is refused (`Corrupt`, naming
//! file and offset) whatever the damage looks like — a zeroed header, a zeroed
//! block, a flipped bit, a lying length, garbage — and nothing on disk is
//! changed by the refusal. Skip-corrupted mode loses exactly the damaged
//! records, and replay (in the same session, and after a reopen) walks past
//! the damage with the same rule as recovery: every record recovery counts,
//! and every record written after open, comes back byte for byte.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use durawal::{RecoveryMode, Wal, TEAR_WINDOW};

/// Twice the tear window, so damage can lie more than a window before the end.
const BIG_SEGMENT: u64 = 2 * TEAR_WINDOW;

/// One way to damage the record that starts at `offset` with `payload_len`
/// bytes; returns the damaged byte range.
type Damage = fn(bytes: &mut [u8], offset: usize, payload_len: usize, salt: u32) -> (usize, usize);

fn damages() -> Vec<(&'static str, Damage)> {
    vec![
        ("zeroed header", |bytes, offset, _, _| {
            bytes[offset..offset + 24].fill(0);
            (offset, offset + 24)
        }),
        ("zeroed 4 KiB block", |bytes, offset, _, _| {
            let block = offset - offset % 4096;
            bytes[block..block + 4096].fill(0);
            (block, block + 4096)
        }),
        ("flipped header bit", |bytes, offset, _, _| {
            bytes[offset + 9] ^= 0x10;
            (offset + 9, offset + 10)
        }),
        ("flipped payload bit", |bytes, offset, payload_len, _| {
            let at = offset + 24 + payload_len / 2;
            bytes[at] ^= 0x01;
            (at, at + 1)
        }),
        (
            "lying length under a valid header CRC",
            |bytes, offset, _, salt| {
                bytes[offset + 4..offset + 8].copy_from_slice(&(1u32 << 30).to_le_bytes());
                let header_crc = masked_crc(salt, &bytes[offset + 4..offset + 20]);
                bytes[offset + 20..offset + 24].copy_from_slice(&header_crc.to_le_bytes());
                (offset + 4, offset + 24)
            },
        ),
        ("garbage", |bytes, offset, _, _| {
            let mut rng = Rng::new(offset as u64);
            let garbage = rng.nonzero_bytes(100);
            bytes[offset..offset + 100].copy_from_slice(&garbage);
            (offset, offset + 100)
        }),
    ]
}

/// A closed log of records of `sizes` random non-zero bytes, appended
/// while `more` says the layout wants more.
fn log_of(
    seed: u64,
    segment_size: u64,
    sizes: (u64, u64),
    more: impl Fn(&LayoutModel) -> bool,
) -> (tempfile::TempDir, Expected) {
    let mut rng = Rng::from_env(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(segment_size);
    let wal = open(
        dir.path(),
        options(segment_size, RecoveryMode::TolerateTail),
    );
    while more(&expected.layout) {
        let len = rng.range(sizes.0, sizes.1) as usize;
        expected.append(&wal, rng.nonzero_bytes(len));
    }
    wal.close().unwrap();
    (dir, expected)
}

/// A one-segment log filled to about 95% with records of several KiB.
fn big_log(seed: u64) -> (tempfile::TempDir, Expected) {
    let (dir, expected) = log_of(seed, BIG_SEGMENT, (3000, 9000), |layout| {
        layout.segments[0].end < BIG_SEGMENT * 95 / 100
    });
    assert_eq!(expected.layout.segments.len(), 1);
    (dir, expected)
}

/// A copy of the log in `dir` whose `segment` has `damage` done to the
/// record `victim`; returns the copy, the damaged file, its bytes and the
/// damaged byte range.
fn damaged_copy(
    dir: &Path,
    segment: &Path,
    victim: &PlacedRecord,
    damage: Damage,
) -> (tempfile::TempDir, PathBuf, Vec<u8>, (usize, usize)) {
    let copy = copy_log(dir);
    let path = copy.path().join(file_name(segment));
    let mut damaged = read_file(segment);
    let salt = segment_salt(&damaged);
    let range = damage(
        &mut damaged,
        victim.offset as usize,
        victim.payload_len as usize,
        salt,
    );
    write_file(&path, &damaged);
    (copy, path, damaged, range)
}

/// Zeroes the 24-byte header of `record` in `segment`.
fn zero_header(segment: &Path, record: &PlacedRecord) {
    let mut bytes = read_file(segment);
    bytes[record.offset as usize..record.offset as usize + 24].fill(0);
    write_file(segment, &bytes);
}

/// LSNs of the records whose bytes (header to end of payload) meet `damaged`.
fn lost_lsns(expected: &Expected, segment: usize, damaged: (usize, usize)) -> Vec<u64> {
    expected
        .layout
        .records_in(segment)
        .iter()
        .filter(|record| (record.offset as usize) < damaged.1 && damaged.0 < record.end() as usize)
        .flat_map(|record| record.first_lsn..record.first_lsn + record.lsn_count)
        .collect()
}

/// Opens in skip-corrupted mode and checks that recovery's count, the replay
/// and the replay after more writes (and after a reopen) agree with the
/// oracle: every LSN but `lost`, byte for byte.
fn check_skip_mode_replays_what_recovery_kept(
    dir: &Path,
    expected: &Expected,
    segment_size: u64,
    lost: &[u64],
    label: &str,
) {
    let mut wanted: Vec<(u64, Vec<u8>)> = (1..=expected.payloads.len() as u64)
        .filter(|lsn| !lost.contains(lsn))
        .map(|lsn| (lsn, expected.payloads[lsn as usize - 1].clone()))
        .collect();
    let wal = Wal::open(dir, options(segment_size, RecoveryMode::SkipCorrupted))
        .unwrap_or_else(|error| panic!("{label}: skip-corrupted refused: {error}"));
    let report = wal.recovery().clone();
    assert_eq!(report.records, wanted.len() as u64, "{label}: {report:?}");
    assert_eq!(
        report.skipped_records,
        lost.len() as u64,
        "{label}: {report:?}"
    );
    assert_replays(&wal, &wanted, &format!("{label}, at open"));

    let first_new = expected.payloads.len() as u64 + 1;
    for (lsn, extra) in (first_new..).zip([b"written after a skip".to_vec(), vec![0x5A; 5000]]) {
        assert_eq!(wal.append(&extra).unwrap(), lsn, "{label}");
        wanted.push((lsn, extra));
    }
    wal.sync(None).unwrap();
    assert_replays(&wal, &wanted, &format!("{label}, after writes"));
    wal.close().unwrap();

    let wal = Wal::open(dir, options(segment_size, RecoveryMode::SkipCorrupted)).unwrap();
    assert_eq!(
        wal.recovery().records,
        wanted.len() as u64,
        "{label}: reopen"
    );
    assert_replays(&wal, &wanted, &format!("{label}, after reopen"));
    wal.close().unwrap();
}

fn assert_replays(wal: &Wal, wanted: &[(u64, Vec<u8>)], label: &str) {
    let (records, error) = read_until_error(wal);
    assert!(
        error.is_none(),
        "{label}: replay failed: {}",
        error.unwrap()
    );
    assert_eq!(records.len(), wanted.len(), "{label}: records replayed");
    for (got, want) in records.iter().zip(wanted) {
        assert!(got == want, "{label}: wrong LSN or bytes at LSN {}", got.0);
    }
}

#[test]
fn damage_deeper_than_the_tear_window_is_refused_whatever_it_looks_like() {
    let (dir, expected) = big_log(0xdee9_0001);
    let segment = dir.path().join(expected.layout.file_name(0));
    let original = read_file(&segment);
    let records = expected.layout.records_in(0);
    // About 850 KB into the segment, as the fault hunt found it.
    let victim = records
        .iter()
        .find(|record| record.offset >= 850_000)
        .unwrap()
        .clone();
    assert!(victim.offset + TEAR_WINDOW < expected.layout.segments[0].end);
    for (label, damage) in damages() {
        let (copy, path, damaged, range) = damaged_copy(dir.path(), &segment, &victim, damage);
        let damage_at = damaged
            .iter()
            .zip(&original)
            .position(|(a, b)| a != b)
            .unwrap() as u64;
        let first_broken = records
            .iter()
            .find(|record| record.end() > damage_at)
            .unwrap()
            .offset;
        for mode in [RecoveryMode::TolerateTail, RecoveryMode::Absolute] {
            let error = open_err(copy.path(), options(BIG_SEGMENT, mode));
            assert_eq!(
                corrupt_location(&error),
                (path.clone(), first_broken),
                "{label}, {mode:?}: {error}"
            );
            assert!(
                read_file(&path) == damaged,
                "{label}, {mode:?}: a refused open changed the segment"
            );
        }
        let lost = lost_lsns(&expected, 0, range);
        assert!(!lost.is_empty(), "{label}");
        check_skip_mode_replays_what_recovery_kept(
            copy.path(),
            &expected,
            BIG_SEGMENT,
            &lost,
            label,
        );
    }
}

#[test]
fn damage_within_the_tear_window_of_the_end_is_still_cut_as_a_torn_tail() {
    let (dir, expected) = big_log(0xdee9_0002);
    let end = expected.layout.segments[0].end;
    let path = dir.path().join(expected.layout.file_name(0));
    // A torn write can only be in the last flush: after the last record
    // with the synced-before flag (what precedes it was synced).
    let bytes = read_file(&path);
    let records = expected.layout.records_in(0);
    let last_flush = records
        .iter()
        .rposition(|record| synced_before(&bytes, record.offset))
        .expect("the log was written in several flushes");
    let victim = records[last_flush..]
        .iter()
        .find(|record| record.offset + TEAR_WINDOW > end)
        .expect("a record of the last flush within the tear window of the end")
        .clone();
    zero_header(&path, &victim);
    let wal = open(dir.path(), options(BIG_SEGMENT, RecoveryMode::TolerateTail));
    let report = wal.recovery().clone();
    assert_eq!(report.records, victim.first_lsn - 1, "{report:?}");
    assert!(report.truncated_bytes > 0);
    assert_log(&wal, &expected.payloads[..victim.first_lsn as usize - 1]);
}

#[test]
fn skip_mode_replay_walks_past_a_zeroed_header_in_the_last_segment() {
    let (dir, expected) = log_of(0xdee9_0003, SMALL_SEGMENT, (50, 300), |layout| {
        layout.records.len() < 100
    });
    assert_eq!(expected.layout.segments.len(), 1);
    let victim = expected.layout.records[10].clone();
    zero_header(&dir.path().join(expected.layout.file_name(0)), &victim);
    check_skip_mode_replays_what_recovery_kept(
        dir.path(),
        &expected,
        SMALL_SEGMENT,
        &[victim.first_lsn],
        "zeroed header, last segment",
    );
}

#[test]
fn skip_mode_replay_walks_past_every_kind_of_damage_in_a_middle_segment() {
    let (dir, expected) = log_of(0xdee9_0004, SMALL_SEGMENT, (3000, 6000), |layout| {
        layout.segments.len() < 3
    });
    let segment = dir.path().join(expected.layout.file_name(1));
    let victim = expected.layout.records_in(1)[3].clone();
    for (label, damage) in damages() {
        let (copy, _, _, range) = damaged_copy(dir.path(), &segment, &victim, damage);
        let lost = lost_lsns(&expected, 1, range);
        check_skip_mode_replays_what_recovery_kept(
            copy.path(),
            &expected,
            SMALL_SEGMENT,
            &lost,
            label,
        );
    }
}

#[test]
fn skip_mode_links_a_new_segment_to_a_damaged_sealed_last_segment() {
    let (dir, mut expected) = log_of(0xdee9_0005, SMALL_SEGMENT, (2000, 4000), |layout| {
        layout.segments.len() < 3
    });
    // Make the sealed second segment the last one, as a crash between its
    // seal and the creation of the next segment leaves it.
    std::fs::remove_file(dir.path().join(expected.layout.file_name(2))).unwrap();
    let last_lsn = expected.layout.segments[2].first_lsn - 1;
    expected.payloads.truncate(last_lsn as usize);
    let victim = expected.layout.records_in(1)[2].clone();
    zero_header(&dir.path().join(expected.layout.file_name(1)), &victim);
    // Appending after the skip starts a new segment whose header must repeat
    // the seal's digest (not the digest of the records read past the skip),
    // or the next open would refuse it as not continuing the log.
    check_skip_mode_replays_what_recovery_kept(
        dir.path(),
        &expected,
        SMALL_SEGMENT,
        &[victim.first_lsn],
        "zeroed header, sealed last segment",
    );
    assert_eq!(segment_files(dir.path()).len(), 3);
}
