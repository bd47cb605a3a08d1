//! Helpers shared by the integration tests: a seeded random generator, an
//! independent model of the on-disk layout and an independent record encoder
//! (both written from the format description, not from the crate's code), and
//! small utilities to open logs, read them back and damage their files.
//!
//! Every test binary uses a different subset of these helpers, so unused ones
//! are expected per binary.
#![allow(dead_code)]

pub mod faults;
pub mod memory;

use std::fs;
use std::path::{Path, PathBuf};

use durawal::{Error, Options, RecoveryMode, ReplayCursor, Wal};

/// Size of the segment header block.
pub const SEGMENT_HEADER_SIZE: u64 = 4096;
/// Size of a record header.
pub const RECORD_HEADER_SIZE: u64 = 24;
/// Bytes a seal record takes (24-byte header + 20-byte payload, padded to 8).
pub const SEAL_SIZE: u64 = 48;
/// The smallest segment size, used to get many segments from little data.
pub const SMALL_SEGMENT: u64 = 64 * 1024;
/// Record kinds as stored in byte 16 of a record header.
pub const KIND_DATA: u8 = 1;

/// True in the release tier of the reliability harnesses
/// (`DURAWAL_RELIABILITY=full`, set by `npm run reliability:full`), which
/// checks many more cases than a push can wait for.
pub fn release_tier() -> bool {
    std::env::var("DURAWAL_RELIABILITY").as_deref() == Ok("full")
}

/// `DURAWAL_TEST_SEED` when set, else `default_seed`; printed so that a
/// failing run can be replayed (the test harness shows it with the failure).
pub fn seed_from_env(default_seed: u64) -> u64 {
    let seed = std::env::var("DURAWAL_TEST_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default_seed);
    eprintln!("seed {seed} (set DURAWAL_TEST_SEED={seed} to replay)");
    seed
}

/// SplitMix64: small, fast and good enough to pick sizes, bytes and offsets.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `DURAWAL_TEST_SEED` when set, else from
    /// `default_seed`. The seed is printed so a failing run can be replayed
    /// (the test harness shows it together with the failure).
    pub fn from_env(default_seed: u64) -> Self {
        Rng(seed_from_env(default_seed))
    }

    /// A generator with a fixed seed, for data that must be reproducible
    /// from the seed alone.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// Between 1 and `max_count` random payloads of at most `max_len` bytes:
    /// the records of one random batch.
    pub fn batch(&mut self, max_count: u64, max_len: u64) -> Vec<Vec<u8>> {
        (0..self.range(1, max_count))
            .map(|_| {
                let len = self.range(0, max_len) as usize;
                self.bytes(len)
            })
            .collect()
    }

    /// `length` random bytes, none of them zero, so that zeroing any byte of
    /// a payload always changes it.
    pub fn nonzero_bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length)
            .map(|_| (self.next_u64() % 255) as u8 + 1)
            .collect()
    }

    /// `length` random bytes, zero allowed.
    pub fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next_u64() as u8).collect()
    }
}

/// Bytes a record with a payload of `payload_len` bytes occupies on disk.
pub fn record_size(payload_len: u64) -> u64 {
    (RECORD_HEADER_SIZE + payload_len).div_ceil(8) * 8
}

/// Payload length of a batch record holding records of these lengths:
/// a u32 count, then a u32 length before each record.
pub fn batch_payload_len(lengths: &[usize]) -> u64 {
    4 + lengths.iter().map(|&l| 4 + l as u64).sum::<u64>()
}

/// Where the model says a physical record lies.
#[derive(Clone, Debug)]
pub struct PlacedRecord {
    /// Index of its segment in [`LayoutModel::segments`].
    pub segment: usize,
    /// Offset of its header in the segment file.
    pub offset: u64,
    /// Payload length.
    pub payload_len: u64,
    /// LSN of the first logical record inside.
    pub first_lsn: u64,
    /// Logical records inside (1 for data, n for a batch).
    pub lsn_count: u64,
}

impl PlacedRecord {
    /// End of the header and payload, without padding.
    pub fn end(&self) -> u64 {
        self.offset + RECORD_HEADER_SIZE + self.payload_len
    }

    /// End including padding: where the next record starts.
    pub fn padded_end(&self) -> u64 {
        self.offset + record_size(self.payload_len)
    }
}

