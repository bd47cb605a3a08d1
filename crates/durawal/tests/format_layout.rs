//! Pins the on-disk layout: records land exactly where the documented format
//! says (header block, 8-byte packing, room kept for the seal), every record's
//! bytes equal what an independent encoder produces from the format
//! description, segment files are named after their first LSN, and each
//! segment header points at the previous segment's seal. The synced-before
//! flag is on the first record after each sync that continues a segment,
//! never on the first record of a new segment. A silent format
//! change, a misplaced record or a wrong checksum seed fails here; the
//! corruption tests rely on this model to know which bytes they damage.

mod common;

use common::*;
use durawal::{Options, RecoveryMode, Wal};

#[test]
fn records_seals_and_segment_headers_are_where_the_format_says() {
    let mut rng = Rng::from_env(0x5eed_0001);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(SMALL_SEGMENT);
    // The LSNs that sync() calls made durable: the record after each starts a flush.
    let mut synced_through = vec![0];
    {
        let wal = open(
            dir.path(),
            options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
        );
        for round in 0..600 {
            if round % 9 == 0 {
                let records = rng.batch(4, 200);
                expected.append_batch(&wal, records);
            } else {
                let len = rng.range(0, 700) as usize;
                expected.append(&wal, rng.bytes(len));
            }
            if round % 50 == 0 {
                synced_through.push(wal.sync(None).unwrap());
            }
        }
        // The edges of the rotation rule: a record that leaves exactly room
        // for the seal stays; one 8 bytes larger goes to a new segment.
        let room =
            |expected: &Expected| SMALL_SEGMENT - expected.layout.segments.last().unwrap().end;
        if room(&expected) < 200 {
            expected.append(&wal, rng.bytes(300));
        }
        let segments = expected.layout.segments.len();
        expected.append(&wal, rng.bytes((room(&expected) - 100) as usize));
        let len = room(&expected) - SEAL_SIZE - RECORD_HEADER_SIZE;
        expected.append(&wal, rng.bytes(len as usize));
        assert_eq!(
            room(&expected),
            SEAL_SIZE,
            "an exact fit stays in its segment"
        );
        expected.append(&wal, rng.bytes(10));
        let len = room(&expected) - SEAL_SIZE - RECORD_HEADER_SIZE + 8;
        expected.append(&wal, rng.bytes(len as usize));
        assert_eq!(expected.layout.segments.len(), segments + 2);
        wal.close().unwrap();
    }
    let layout = &expected.layout;
    assert!(layout.segments.len() >= 4, "workload must span segments");

    let names: Vec<String> = segment_files(dir.path())
        .iter()
        .map(|p| file_name(p))
        .collect();
    let model_names: Vec<String> = (0..layout.segments.len())
        .map(|s| layout.file_name(s))
        .collect();
    assert_eq!(names, model_names, "segment file names");

    let mut previous: Option<(Vec<u8>, u64)> = None;
    for (index, segment) in layout.segments.iter().enumerate() {
        let bytes = read_file(&dir.path().join(layout.file_name(index)));
        assert_eq!(
            bytes.len() as u64,
            SMALL_SEGMENT,
            "segments are preallocated"
        );
        assert_eq!(&bytes[0..8], b"DURAWAL\0", "magic");
        assert_eq!(
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
            durawal::format::FORMAT_VERSION,
            "format version"
        );
        assert_eq!(
            u64::from_le_bytes(bytes[32..40].try_into().unwrap()),
            segment.first_lsn
        );
        assert_eq!(
            u32::from_le_bytes(bytes[52..56].try_into().unwrap()),
            masked_crc(0, &bytes[0..52]),
            "segment header CRC"
        );
        assert!(
            bytes[56..4096].iter().all(|&b| b == 0),
            "rest of the header block is zero"
        );
        let prev_seal_offset = u64::from_le_bytes(bytes[40..48].try_into().unwrap());
        match &previous {
            None => assert_eq!(prev_seal_offset, 0, "the first segment points at no seal"),
            Some((previous_bytes, seal_offset)) => {
                assert_eq!(prev_seal_offset, *seal_offset, "prev_seal_offset");
                let seal = &previous_bytes[*seal_offset as usize..];
                let seal_digest = &seal[24 + 16..24 + 20];
                assert_eq!(
                    &bytes[48..52],
                    seal_digest,
                    "prev_digest repeats the seal's digest"
                );
            }
        }

        let salt = segment_salt(&bytes);
        let mut digest = 0u32;
        let mut count = 0u64;
        for record in layout.records_in(index) {
            let start = record.offset as usize;
            let first = (record.first_lsn - 1) as usize;
            let payloads = &expected.payloads[first..first + record.lsn_count as usize];
            let (kind, payload) =
                if record.lsn_count == 1 && record.payload_len == payloads[0].len() as u64 {
                    (KIND_DATA, payloads[0].clone())
                } else {
                    let mut payload = (payloads.len() as u32).to_le_bytes().to_vec();
                    for p in payloads {
                        payload.extend_from_slice(&(p.len() as u32).to_le_bytes());
                        payload.extend_from_slice(p);
                    }
                    (2, payload)
                };
            let flagged = synced_before(&bytes, record.offset);
            let continues_segment = record.offset > 4096;
            assert!(
                flagged || !continues_segment || !synced_through.contains(&(record.first_lsn - 1)),
                "LSN {} follows a sync in the same segment but lacks the synced-before flag",
                record.first_lsn
            );
            assert!(
                !flagged || continues_segment || index == 0,
                "LSN {} starts a new segment, whose header no sync covered yet, but is flagged",
                record.first_lsn
            );
            let encoded = encode_flagged_record(salt, kind, record.first_lsn, flagged, &payload);
            assert_eq!(
                &bytes[start..start + encoded.len()],
                &encoded[..],
                "record at LSN {} in {}",
                record.first_lsn,
                layout.file_name(index)
            );
            digest = crc32c::crc32c_append(digest, &encoded[0..4]);
            count += record.lsn_count;
        }
        match segment.seal_offset {
            Some(seal_offset) => {
                let mut seal_payload = count.to_le_bytes().to_vec();
                seal_payload.extend_from_slice(&(segment.first_lsn + count - 1).to_le_bytes());
                seal_payload.extend_from_slice(&digest.to_le_bytes());
                let at = seal_offset as usize;
                let seal = encode_flagged_record(
                    salt,
                    3,
                    segment.first_lsn + count - 1,
                    synced_before(&bytes, seal_offset),
                    &seal_payload,
                );
                assert_eq!(
                    &bytes[at..at + seal.len()],
                    &seal[..],
                    "seal of {}",
                    layout.file_name(index)
                );
                assert!(
                    bytes[at + seal.len()..].iter().all(|&b| b == 0),
                    "nothing after the seal"
                );
                previous = Some((bytes, seal_offset));
            }
            None => {
                assert_eq!(
                    index,
                    layout.segments.len() - 1,
                    "only the last segment is open"
                );
                assert!(
                    bytes[segment.end as usize..].iter().all(|&b| b == 0),
                    "zeros after the last record"
                );
            }
        }
    }

    let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_log(&wal, &expected.payloads);
}

