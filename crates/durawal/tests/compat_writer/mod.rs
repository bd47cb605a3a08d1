//! Writes the compatibility fixture of the current format version: a log of
//! 64 KiB segments (some sealed) holding single records, atomic batches and
//! checkpoints, written in several flushes, and `expected.txt`, one line per
//! record (`<lsn> <hex payload>`, then ` checkpoint` for a checkpoint) that
//! any later reader must replay from it byte for byte.
//!
//! Everything about it is deterministic — the log id and salts come from a
//! fixed seed, flushes happen only at explicit syncs — so the writer of
//! today must produce the committed fixture of today's format byte for
//! byte (`tests/compat.rs`). Shared by that test and
//! `examples/compat_fixture.rs`, which writes a new fixture.

use std::fmt::Write as _;
use std::path::Path;

use durawal::{DirectIo, Options, SyncPolicy, Wal};

/// Seeds the log id and salts of the fixture.
const SEED: u64 = 0xd0_4a_1f;

fn payload(index: u64) -> Vec<u8> {
    // Sizes from 0 to 3000 bytes, so records straddle blocks and segments.
    let length = (index * 379 % 3001) as usize;
    (0..length)
        .map(|i| (index as usize * 31 + i) as u8)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// Writes `dir/log` and `dir/expected.txt`.
pub fn write_fixture(dir: &Path) -> durawal::Result<()> {
    let options = Options {
        segment_size: 64 * 1024,
        sync: SyncPolicy::Never,
        direct_io: DirectIo::Off,
        random_seed: Some(SEED),
        ..Options::default()
    };
    let wal = Wal::open(dir.join("log"), options)?;
    let mut expected = String::new();
    let mut index = 0u64;
    while wal.last_lsn() < 120 {
        index += 1;
        if index.is_multiple_of(17) {
            let record = payload(index);
            let lsn = wal.checkpoint(&record)?;
            let _ = writeln!(expected, "{lsn} {} checkpoint", hex(&record));
        } else if index.is_multiple_of(5) {
            let records: Vec<Vec<u8>> = (0..3).map(|k| payload(index * 10 + k)).collect();
            let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let (first, _) = wal.append_batch(&slices)?;
            for (k, record) in records.iter().enumerate() {
                let _ = writeln!(expected, "{} {}", first + k as u64, hex(record));
            }
        } else {
            let record = payload(index);
            let lsn = wal.append(&record)?;
            let _ = writeln!(expected, "{lsn} {}", hex(&record));
        }
        if index.is_multiple_of(7) {
            wal.sync(None)?;
        }
    }
    wal.sync(None)?;
    wal.close()?;
    std::fs::write(dir.join("expected.txt"), expected)
        .map_err(|e| durawal::Error::io("write", dir, e))
}