/// A segment as the model places it.
#[derive(Clone, Debug)]
pub struct ModelSegment {
    pub first_lsn: u64,
    /// Size of its file.
    pub size: u64,
    /// Offset of the seal when the segment was closed.
    pub seal_offset: Option<u64>,
    /// Where the next record would go (the end of the written part).
    pub end: u64,
}

/// Where every record must land, computed from payload lengths alone with
/// the documented rules: records are packed from offset 4096 on 8-byte
/// boundaries, and a record that would not leave room for the seal in the
/// current segment seals it and goes first into a new segment. Each new
/// segment is twice the one before, up to `segment_size`, and never smaller
/// than what its first record and the seal need.
#[derive(Clone, Debug)]
pub struct LayoutModel {
    pub segment_size: u64,
    pub segments: Vec<ModelSegment>,
    pub records: Vec<PlacedRecord>,
    pub next_lsn: u64,
}

impl LayoutModel {
    /// The layout of a log opened with [`options`]: every segment of `segment_size`.
    pub fn new(segment_size: u64) -> Self {
        Self::growing_from(segment_size, segment_size)
    }

    /// The layout of a log whose first segment is `first_size` bytes.
    pub fn growing_from(first_size: u64, segment_size: u64) -> Self {
        Self {
            segment_size,
            segments: vec![ModelSegment {
                first_lsn: 1,
                size: first_size,
                seal_offset: None,
                end: SEGMENT_HEADER_SIZE,
            }],
            records: Vec::new(),
            next_lsn: 1,
        }
    }

    /// Places one physical record and returns its index.
    pub fn push(&mut self, payload_len: u64, lsn_count: u64) -> usize {
        let size = record_size(payload_len);
        let current = self.segments.last_mut().expect("a segment");
        if current.end + size + SEAL_SIZE > current.size {
            current.seal_offset = Some(current.end);
            let needed = (SEGMENT_HEADER_SIZE + size + SEAL_SIZE).next_multiple_of(4096);
            let next_size = (current.size * 2)
                .max(needed)
                .clamp(SMALL_SEGMENT, self.segment_size);
            self.segments.push(ModelSegment {
                first_lsn: self.next_lsn,
                size: next_size,
                seal_offset: None,
                end: SEGMENT_HEADER_SIZE,
            });
        }
        let segment = self.segments.len() - 1;
        let current = self.segments.last_mut().expect("a segment");
        self.records.push(PlacedRecord {
            segment,
            offset: current.end,
            payload_len,
            first_lsn: self.next_lsn,
            lsn_count,
        });
        current.end += size;
        self.next_lsn += lsn_count;
        self.records.len() - 1
    }

    /// True when a record with this payload length still fits the current
    /// segment (with room for the seal); false when it would open a new one.
    pub fn fits(&self, payload_len: u64) -> bool {
        let current = self.segments.last().expect("a segment");
        current.end + record_size(payload_len) + SEAL_SIZE <= current.size
    }

    pub fn file_name(&self, segment: usize) -> String {
        segment_file_name(self.segments[segment].first_lsn)
    }

    /// Physical records of one segment.
    pub fn records_in(&self, segment: usize) -> Vec<PlacedRecord> {
        self.records
            .iter()
            .filter(|record| record.segment == segment)
            .cloned()
            .collect()
    }
}

pub fn segment_file_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}.wal")
}

/// What was appended, in order: the oracle every test compares against.
pub struct Expected {
    /// Payload of LSN `i + 1` at index `i`.
    pub payloads: Vec<Vec<u8>>,
    pub layout: LayoutModel,
}

impl Expected {
    pub fn new(segment_size: u64) -> Self {
        Self {
            payloads: Vec::new(),
            layout: LayoutModel::new(segment_size),
        }
    }

    /// Appends one record and checks the LSN the log hands out.
    pub fn append(&mut self, wal: &Wal, payload: Vec<u8>) -> u64 {
        let lsn = wal.append(&payload).expect("append");
        self.placed(lsn, payload)
    }

    /// Appends a checkpoint record and checks the LSN the log hands out.
    pub fn checkpoint(&mut self, wal: &Wal, payload: Vec<u8>) -> u64 {
        let lsn = wal.checkpoint(&payload).expect("checkpoint");
        self.placed(lsn, payload)
    }

