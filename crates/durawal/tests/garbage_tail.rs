//! Pins what recovery does with bytes after the last valid record of the log
//! that are not the next record: random garbage at or some distance after the
//! end, stale but otherwise valid-looking records whose LSN does not follow
//! (a duplicate, a gap, an old LSN, another segment's salt, a bogus seal), a
//! valid record behind garbage, and headers with valid header checksums that
//! lie about their length or structure. None of them may be accepted as a
//! record: tolerate-tail cuts them and reports the cut, absolute refuses with
//! `Corrupt` at the end of the valid records. A correctly encoded next record
//! placed the same way IS accepted, which proves the crafted records are
//! otherwise well formed.

mod common;

use common::*;
use durawal::RecoveryMode;

struct Base {
    dir: tempfile::TempDir,
    expected: Expected,
    name: String,
    original: Vec<u8>,
    /// End of the valid records in the last segment.
    end: u64,
    salt: u32,
    previous_salt: u32,
}

fn base() -> Base {
    let mut rng = Rng::from_env(0x5eed_0401);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(SMALL_SEGMENT);
    let wal = open(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    while expected.layout.segments.len() < 2 || expected.layout.records_in(1).len() < 15 {
        let len = rng.range(0, 500) as usize;
        expected.append(&wal, rng.bytes(len));
    }
    wal.close().unwrap();
    let last = expected.layout.segments.len() - 1;
    let name = expected.layout.file_name(last);
    let original = read_file(&dir.path().join(&name));
    let previous = read_file(&dir.path().join(expected.layout.file_name(last - 1)));
    Base {
        end: expected.layout.segments[last].end,
        salt: segment_salt(&original),
        previous_salt: segment_salt(&previous),
        dir,
        expected,
        name,
        original,
    }
}

/// A record header whose own checksum is valid but whose length, kind or
/// reserved bytes are whatever the test wants.
fn crafted_header(salt: u32, kind: u8, lsn: u64, length: u32, reserved: u8) -> Vec<u8> {
    let mut bytes = vec![0u8; RECORD_HEADER_SIZE as usize];
    bytes[0..4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    bytes[4..8].copy_from_slice(&length.to_le_bytes());
    bytes[8..16].copy_from_slice(&lsn.to_le_bytes());
    bytes[16] = kind;
    bytes[17] = reserved;
    let header_crc = masked_crc(salt, &bytes[4..20]);
    bytes[20..24].copy_from_slice(&header_crc.to_le_bytes());
    bytes
}

/// Bytes to write at offsets counted from the end of the valid records.
type Patches = Vec<(u64, Vec<u8>)>;

/// Writes `patches` after the log's end into a copy and checks recovery:
/// the bytes must be cut (tolerate) or refused (absolute), never read.
fn check_not_accepted(base: &Base, label: &str, patches: &[(u64, Vec<u8>)]) {
    let variant = copy_log(base.dir.path());
    let mut damaged = base.original.clone();
    for (offset, bytes) in patches {
        let at = (base.end + offset) as usize;
        damaged[at..at + bytes.len()].copy_from_slice(bytes);
    }
    write_file(&variant.path().join(&base.name), &damaged);
    let oracle = Oracle {
        keep: base.expected.payloads.len() as u64,
        damage_at: base.end,
        truncated: end_of_nonzero(&damaged, base.end) - base.end,
    };
    assert!(oracle.truncated > 0, "{label}: nothing was written");
    check_recovery(
        variant.path(),
        &base.name,
        &base.expected.payloads,
        &oracle,
        label,
    );
}

#[test]
fn random_garbage_after_the_last_record_is_cut_or_refused() {
    let base = base();
    let mut rng = Rng::from_env(0x5eed_0402);
    let room = SMALL_SEGMENT - base.end;
    let cases: [(u64, u64); 13] = [
        (0, 1),
        (0, 7),
        (0, 24),
        (0, 100),
        (0, 3000),
        (3, 1),
        (8, 50),
        (13, 1),
        (100, 500),
        (4096, 200),
        (room / 2, 1000.min(room / 2)),
        (room - 1, 1),
        (0, room),
    ];
    for (gap, length) in cases {
        let mut garbage = rng.bytes(length as usize);
        garbage[0] |= 1;
        *garbage.last_mut().unwrap() |= 0x80;
        check_not_accepted(
            &base,
            &format!("{length} garbage bytes {gap} bytes after the end"),
            &[(gap, garbage)],
        );
    }
}

#[test]
fn stale_records_whose_lsn_does_not_follow_are_not_records() {
    let base = base();
    let (salt, n) = (base.salt, base.expected.payloads.len() as u64);
    let last_payload = base.expected.payloads.last().unwrap().clone();
    let record =
        |salt: u32, kind: u8, lsn: u64, payload: &[u8]| encode_record(salt, kind, lsn, payload);
    let bogus_seal = {
        let mut payload = n.to_le_bytes().to_vec();
        payload.extend_from_slice(&n.to_le_bytes());
        payload.extend_from_slice(&0xdead_beefu32.to_le_bytes());
        payload
    };
    let next = record(
        salt,
        KIND_DATA,
        n + 1,
        b"the next record, written where it belongs",
    );
    let cases: Vec<(&str, Patches)> = vec![
        (
            "a copy of the last record",
            vec![(0, record(salt, KIND_DATA, n, &last_payload))],
        ),
        (
            "a record one LSN too far",
            vec![(0, record(salt, KIND_DATA, n + 2, b"gap"))],
        ),
        (
            "a record with LSN 1",
            vec![(0, record(salt, KIND_DATA, 1, b"old"))],
        ),
        ("a batch starting one LSN too far", {
            let mut payload = 1u32.to_le_bytes().to_vec();
            payload.extend_from_slice(&3u32.to_le_bytes());
            payload.extend_from_slice(b"abc");
            vec![(0, record(salt, 2, n + 2, &payload))]
        }),
        (
            "the next LSN under another segment's salt",
            vec![(0, record(base.previous_salt, KIND_DATA, n + 1, b"foreign"))],
        ),
        (
            "a seal that does not match the records",
            vec![(0, record(salt, 3, n, &bogus_seal))],
        ),
        (
            "the next record behind 40 garbage bytes",
            vec![(0, vec![0x5a; 40]), (40, next.clone())],
        ),
        (
            "the next record 8 bytes after the end",
            vec![(8, next.clone())],
        ),
        (
            "the next record 4 KiB after the end",
            vec![(4096, next.clone())],
        ),
    ];
    for (label, patches) in cases {
        check_not_accepted(&base, label, &patches);
    }
}

#[test]
fn the_next_record_written_where_it_belongs_is_accepted() {
    let base = base();
    let n = base.expected.payloads.len() as u64;
    let payload = b"the next record, written where it belongs".to_vec();
    let variant = copy_log(base.dir.path());
    let mut bytes = base.original.clone();
    let record = encode_record(base.salt, KIND_DATA, n + 1, &payload);
    bytes[base.end as usize..base.end as usize + record.len()].copy_from_slice(&record);
    write_file(&variant.path().join(&base.name), &bytes);
    let mut payloads = base.expected.payloads.clone();
    payloads.push(payload);
    for mode in [RecoveryMode::Absolute, RecoveryMode::TolerateTail] {
        let wal = open(variant.path(), options(SMALL_SEGMENT, mode));
        assert_eq!(wal.recovery().truncated_bytes, 0);
        assert_log(&wal, &payloads);
    }
}

#[test]
fn headers_that_lie_about_length_or_structure_are_not_records() {
    let base = base();
    let (salt, n) = (base.salt, base.expected.payloads.len() as u64);
    let bytes_left = SMALL_SEGMENT - base.end;
    let with_tail = |header: Vec<u8>| {
        let mut bytes = header;
        bytes.extend_from_slice(&[0x77; 64]);
        vec![(0, bytes)]
    };
    let malformed_batch = |count: u32, entry_length: u32, body: &[u8]| {
        let mut payload = count.to_le_bytes().to_vec();
        payload.extend_from_slice(&entry_length.to_le_bytes());
        payload.extend_from_slice(body);
        vec![(0, encode_record(salt, 2, n + 1, &payload))]
    };
    let cases: Vec<(String, Patches)> = vec![
        (
            "length u32::MAX".into(),
            with_tail(crafted_header(salt, KIND_DATA, n + 1, u32::MAX, 0)),
        ),
        (
            "length one byte past the segment".into(),
            with_tail(crafted_header(
                salt,
                KIND_DATA,
                n + 1,
                (bytes_left - RECORD_HEADER_SIZE + 1) as u32,
                0,
            )),
        ),
        (
            "length filling the segment, wrong checksum".into(),
            with_tail(crafted_header(
                salt,
                KIND_DATA,
                n + 1,
                (bytes_left - RECORD_HEADER_SIZE) as u32,
                0,
            )),
        ),
        (
            "unknown kind".into(),
            with_tail(crafted_header(salt, 9, n + 1, 4, 0)),
        ),
        (
            "non-zero reserved byte".into(),
            with_tail(crafted_header(salt, KIND_DATA, n + 1, 4, 1)),
        ),
        (
            "batch entry longer than the batch".into(),
            malformed_batch(1, 1000, b"short"),
        ),
        (
            "batch with more entries than it holds".into(),
            malformed_batch(3, 2, b"ab"),
        ),
        (
            "batch with zero entries".into(),
            vec![(0, encode_record(salt, 2, n + 1, &0u32.to_le_bytes()))],
        ),
        (
            "batch too short for its count".into(),
            vec![(0, encode_record(salt, 2, n + 1, &[1, 0]))],
        ),
    ];
    for (label, patches) in cases {
        check_not_accepted(&base, &label, &patches);
    }
}
