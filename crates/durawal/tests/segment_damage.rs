//! Pins how recovery treats damage to whole segments, which a crash cannot
//! cause and which must therefore never be mistaken for a torn tail: a missing
//! middle segment, a truncated middle segment (its seal gone), a middle seal or
//! record flipped, a segment copied in from another log, a duplicate or
//! overlapping segment of the same log, and a damaged segment header. Each is
//! refused with `Corrupt` naming the file (and the offset); point-in-time
//! recovery keeps exactly the records before the damage and deletes the later
//! segments; skip-corrupted never returns a wrong byte and counts what it lost.
//! A missing first segment (the head of the log deleted) is refused in every
//! mode: replaying a suffix as if it were the whole log would hide the loss.
//! Unrelated files are left alone and listed; a leftover prepared segment is
//! removed and listed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use durawal::format::parse_segment_name;
use durawal::{Error, RecoveryMode, Wal};

const SEGMENTS: usize = 5;

/// A log of five small segments.
fn five_segments(seed: u64) -> (tempfile::TempDir, Expected) {
    let mut rng = Rng::from_env(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(SMALL_SEGMENT);
    let wal = open(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    while expected.layout.segments.len() < SEGMENTS
        || expected.layout.records_in(SEGMENTS - 1).len() < 10
    {
        let len = rng.range(300, 1500) as usize;
        expected.append(&wal, rng.bytes(len));
    }
    wal.close().unwrap();
    assert_eq!(segment_files(dir.path()).len(), SEGMENTS);
    (dir, expected)
}

fn segment_path(dir: &Path, expected: &Expected, segment: usize) -> PathBuf {
    dir.join(expected.layout.file_name(segment))
}

/// Asserts a `Corrupt` error whose message names every one of `names`.
fn assert_corrupt_naming(error: &Error, names: &[String], label: &str) {
    corrupt_location(error);
    let text = error.to_string();
    for name in names {
        assert!(
            text.contains(name.as_str()),
            "{label}: error must name {name}: {text}"
        );
    }
}

/// Point-in-time recovery must keep exactly LSNs `1..=keep`, delete the
/// segments after `last_kept`, and continue appending after them.
fn check_point_in_time(dir: &Path, expected: &Expected, keep: u64, last_kept: usize, label: &str) {
    let removed: Vec<String> = (last_kept + 1..SEGMENTS)
        .map(|s| expected.layout.file_name(s))
        .filter(|name| dir.join(name).exists())
        .collect();
    {
        let wal = Wal::open(dir, options(SMALL_SEGMENT, RecoveryMode::PointInTime))
            .unwrap_or_else(|error| panic!("{label}: point-in-time open failed: {error}"));
        let report = wal.recovery().clone();
        let mut reported = report.removed_files.clone();
        reported.sort();
        assert_eq!(reported, removed, "{label}: removed_files");
        assert_eq!(report.records, keep, "{label}: {report:?}");
        // When the cut falls on a segment boundary, the fresh segment that
        // appending continues in is named by the next LSN, which can be the
        // name of a removed file; it must then be a new, empty segment.
        let continuation = segment_file_name(keep + 1);
        for name in &removed {
            if *name == continuation && dir.join(name).exists() {
                let bytes = fs::read(dir.join(name)).unwrap();
                assert!(
                    bytes[SEGMENT_HEADER_SIZE as usize..]
                        .iter()
                        .all(|&b| b == 0),
                    "{label}: {name} was replaced by a segment that already holds records"
                );
                continue;
            }
            assert!(!dir.join(name).exists(), "{label}: {name} still exists");
        }
        assert_log(&wal, &expected.payloads[..keep as usize]);
        assert_eq!(
            wal.append(b"after point-in-time").unwrap(),
            keep + 1,
            "{label}"
        );
        wal.close().unwrap();
    }
    let wal =
        Wal::open(dir, options(SMALL_SEGMENT, RecoveryMode::Absolute)).unwrap_or_else(|error| {
            panic!("{label}: reopen after point-in-time recovery and one append failed: {error}")
        });
    assert_eq!(wal.recovery().truncated_bytes, 0, "{label}: second reopen");
    assert_eq!(
        wal.last_lsn(),
        keep + 1,
        "{label}: the record appended (and flushed by close) after point-in-time recovery is gone on reopen"
    );
    let mut after = expected.payloads[..keep as usize].to_vec();
    after.push(b"after point-in-time".to_vec());
    assert_log(&wal, &after);
}

/// Skip-corrupted may refuse damage it cannot skip; when it opens the log, it
/// must return every record outside `lost` byte for byte, and count `lost`.
fn check_skip_corrupted(
    dir: &Path,
    expected: &Expected,
    lost: std::ops::RangeInclusive<u64>,
    label: &str,
) {
    let wal = match Wal::open(dir, options(SMALL_SEGMENT, RecoveryMode::SkipCorrupted)) {
        Err(error) => {
            corrupt_location(&error);
            return;
        }
        Ok(wal) => wal,
    };
    let report = wal.recovery().clone();
    let (records, error) = read_until_error(&wal);
    let wanted: Vec<(u64, Vec<u8>)> = (1..=expected.payloads.len() as u64)
        .filter(|lsn| !lost.contains(lsn))
        .map(|lsn| (lsn, expected.payloads[lsn as usize - 1].clone()))
        .collect();
    for (got, want) in records.iter().zip(&wanted) {
        assert!(
            got == want,
            "{label}: replay returned wrong bytes or LSN at LSN {}",
            got.0
        );
    }
    assert!(
        error.is_none(),
        "{label}: skip-corrupted opened the log (report {report:?}) but replay failed after {} of {} records: {}",
        records.len(),
        wanted.len(),
        error.unwrap()
    );
    assert_eq!(records.len(), wanted.len(), "{label}: records replayed");
    assert_eq!(
        report.skipped_records,
        lost.end() - lost.start() + 1,
        "{label}: skipped_records must count the lost LSNs {lost:?}; report {report:?}"
    );
}

#[test]
fn a_missing_middle_segment_is_refused_naming_the_neighbours() {
    let (dir, expected) = five_segments(0x5eed_0501);
    fs::remove_file(segment_path(dir.path(), &expected, 2)).unwrap();
    let names = [expected.layout.file_name(1), expected.layout.file_name(3)];
    for mode in [RecoveryMode::TolerateTail, RecoveryMode::Absolute] {
        let error = open_err(dir.path(), options(SMALL_SEGMENT, mode));
        assert_corrupt_naming(&error, &names, &format!("{mode:?}"));
    }
}

#[test]
fn a_missing_first_segment_is_refused_in_every_mode() {
    let (dir, expected) = five_segments(0x5eed_0502);
    for missing in [vec![0], vec![0, 1, 2, 3]] {
        let copy = copy_log(dir.path());
        for &segment in &missing {
            fs::remove_file(segment_path(copy.path(), &expected, segment)).unwrap();
        }
        let first_present = segment_path(copy.path(), &expected, missing.len());
        let before = segment_files(copy.path());
        for mode in [
            RecoveryMode::TolerateTail,
            RecoveryMode::Absolute,
            RecoveryMode::PointInTime,
            RecoveryMode::SkipCorrupted,
        ] {
            let label = format!("{mode:?}, segments {missing:?} missing");
            let error = open_err(copy.path(), options(SMALL_SEGMENT, mode));
            assert_eq!(
                corrupt_location(&error),
                (first_present.clone(), 0),
                "{label}"
            );
            assert!(
                error.to_string().contains("first segment is missing"),
                "{label}: {error}"
            );
            assert_eq!(segment_files(copy.path()), before, "{label}: files changed");
        }
    }
}

#[test]
fn point_in_time_keeps_the_segments_before_a_missing_one() {
    let (dir, expected) = five_segments(0x5eed_0501);
    fs::remove_file(segment_path(dir.path(), &expected, 2)).unwrap();
    let keep = expected.layout.segments[2].first_lsn - 1;
    check_point_in_time(dir.path(), &expected, keep, 1, "missing segment");
}

#[test]
fn skip_corrupted_with_a_missing_middle_segment_never_fails_replay_after_opening() {
    let (dir, expected) = five_segments(0x5eed_0502);
    fs::remove_file(segment_path(dir.path(), &expected, 2)).unwrap();
    let lost = expected.layout.segments[2].first_lsn..=expected.layout.segments[3].first_lsn - 1;
    check_skip_corrupted(dir.path(), &expected, lost, "missing segment");
}

/// Truncations of the third segment: at its seal, inside a record, right
/// after its header block, inside its header block, and to nothing.
fn truncations(expected: &Expected) -> Vec<(String, u64)> {
    let records = expected.layout.records_in(2);
    let middle = &records[records.len() / 2];
    vec![
        (
            "at the seal".into(),
            expected.layout.segments[2].seal_offset.unwrap(),
        ),
        (
            "inside a record".into(),
            middle.offset + RECORD_HEADER_SIZE + middle.payload_len / 2,
        ),
        ("after the header block".into(), SEGMENT_HEADER_SIZE),
        ("inside the header block".into(), 100),
        ("to nothing".into(), 0),
    ]
}

#[test]
fn a_truncated_middle_segment_is_refused_naming_it() {
    let (dir, expected) = five_segments(0x5eed_0503);
    let seal_offset = expected.layout.segments[2].seal_offset.unwrap();
    for (label, length) in truncations(&expected) {
        let variant = copy_log(dir.path());
        let path = segment_path(variant.path(), &expected, 2);
        truncate_file(&path, length);
        // Either where the seal should be or where the records stop is a
        // precise answer; a header block cut short is refused at offset 0.
        let first_missing =
            first_record_cut(&expected, 2, length).map_or(seal_offset, |record| record.offset);
        let allowed = if length < SEGMENT_HEADER_SIZE {
            vec![0]
        } else {
            vec![seal_offset, first_missing]
        };
        for mode in [RecoveryMode::TolerateTail, RecoveryMode::Absolute] {
            let error = open_err(variant.path(), options(SMALL_SEGMENT, mode));
            let (file, offset) = corrupt_location(&error);
            assert!(
                file == path && allowed.contains(&offset),
                "{label}, {mode:?}: expected {} at one of {allowed:?}: {error}",
                path.display()
            );
        }
    }
    // The seal zeroed in place (file length unchanged) is the same damage.
    let variant = copy_log(dir.path());
    let path = segment_path(variant.path(), &expected, 2);
    let mut bytes = read_file(&path);
    bytes[seal_offset as usize..(seal_offset + SEAL_SIZE) as usize].fill(0);
    write_file(&path, &bytes);
    let error = open_err(
        variant.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    assert_eq!(corrupt_location(&error), (path, seal_offset), "{error}");
}

#[test]
fn point_in_time_keeps_the_records_before_a_truncation_of_a_middle_segment() {
    let (dir, expected) = five_segments(0x5eed_0504);
    for (label, length) in truncations(&expected).into_iter().take(3) {
        let variant = copy_log(dir.path());
        let path = segment_path(variant.path(), &expected, 2);
        truncate_file(&path, length);
        let keep = expected
            .layout
            .records_in(2)
            .iter()
            .take_while(|record| record.padded_end() <= length)
            .last()
            .map_or(expected.layout.segments[2].first_lsn - 1, |r| {
                r.first_lsn + r.lsn_count - 1
            });
        check_point_in_time(
            variant.path(),
            &expected,
            keep,
            2,
            &format!("truncated {label}"),
        );
    }
}

#[test]
fn skip_corrupted_with_a_truncated_middle_segment_never_fails_replay_after_opening() {
    let (dir, expected) = five_segments(0x5eed_0505);
    let (_, length) = truncations(&expected)[1].clone();
    let path = segment_path(dir.path(), &expected, 2);
    truncate_file(&path, length);
    let first_lost = first_record_cut(&expected, 2, length).unwrap().first_lsn;
    let lost = first_lost..=expected.layout.segments[3].first_lsn - 1;
    check_skip_corrupted(dir.path(), &expected, lost, "truncated middle segment");
}

#[test]
fn a_flipped_seal_of_a_middle_segment_is_refused() {
    let (dir, expected) = five_segments(0x5eed_0506);
    let seal_offset = expected.layout.segments[2].seal_offset.unwrap();
    for byte in [0, 5, 9, 16, 22, 24, 33, 43] {
        let variant = copy_log(dir.path());
        let path = segment_path(variant.path(), &expected, 2);
        flip_bit(&path, seal_offset + byte, (byte % 8) as u8);
        for mode in [RecoveryMode::TolerateTail, RecoveryMode::Absolute] {
            let error = open_err(variant.path(), options(SMALL_SEGMENT, mode));
            assert_eq!(
                corrupt_location(&error),
                (path.clone(), seal_offset),
                "seal byte {byte}, {mode:?}"
            );
        }
    }
}

/// A flipped record in a middle segment: the seal chain still matches, so the
/// damage is only visible by reading the records. Either open or replay must
/// refuse it, naming the file and offset, after returning only correct records.
#[test]
fn a_flipped_record_in_a_middle_segment_is_refused_or_cut_point_in_time() {
    let (dir, expected) = five_segments(0x5eed_0507);
    let records = expected.layout.records_in(2);
    let damaged = records[records.len() / 2].clone();
    let flip = |dir: &Path| {
        let path = segment_path(dir, &expected, 2);
        flip_bit(
            &path,
            damaged.offset + RECORD_HEADER_SIZE + damaged.payload_len / 3,
            6,
        );
        path
    };
    for mode in [RecoveryMode::TolerateTail, RecoveryMode::Absolute] {
        let variant = copy_log(dir.path());
        let path = flip(variant.path());
        match Wal::open(variant.path(), options(SMALL_SEGMENT, mode)) {
            Err(error) => assert_eq!(
                corrupt_location(&error),
                (path, damaged.offset),
                "{mode:?}: {error}"
            ),
            Ok(wal) => {
                let (records, error) = read_until_error(&wal);
                let error =
                    error.unwrap_or_else(|| panic!("{mode:?}: replay read past a damaged record"));
                assert_eq!(
                    corrupt_location(&error),
                    (path, damaged.offset),
                    "{mode:?}: {error}"
                );
                assert_records(&records, &expected.payloads[..records.len()]);
                assert_eq!(records.len() as u64, damaged.first_lsn - 1, "{mode:?}");
            }
        }
    }
    let variant = copy_log(dir.path());
    flip(variant.path());
    check_point_in_time(
        variant.path(),
        &expected,
        damaged.first_lsn - 1,
        2,
        "flipped record",
    );
}

#[test]
fn skip_corrupted_skips_and_counts_a_flipped_record_in_a_middle_segment() {
    let (dir, expected) = five_segments(0x5eed_0508);
    let records = expected.layout.records_in(2);
    let damaged = records[records.len() / 2].clone();
    flip_bit(
        &segment_path(dir.path(), &expected, 2),
        damaged.offset + RECORD_HEADER_SIZE + 1,
        0,
    );
    check_skip_corrupted(
        dir.path(),
        &expected,
        damaged.first_lsn..=damaged.first_lsn,
        "flipped record",
    );
}

#[test]
fn a_segment_from_another_log_is_refused_as_foreign() {
    // Two logs written with the same seed have identically named segments.
    let (a, expected) = five_segments(0x5eed_0509);
    let (b, _) = five_segments(0x5eed_0509);
    let mut more = Expected::new(SMALL_SEGMENT);
    more.payloads = expected.payloads.clone();
    {
        // Grow log B by one segment, so its sixth segment fits after A's fifth.
        let wal = open(b.path(), options(SMALL_SEGMENT, RecoveryMode::TolerateTail));
        while segment_files(b.path()).len() == SEGMENTS {
            wal.append(&[0x42; 1000]).unwrap();
            wal.sync(None).unwrap();
        }
        wal.close().unwrap();
    }
    let sixth = segment_files(b.path())[SEGMENTS].clone();

    let cases: Vec<(&str, Vec<usize>, Option<PathBuf>)> = vec![
        ("third segment replaced", vec![2], None),
        ("first segment replaced", vec![0], None),
        ("last segment replaced", vec![SEGMENTS - 1], None),
        ("sixth segment added", vec![], Some(sixth)),
    ];
    for (label, replaced, added) in cases {
        let variant = copy_log(a.path());
        for &segment in &replaced {
            fs::copy(
                segment_path(b.path(), &expected, segment),
                segment_path(variant.path(), &expected, segment),
            )
            .unwrap();
        }
        let mut suspects: Vec<PathBuf> = replaced
            .iter()
            .map(|&s| segment_path(variant.path(), &expected, s))
            .collect();
        if let Some(added) = &added {
            let to = variant.path().join(added.file_name().unwrap());
            fs::copy(added, &to).unwrap();
            suspects.push(to);
        }
        if replaced == [0] {
            // The first segment sets the log id, so its successor is the odd one out.
            suspects.push(segment_path(variant.path(), &expected, 1));
        }
        for mode in [
            RecoveryMode::TolerateTail,
            RecoveryMode::Absolute,
            RecoveryMode::SkipCorrupted,
        ] {
            let error = open_err(variant.path(), options(SMALL_SEGMENT, mode));
            let (file, offset) = corrupt_location(&error);
            assert!(
                suspects.contains(&file) && offset == 0,
                "{label}, {mode:?}: {error}"
            );
        }
    }
}

#[test]
fn duplicate_and_overlapping_segments_are_refused() {
    let (dir, expected) = five_segments(0x5eed_050a);
    // A copy of a segment under a name its header contradicts.
    for first_lsn in [
        expected.layout.segments[2].first_lsn + 1,
        expected.layout.segments[4].first_lsn + 7,
    ] {
        let variant = copy_log(dir.path());
        let copy = variant.path().join(segment_file_name(first_lsn));
        fs::copy(segment_path(variant.path(), &expected, 2), &copy).unwrap();
        for mode in [
            RecoveryMode::TolerateTail,
            RecoveryMode::Absolute,
            RecoveryMode::PointInTime,
        ] {
            let error = open_err(variant.path(), options(SMALL_SEGMENT, mode));
            assert_eq!(
                corrupt_location(&error),
                (copy.clone(), 0),
                "{mode:?}: {error}"
            );
        }
    }

    // A fork of the same log: a copy of the directory that went on with other
    // records, so its later segments overlap the original's LSN ranges.
    let mut rng = Rng::from_env(0x5eed_050b);
    let original = tempfile::tempdir().unwrap();
    {
        let wal = open(
            original.path(),
            options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
        );
        // Segment files appear when the flusher writes, hence the syncs.
        while segment_files(original.path()).len() < 3 {
            let len = rng.range(300, 900) as usize;
            wal.append(&rng.bytes(len)).unwrap();
            wal.sync(None).unwrap();
        }
        wal.close().unwrap();
    }
    let fork = copy_log(original.path());
    for (dir, low, high) in [(original.path(), 300, 800), (fork.path(), 900, 1500)] {
        let wal = open(dir, options(SMALL_SEGMENT, RecoveryMode::TolerateTail));
        while segment_files(dir).len() < 6 {
            let len = rng.range(low, high) as usize;
            wal.append(&rng.bytes(len)).unwrap();
            wal.sync(None).unwrap();
        }
        wal.close().unwrap();
    }
    let original_names: Vec<String> = segment_files(original.path())
        .iter()
        .map(|p| file_name(p))
        .collect();
    let forked = segment_files(fork.path())
        .into_iter()
        .skip(3)
        .find(|path| !original_names.contains(&file_name(path)))
        .expect("a fork segment with a name of its own");
    fs::copy(&forked, original.path().join(file_name(&forked))).unwrap();
    for mode in [RecoveryMode::TolerateTail, RecoveryMode::Absolute] {
        let error = open_err(original.path(), options(SMALL_SEGMENT, mode));
        assert_corrupt_naming(&error, &[file_name(&forked)], &format!("overlap, {mode:?}"));
    }
}

#[test]
fn a_damaged_segment_header_is_refused_at_offset_zero() {
    let (dir, expected) = five_segments(0x5eed_050c);
    for segment in [0, 2, SEGMENTS - 1] {
        let path = segment_path(dir.path(), &expected, segment);
        for bit in 0..56 * 8 {
            // Refusing changes nothing, so the flip is undone in place.
            flip_bit(&path, bit / 8, (bit % 8) as u8);
            let mode = if bit % 5 == 0 {
                RecoveryMode::Absolute
            } else {
                RecoveryMode::TolerateTail
            };
            let error = open_err(dir.path(), options(SMALL_SEGMENT, mode));
            assert_eq!(
                corrupt_location(&error),
                (path.clone(), 0),
                "segment {segment}, bit {bit}: {error}"
            );
            flip_bit(&path, bit / 8, (bit % 8) as u8);
        }
    }
    let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_log(&wal, &expected.payloads);
}

/// A segment file cut inside its header block (which the writer never
/// leaves: a segment is renamed into place only once its whole block is
/// written and synced) has lost every record it held: refused in every mode
/// like any damaged header, never read as an empty segment, and dropped
/// with the segments after it by point-in-time recovery.
#[test]
fn a_segment_cut_inside_its_header_block_is_refused() {
    let (dir, expected) = five_segments(0x5eed_0511);
    for segment in [0, 2, SEGMENTS - 1] {
        for length in [56, 57, 1000, 4095] {
            let variant = copy_log(dir.path());
            let path = segment_path(variant.path(), &expected, segment);
            truncate_file(&path, length);
            for mode in [
                RecoveryMode::TolerateTail,
                RecoveryMode::Absolute,
                RecoveryMode::SkipCorrupted,
            ] {
                let error = open_err(variant.path(), options(SMALL_SEGMENT, mode));
                assert_eq!(
                    corrupt_location(&error),
                    (path.clone(), 0),
                    "segment {segment} cut to {length} bytes, {mode:?}: {error}"
                );
            }
        }
    }
    truncate_file(&segment_path(dir.path(), &expected, 2), 1000);
    let keep = expected.layout.segments[2].first_lsn - 1;
    check_point_in_time(
        dir.path(),
        &expected,
        keep,
        1,
        "third segment cut inside its header block",
    );
}

#[test]
fn point_in_time_keeps_the_segments_before_one_with_a_damaged_header() {
    let (dir, expected) = five_segments(0x5eed_050d);
    flip_bit(&segment_path(dir.path(), &expected, 2), 33, 1);
    let keep = expected.layout.segments[2].first_lsn - 1;
    check_point_in_time(
        dir.path(),
        &expected,
        keep,
        1,
        "damaged header of the third segment",
    );
}

#[test]
fn stray_files_are_left_alone_and_a_leftover_prepared_segment_is_removed() {
    let (dir, mut expected) = five_segments(0x5eed_050e);
    let strays = [
        ("00000000000000000001.wal.bak", b"backup".to_vec()),
        ("1.wal", b"short name".to_vec()),
        ("notes.txt", b"operator notes".to_vec()),
    ];
    for (name, content) in &strays {
        write_file(&dir.path().join(name), content);
    }
    fs::create_dir(dir.path().join("archive")).unwrap();
    let mut leftover = vec![0u8; SMALL_SEGMENT as usize];
    leftover[..4096].fill(0xEE);
    write_file(&dir.path().join("next-segment.tmp"), &leftover);

    let mut rng = Rng::from_env(0x5eed_050f);
    {
        let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
        let report = wal.recovery().clone();
        let mut stray = report.stray_files.clone();
        stray.sort();
        let mut wanted: Vec<String> = strays.iter().map(|(name, _)| name.to_string()).collect();
        wanted.push("archive".into());
        wanted.sort();
        assert_eq!(stray, wanted, "{report:?}");
        assert_eq!(report.removed_files, vec!["next-segment.tmp".to_string()]);
        assert_eq!(report.records, expected.payloads.len() as u64);
        // Rotate through a few segments: the leftover must not be reused.
        while expected.layout.segments.len() < SEGMENTS + 3 {
            let len = rng.range(300, 1500) as usize;
            expected.append(&wal, rng.bytes(len));
        }
        wal.close().unwrap();
    }
    assert!(
        !dir.path().join("next-segment.tmp").exists(),
        "a closed log leaves no prepared segment"
    );
    let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert!(wal.recovery().removed_files.is_empty());
    assert_log(&wal, &expected.payloads);
    for (name, content) in &strays {
        assert_eq!(
            &read_file(&dir.path().join(name)),
            content,
            "{name} was touched"
        );
    }
    assert!(dir.path().join("archive").is_dir());
}

/// Shortens a file to `length` bytes.
fn truncate_file(path: &Path, length: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(length)
        .unwrap();
}

/// The first record of `segment` that a truncation to `length` bytes damages.
fn first_record_cut(expected: &Expected, segment: usize, length: u64) -> Option<PlacedRecord> {
    expected
        .layout
        .records_in(segment)
        .into_iter()
        .find(|record| record.padded_end() > length)
}

/// A segment of a fork of the log (a copy of the directory that went on
/// with other records) placed after the log's last segment, starting at an
/// LSN that last segment holds. The last segment is then a middle segment
/// that ends without a seal, which skip-corrupted mode skips past to the
/// next segment; but that segment overlaps it, and reading on would return
/// its LSNs twice (the second time with the fork's bytes), so every mode
/// refuses it.
#[test]
fn a_fork_segment_overlapping_the_last_segment_is_refused_in_every_mode() {
    let mut rng = Rng::from_env(0x5eed_0510);
    let original = tempfile::tempdir().unwrap();
    let fill = |dir: &Path, segments: usize, lengths: (u64, u64), rng: &mut Rng| {
        let wal = open(dir, options(SMALL_SEGMENT, RecoveryMode::TolerateTail));
        while segment_files(dir).len() < segments {
            let len = rng.range(lengths.0, lengths.1) as usize;
            wal.append(&rng.bytes(len)).unwrap();
            wal.sync(None).unwrap();
        }
        wal.close().unwrap();
    };
    fill(original.path(), 2, (300, 900), &mut rng);
    let fork = copy_log(original.path());
    let wal = open(
        original.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    for _ in 0..40 {
        wal.append(&rng.bytes(100)).unwrap();
    }
    wal.sync(None).unwrap();
    let last_lsn = wal.last_lsn();
    wal.close().unwrap();
    assert_eq!(segment_files(original.path()).len(), 2);
    fill(fork.path(), 3, (6000, 9000), &mut rng);
    let forked = segment_files(fork.path()).pop().unwrap();
    let forked_first = parse_segment_name(&file_name(&forked)).unwrap();
    let last_first = parse_segment_name(&file_name(&segment_files(original.path())[1])).unwrap();
    assert!(
        (last_first + 1..=last_lsn).contains(&forked_first),
        "the fork's segment starts at LSN {forked_first}, inside the last segment's {last_first}..={last_lsn}"
    );
    fs::copy(&forked, original.path().join(file_name(&forked))).unwrap();
    for mode in [
        RecoveryMode::TolerateTail,
        RecoveryMode::Absolute,
        RecoveryMode::PointInTime,
        RecoveryMode::SkipCorrupted,
    ] {
        if mode == RecoveryMode::PointInTime {
            // Point-in-time ends the log before the damage: at the end of
            // the last segment, deleting the fork's.
            let variant = copy_log(original.path());
            let wal = open(variant.path(), options(SMALL_SEGMENT, mode));
            assert_eq!(wal.last_lsn(), last_lsn);
            assert_eq!(read_all(&wal).len() as u64, last_lsn);
            assert_eq!(wal.recovery().removed_files, vec![file_name(&forked)]);
            continue;
        }
        let error = open_err(original.path(), options(SMALL_SEGMENT, mode));
        corrupt_location(&error);
    }
}
