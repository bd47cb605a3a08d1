//! Pins what recovery does with a torn tail, the one kind of damage a crash
//! can cause: the written part of the last segment is cut short at EVERY byte
//! offset inside its last three records (zeros from there on, since segments
//! are preallocated with zeros), and the seal of a segment whose successor was
//! never created is torn at every byte. Recovery in tolerate-tail mode must
//! return exactly the records that are still fully intact, byte for byte,
//! report how many bytes it cut and where; absolute mode must refuse a damaged
//! tail with `Corrupt` naming the file and offset but accept a clean zero end;
//! and after the cut the log must continue with the next LSN and reopen clean.

mod common;

use common::*;
use durawal::{RecoveryMode, Wal};

struct Pristine {
    dir: tempfile::TempDir,
    expected: Expected,
}

/// Writes a log over at least three segments whose last records are a batch,
/// an empty record and a small data record. With `alone`, those three are the
/// only records of the last segment, so cutting them empties it.
fn build(seed: u64, alone: bool) -> Pristine {
    let mut rng = Rng::from_env(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(SMALL_SEGMENT);
    let batch: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let len = rng.range(1, 40) as usize;
            rng.nonzero_bytes(len)
        })
        .collect();
    let batch_len = batch_payload_len(&batch.iter().map(Vec::len).collect::<Vec<_>>());
    let last_len = rng.range(1, 120) as usize;
    let wal = open(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    loop {
        let layout = &expected.layout;
        let done = if alone {
            layout.segments.len() >= 2 && !layout.fits(batch_len)
        } else {
            layout.segments.len() >= 3
                && layout.records_in(layout.segments.len() - 1).len() >= 20
                && layout.fits(batch_len + 400)
        };
        if done {
            break;
        }
        let len = rng.range(1, 300) as usize;
        expected.append(&wal, rng.nonzero_bytes(len));
        if rng.range(0, 9) == 0 {
            wal.sync(None).unwrap();
        }
    }
    expected.append_batch(&wal, batch);
    expected.append(&wal, Vec::new());
    expected.append(&wal, rng.nonzero_bytes(last_len));
    wal.sync(None).unwrap();
    wal.close().unwrap();

    let layout = &expected.layout;
    let last = layout.segments.len() - 1;
    let tail = layout.records_in(last);
    assert!(tail.len() >= 3 && tail[tail.len() - 3].lsn_count == 3);
    assert_eq!(tail.len() == 3, alone);
    assert_eq!(segment_files(dir.path()).len(), layout.segments.len());
    Pristine { dir, expected }
}

fn cut_every_offset_of_the_last_three_records(alone: bool, seed: u64) {
    let pristine = build(seed, alone);
    let layout = &pristine.expected.layout;
    let last = layout.segments.len() - 1;
    let name = layout.file_name(last);
    let original = read_file(&pristine.dir.path().join(&name));
    let tail = layout.records_in(last);
    let first_cut = tail[tail.len() - 3].offset;
    let written_end = layout.segments[last].end;
    let last_end = tail[tail.len() - 1].end();
    let mut cuts = 0;
    for cut in first_cut..=last_end {
        let variant = copy_log(pristine.dir.path());
        let mut damaged = original.clone();
        damaged[cut as usize..written_end as usize].fill(0);
        write_file(&variant.path().join(&name), &damaged);
        let oracle = oracle(&pristine.expected, last, &original, &damaged);
        if cut < last_end {
            assert!(
                oracle.keep < pristine.expected.payloads.len() as u64,
                "cut {cut} changed nothing"
            );
        }
        cuts += (oracle.truncated > 0) as u32;
        check_recovery(
            variant.path(),
            &name,
            &pristine.expected.payloads,
            &oracle,
            &format!("cut at {cut}"),
        );
    }
    assert!(
        cuts > 100,
        "only {cuts} variants left a damaged (not clean) tail"
    );
}

#[test]
fn tail_cut_at_every_byte_of_the_last_records() {
    cut_every_offset_of_the_last_three_records(false, 0x5eed_0201);
}