    /// Places a record of one LSN that the log took as `lsn`.
    fn placed(&mut self, lsn: u64, payload: Vec<u8>) -> u64 {
        assert_eq!(lsn, self.layout.next_lsn, "LSNs must be dense");
        self.layout.push(payload.len() as u64, 1);
        self.payloads.push(payload);
        lsn
    }

    /// Appends a batch and checks the LSN range the log hands out.
    pub fn append_batch(&mut self, wal: &Wal, records: Vec<Vec<u8>>) -> (u64, u64) {
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let range = wal.append_batch(&slices).expect("append_batch");
        let first = self.layout.next_lsn;
        assert_eq!(range, (first, first + records.len() as u64 - 1));
        let lengths: Vec<usize> = records.iter().map(Vec::len).collect();
        self.layout
            .push(batch_payload_len(&lengths), records.len() as u64);
        self.payloads.extend(records);
        range
    }
}

/// Options with the given segment size and recovery mode, every segment of
/// that size from the first on (the layout most tests reason about),
/// everything else default.
pub fn options(segment_size: u64, recovery: RecoveryMode) -> Options {
    Options {
        segment_size,
        recovery,
        first_segment_size: Some(segment_size),
        ..Options::default()
    }
}

pub fn open(dir: &Path, options: Options) -> Wal {
    match Wal::open(dir, options) {
        Ok(wal) => wal,
        Err(error) => panic!("open {} failed: {error}", dir.display()),
    }
}

/// Opens a log that must be refused and returns the error.
pub fn open_err(dir: &Path, options: Options) -> Error {
    match Wal::open(dir, options) {
        Ok(wal) => {
            let report = wal.recovery().clone();
            let records = wal.last_lsn();
            panic!("open should have failed; it recovered {records} records, report {report:?}")
        }
        Err(error) => error,
    }
}

/// The file and offset of a corruption error; panics on any other error.
pub fn corrupt_location(error: &Error) -> (PathBuf, u64) {
    match error {
        Error::Corrupt { file, offset, .. } => (file.clone(), *offset),
        other => panic!("expected Error::Corrupt, got {other:?}"),
    }
}

/// Every durable record, read back through the public replay API with small
/// batches so that batch boundaries are exercised.
pub fn read_all(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
    drain(&mut wal.replay(1, u64::MAX).expect("replay"))
}

/// Every record `cursor` has left, copied out of its batches (small ones, so
/// that batch boundaries are exercised).
pub fn drain(cursor: &mut ReplayCursor) -> Vec<(u64, Vec<u8>)> {
    try_drain(cursor).expect("next_batch")
}

/// [`drain`], returning the first error instead of panicking on it.
pub fn try_drain(cursor: &mut ReplayCursor) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    let mut records = Vec::new();
    while let Some(batch) = cursor.next_batch(97, 64 * 1024)? {
        let mut start = 0usize;
        for (end, lsn) in batch.ends.iter().zip(&batch.lsns) {
            records.push((*lsn, batch.data[start..*end as usize].to_vec()));
            start = *end as usize;
        }
        assert_eq!(start, batch.data.len(), "ends must cover the batch data");
    }
    Ok(records)
}

/// The LSNs replay marks as checkpoints, from `from` on.
pub fn checkpoint_lsns(wal: &Wal, from: u64) -> Vec<u64> {
    let mut cursor = wal.replay(from, u64::MAX).expect("replay");
    let mut lsns = Vec::new();
    while let Some(batch) = cursor.next_batch(97, 64 * 1024).expect("next_batch") {
        lsns.extend(
            batch
                .checkpoints
                .iter()
                .map(|&index| batch.lsns[index as usize]),
        );
    }
    lsns
}

/// Replays everything it can and returns the records read before the first
/// error, and that error.
pub fn read_until_error(wal: &Wal) -> (Vec<(u64, Vec<u8>)>, Option<Error>) {
    let mut records = Vec::new();
    let mut cursor = match wal.replay(1, u64::MAX) {
        Ok(cursor) => cursor,
        Err(error) => return (records, Some(error)),
    };
    loop {
        match cursor.next_batch(1, usize::MAX) {
            Ok(Some(batch)) => records.push((batch.lsns[0], batch.data)),
            Ok(None) => return (records, None),
            Err(error) => return (records, Some(error)),
        }
    }
}