#[test]
fn segments_grow_from_the_first_size_doubling_up_to_the_segment_size_and_fit_big_records() {
    let dir = tempfile::tempdir().unwrap();
    let (first, largest) = (64 << 10, 512 << 10);
    let wal = Wal::open(
        dir.path(),
        Options {
            segment_size: largest,
            first_segment_size: Some(first),
            ..Options::default()
        },
    )
    .unwrap();
    let mut model = LayoutModel::growing_from(first, largest);
    let mut rng = Rng::new(11);
    for index in 0..1500 {
        // Record 3 is bigger than twice the first segment: its segment fits it.
        let length = if index == 3 {
            200 << 10
        } else {
            rng.range(0, 3000)
        };
        wal.append(&vec![7; length as usize]).unwrap();
        model.push(length, 1);
    }
    wal.sync(None).unwrap();
    wal.close().unwrap();
    let files = segment_files(dir.path());
    assert_eq!(files.len(), model.segments.len());
    assert!(model.segments.len() >= 6, "{}", model.segments.len());
    for (index, (path, segment)) in files.iter().zip(&model.segments).enumerate() {
        assert_eq!(file_name(path), model.file_name(index));
        assert_eq!(
            std::fs::metadata(path).unwrap().len(),
            segment.size,
            "segment {index}"
        );
    }
    let sizes: Vec<u64> = model.segments.iter().map(|segment| segment.size).collect();
    assert_eq!(sizes[0], first);
    assert!(sizes[1] >= 200 << 10, "the big record's segment: {sizes:?}");
    assert_eq!(*sizes.last().unwrap(), largest);
}

#[test]
fn a_new_log_with_default_options_takes_one_mib_and_prepares_two() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    wal.append(b"one").unwrap();
    wal.sync(None).unwrap();
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).map(|m| m.len());
    assert_eq!(size("00000000000000000001.wal").unwrap(), 1 << 20);
    wal.close().unwrap();
    assert!(
        size("next-segment.tmp").is_err(),
        "close removes the prepared file"
    );
    let reopened = Wal::open(dir.path(), Options::default()).unwrap();
    // The reopen prepares the next segment in the background: twice the last.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while size("next-segment.tmp").map_or(true, |bytes| bytes < 2 << 20) {
        assert!(
            std::time::Instant::now() < deadline,
            "no next segment was prepared"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(size("next-segment.tmp").unwrap(), 2 << 20);
    reopened.close().unwrap();
}