#[test]
fn tail_cut_at_every_byte_when_the_last_segment_holds_only_those_records() {
    cut_every_offset_of_the_last_three_records(true, 0x5eed_0202);
}

/// A crash after a segment's seal was synced but before its successor was
/// renamed into place leaves a sealed last segment; a crash while the seal
/// itself was being written leaves a torn seal. Both must recover every record
/// before the seal and continue.
#[test]
fn torn_seal_of_the_last_segment_at_every_byte() {
    let pristine = build(0x5eed_0203, true);
    let expected = &pristine.expected;
    let layout = &expected.layout;
    let last = layout.segments.len() - 1;
    let sealed = last - 1;
    let name = layout.file_name(sealed);
    let seal_offset = layout.segments[sealed].seal_offset.unwrap();
    let keep = layout.segments[last].first_lsn - 1;
    let original = read_file(&pristine.dir.path().join(&name));
    for cut in seal_offset..=seal_offset + SEAL_SIZE {
        let variant = copy_log(pristine.dir.path());
        std::fs::remove_file(variant.path().join(layout.file_name(last))).unwrap();
        let mut damaged = original.clone();
        damaged[cut as usize..(seal_offset + SEAL_SIZE) as usize].fill(0);
        write_file(&variant.path().join(&name), &damaged);
        // The seal is 24 header bytes and 20 payload bytes, then padding.
        let seal_range = seal_offset as usize..seal_offset as usize + 44;
        let intact = damaged[seal_range.clone()] == original[seal_range];
        let oracle = Oracle {
            keep,
            damage_at: seal_offset,
            truncated: if intact {
                0
            } else {
                end_of_nonzero(&damaged, seal_offset) - seal_offset
            },
        };
        check_recovery(
            variant.path(),
            &name,
            &expected.payloads,
            &oracle,
            &format!("seal cut at {cut}"),
        );
        if intact {
            // Appending went on in a new segment that starts right after the seal.
            let names: Vec<String> = segment_files(variant.path())
                .iter()
                .map(|p| file_name(p))
                .collect();
            assert!(
                names.contains(&segment_file_name(keep + 1)),
                "seal cut at {cut}: {names:?}"
            );
        }
    }
}

/// A cut can leave the last segment without records (all of them were torn).
/// Reopened with a larger segment size, the first record that does not fit
/// that segment rotates out of it; the acknowledged record must be there on
/// the next open, and the log must open at all.
#[test]
fn an_emptied_last_segment_can_rotate_into_a_larger_segment_size() {
    let pristine = build(0x5eed_0205, true);
    let layout = &pristine.expected.layout;
    let last = layout.segments.len() - 1;
    let path = pristine.dir.path().join(layout.file_name(last));
    let mut bytes = read_file(&path);
    bytes[SEGMENT_HEADER_SIZE as usize..].fill(0);
    write_file(&path, &bytes);
    let keep = layout.segments[last].first_lsn - 1;
    let mut payloads = pristine.expected.payloads[..keep as usize].to_vec();

    let larger = options(1 << 20, RecoveryMode::TolerateTail);
    {
        let wal = open(pristine.dir.path(), larger.clone());
        assert_log(&wal, &payloads);
        let big = vec![0x3C; 100_000];
        assert_eq!(wal.append(&big).unwrap(), keep + 1);
        payloads.push(big);
        assert_eq!(wal.sync(None).unwrap(), keep + 1, "acknowledged");
        wal.close().unwrap();
    }
    let wal = Wal::open(pristine.dir.path(), larger).unwrap_or_else(|error| {
        panic!("a log with an acknowledged record no longer opens: {error}")
    });
    assert_log(&wal, &payloads);
}

/// The control for the tests above: an undamaged log reopens with nothing cut
/// in both modes, so a cut reported there comes from the damage.
#[test]
fn undamaged_log_reopens_without_a_cut() {
    let pristine = build(0x5eed_0204, false);
    let wal = match Wal::open(
        pristine.dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::Absolute),
    ) {
        Ok(wal) => wal,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(wal.recovery().truncated_bytes, 0);
    assert_log(&wal, &pristine.expected.payloads);
}