/// Asserts that the log holds exactly LSNs `1..=payloads.len()` with these bytes.
pub fn assert_log(wal: &Wal, payloads: &[Vec<u8>]) {
    let records = read_all(wal);
    assert_records(&records, payloads);
    assert_eq!(wal.last_lsn(), payloads.len() as u64, "last_lsn");
    assert_eq!(wal.durable_lsn(), payloads.len() as u64, "durable_lsn");
}

/// Compares replayed records with the oracle without dumping megabytes.
pub fn assert_records(records: &[(u64, Vec<u8>)], payloads: &[Vec<u8>]) {
    for (index, ((lsn, bytes), expected)) in records.iter().zip(payloads).enumerate() {
        assert_eq!(*lsn, index as u64 + 1, "LSN at position {index}");
        if bytes != expected {
            panic!(
                "LSN {lsn}: wrong bytes (got {} bytes, expected {})",
                bytes.len(),
                expected.len()
            );
        }
    }
    assert_eq!(records.len(), payloads.len(), "number of records");
}

/// Segment files in the directory, in name order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.len() == 24
                && name.ends_with(".wal")
                && name[..20].bytes().all(|b| b.is_ascii_digit())
        })
        .collect();
    files.sort();
    files
}

/// Copies every file of a log directory except the lock into a new temporary directory.
pub fn copy_log(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.file_name() != durawal::LOCK_FILE_NAME {
            fs::copy(entry.path(), to.path().join(entry.file_name())).expect("copy");
        }
    }
    to
}

