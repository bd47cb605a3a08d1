//! Writes the compatibility fixture of the current format version into the
//! directory given as the only argument: a log of three 64 KiB segments (two
//! sealed) holding single records, atomic batches and checkpoints, and
//! `expected.txt`, one line per record (`<lsn> <hex payload>`, then
//! ` checkpoint` for a checkpoint) that any later reader must replay from it
//! byte for byte. Run once per format version:
//!
//! ```text
//! cargo run -p durawal --example compat_fixture -- crates/durawal/tests/compat/v<N>
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use durawal::{Options, Wal};

fn payload(index: u64) -> Vec<u8> {
    // Sizes from 0 to 3000 bytes, so records straddle blocks and segments.
    let length = (index * 379 % 3001) as usize;
    (0..length)
        .map(|i| (index as usize * 31 + i) as u8)
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: compat_fixture <empty or new directory>")?
        .into();
    let log = dir.join("log");
    let options = Options {
        segment_size: 64 * 1024,
        ..Options::default()
    };
    let wal = Wal::open(&log, options)?;
    let mut expected = String::new();
    let mut index = 0u64;
    while wal.last_lsn() < 120 {
        index += 1;
        if index.is_multiple_of(17) {
            let record = payload(index);
            let lsn = wal.checkpoint(&record)?;
            writeln!(expected, "{lsn} {} checkpoint", hex(&record))?;
        } else if index.is_multiple_of(5) {
            let records: Vec<Vec<u8>> = (0..3).map(|k| payload(index * 10 + k)).collect();
            let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let (first, _) = wal.append_batch(&slices)?;
            for (k, record) in records.iter().enumerate() {
                writeln!(expected, "{} {}", first + k as u64, hex(record))?;
            }
        } else {
            let record = payload(index);
            let lsn = wal.append(&record)?;
            writeln!(expected, "{lsn} {}", hex(&record))?;
        }
    }
    wal.sync(None)?;
    wal.close()?;
    std::fs::write(dir.join("expected.txt"), expected)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}