pub fn read_file(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn write_file(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Flips one bit of a file in place.
pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = read_file(path);
    bytes[offset as usize] ^= 1 << bit;
    write_file(path, &bytes);
}

/// Offset just past the last non-zero byte at or after `from`, or `from`.
pub fn end_of_nonzero(bytes: &[u8], from: u64) -> u64 {
    bytes[from as usize..]
        .iter()
        .rposition(|&b| b != 0)
        .map_or(from, |last| from + last as u64 + 1)
}

pub fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// CRC32C as the format stores it: seeded with the segment salt, then masked.
pub fn masked_crc(salt: u32, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(salt, bytes)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// Encodes a record (header, payload, zero padding) from the format
/// description: crc | length | lsn | kind | reserved | header_crc.
pub fn encode_record(salt: u32, kind: u8, lsn: u64, payload: &[u8]) -> Vec<u8> {
    encode_flagged_record(salt, kind, lsn, false, payload)
}

/// [`encode_record`] with the synced-before flag (header byte 17, bit 0) as given.
pub fn encode_flagged_record(
    salt: u32,
    kind: u8,
    lsn: u64,
    synced_before: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut bytes = vec![0u8; record_size(payload.len() as u64) as usize];
    bytes[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes[8..16].copy_from_slice(&lsn.to_le_bytes());
    bytes[16] = kind;
    bytes[17] = u8::from(synced_before);
    let header_crc = masked_crc(salt, &bytes[4..20]);
    bytes[20..24].copy_from_slice(&header_crc.to_le_bytes());
    let mut covered = bytes[4..24].to_vec();
    covered.extend_from_slice(payload);
    bytes[0..4].copy_from_slice(&masked_crc(salt, &covered).to_le_bytes());
    bytes[24..24 + payload.len()].copy_from_slice(payload);
    bytes
}

/// True when the record at `offset` of a segment's bytes carries the
/// synced-before flag (FORMAT.md: header byte 17, bit 0, format 3).
pub fn synced_before(segment_bytes: &[u8], offset: u64) -> bool {
    segment_bytes[offset as usize + 17] & 1 != 0
}

/// Rewrites the unsealed segment at `path` as format 2 wrote segments:
/// version 2 in its header and no synced-before flag on `records` (their
/// CRCs recomputed), for tests of the rules that logs without the flag rely
/// on (the tear window).
pub fn rewrite_as_format_2(path: &Path, records: &[PlacedRecord]) {
    let mut bytes = read_file(path);
    segment_as_format_2(&mut bytes, records);
    write_file(path, &bytes);
}

/// [`rewrite_as_format_2`] on the bytes of a segment.
pub fn segment_as_format_2(bytes: &mut [u8], records: &[PlacedRecord]) {
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let header_crc = masked_crc(0, &bytes[0..52]);
    bytes[52..56].copy_from_slice(&header_crc.to_le_bytes());
    let salt = segment_salt(bytes);
    for record in records {
        let start = record.offset as usize;
        let lsn = u64::from_le_bytes(bytes[start + 8..start + 16].try_into().unwrap());
        let payload = bytes[start + 24..start + 24 + record.payload_len as usize].to_vec();
        let encoded = encode_record(salt, bytes[start + 16], lsn, &payload);
        bytes[start..start + encoded.len()].copy_from_slice(&encoded);
    }
}

/// The salt stored in a segment file's header.
pub fn segment_salt(segment_bytes: &[u8]) -> u32 {
    u32::from_le_bytes(segment_bytes[12..16].try_into().unwrap())
}

/// What recovery must find after `original` became `damaged`: the records of
/// the segment before the first one whose bytes changed, and the damage offset.
pub struct Oracle {
    /// Logical records that must survive.
    pub keep: u64,
    /// Where the damage starts.
    pub damage_at: u64,
    /// Bytes recovery must cut (0: a clean end).
    pub truncated: u64,
}

pub fn oracle(expected: &Expected, segment: usize, original: &[u8], damaged: &[u8]) -> Oracle {
    let layout = &expected.layout;
    let records = layout.records_in(segment);
    let broken = records.iter().find(|record| {
        let range = record.offset as usize..record.end() as usize;
        damaged[range.clone()] != original[range]
    });
    let (keep, damage_at) = match broken {
        Some(record) => (record.first_lsn - 1, record.offset),
        None => (expected.payloads.len() as u64, layout.segments[segment].end),
    };
    Oracle {
        keep,
        damage_at,
        truncated: end_of_nonzero(damaged, damage_at) - damage_at,
    }
}

/// Opens the damaged log in absolute mode, then in tolerate-tail mode, and
/// checks both against the oracle; then appends two records and checks that
/// a reopen sees them and no damage.
pub fn check_recovery(
    dir: &Path,
    segment_name: &str,
    payloads: &[Vec<u8>],
    oracle: &Oracle,
    label: &str,
) {
    let path = dir.join(segment_name);
    let keep = oracle.keep as usize;
    if oracle.truncated > 0 {
        let error = open_err(dir, options(SMALL_SEGMENT, RecoveryMode::Absolute));
        assert_eq!(
            corrupt_location(&error),
            (path.clone(), oracle.damage_at),
            "{label}: {error}"
        );
    } else {
        let wal = open(dir, options(SMALL_SEGMENT, RecoveryMode::Absolute));
        assert_log(&wal, &payloads[..keep]);
        wal.close().unwrap();
    }

    let wal = open(dir, options(SMALL_SEGMENT, RecoveryMode::TolerateTail));
    let report = wal.recovery().clone();
    assert_eq!(
        report.truncated_bytes, oracle.truncated,
        "{label}: {report:?}"
    );
    match &report.truncated_reason {
        Some(reason) => {
            assert!(
                oracle.truncated > 0,
                "{label}: a reason without a cut: {reason}"
            );
            assert!(
                reason.contains(&path.display().to_string())
                    && reason.contains(&format!("offset {}", oracle.damage_at)),
                "{label}: reason must name {} and offset {}: {reason}",
                path.display(),
                oracle.damage_at
            );
        }
        None => assert_eq!(oracle.truncated, 0, "{label}: a cut without a reason"),
    }
    assert_eq!(report.records, oracle.keep, "{label}: report.records");
    assert_eq!(
        (report.skipped_records, report.skipped_regions),
        (0, 0),
        "{label}"
    );
    assert_log(&wal, &payloads[..keep]);

    let mut after: Vec<Vec<u8>> = payloads[..keep].to_vec();
    for extra in [b"appended after the cut".to_vec(), vec![0xA5; 333]] {
        let lsn = wal.append(&extra).unwrap();
        after.push(extra);
        assert_eq!(
            lsn,
            after.len() as u64,
            "{label}: appending continues with the next LSN"
        );
    }
    wal.sync(None).unwrap();
    wal.close().unwrap();

    let wal = open(dir, options(SMALL_SEGMENT, RecoveryMode::Absolute));
    let report = wal.recovery();
    assert_eq!(
        (report.truncated_bytes, &report.truncated_reason),
        (0, &None),
        "{label}: second reopen"
    );
    assert_log(&wal, &after);
}
