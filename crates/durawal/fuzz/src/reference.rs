//! A reference decoder of one segment, written from docs/FORMAT.md alone
//! and kept deliberately plain (no windows, no look-ahead, no recovery
//! modes), so that the fuzz targets can compare what the real scanner and
//! recovery accept with what the format says a segment holds.

/// Size of the segment header block.
const HEADER_BLOCK: usize = 4096;
const RECORD_HEADER: usize = 24;

/// What the format says one segment (the first and only one of a log) holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The header block is not a valid segment header.
    BadHeader,
    /// Valid records, then a clean end: a seal, or a zero record header
    /// followed by nothing but zeros.
    Clean(Vec<(u64, Vec<u8>)>),
    /// Valid records, then bytes that are not the next valid record.
    Damaged {
        records: Vec<(u64, Vec<u8>)>,
        offset: u64,
    },
}

impl Decoded {
    /// In a few words, for a failure message.
    pub fn summary(&self) -> String {
        match self {
            Decoded::BadHeader => "a bad segment header".into(),
            Decoded::Clean(records) => format!("{} records and a clean end", records.len()),
            Decoded::Damaged { records, offset } => {
                format!("{} records, then damage at offset {offset}", records.len())
            }
        }
    }
}

/// FORMAT.md's masking of a CRC32C seeded with `seed`.
fn masked(seed: u32, parts: &[&[u8]]) -> u32 {
    let crc = parts
        .iter()
        .fold(seed, |crc, part| crc32c::crc32c_append(crc, part));
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Decodes `segment`, the log's first segment, whose first LSN is 1.
pub fn decode(segment: &[u8]) -> Decoded {
    if segment.len() < HEADER_BLOCK
        || &segment[0..8] != b"DURAWAL\0"
        || !(1..=3).contains(&u32_at(segment, 8))
        || masked(0, &[&segment[0..52]]) != u32_at(segment, 52)
        || segment[56..HEADER_BLOCK].iter().any(|&b| b != 0)
        || u64_at(segment, 32) != 1
    {
        return Decoded::BadHeader;
    }
    let version = u32_at(segment, 8);
    let salt = u32_at(segment, 12);
    let mut records = Vec::new();
    let mut next_lsn = 1u64;
    let mut digest = 0u32;
    let mut count = 0u64;
    let mut offset = HEADER_BLOCK;
    loop {
        if offset + RECORD_HEADER > segment.len() {
            return Decoded::Clean(records);
        }
        let header = &segment[offset..offset + RECORD_HEADER];
        if header.iter().all(|&b| b == 0) {
            return if segment[offset..].iter().all(|&b| b == 0) {
                Decoded::Clean(records)
            } else {
                Decoded::Damaged {
                    records,
                    offset: offset as u64,
                }
            };
        }
        let damaged = |records| Decoded::Damaged {
            records,
            offset: offset as u64,
        };
        let length = u32_at(header, 4) as usize;
        let lsn = u64_at(header, 8);
        let kind = header[16];
        let flags_ok = header[17] & !1 == 0 && (header[17] == 0 || version >= 3);
        let kind_ok = matches!(kind, 1..=3) || (kind == 4 && version >= 2);
        if masked(salt, &[&header[4..20]]) != u32_at(header, 20)
            || !flags_ok
            || header[18..20] != [0, 0]
            || !kind_ok
        {
            return damaged(records);
        }
        let size = (RECORD_HEADER + length).div_ceil(8) * 8;
        if size > segment.len() - offset {
            return damaged(records);
        }
        let payload = &segment[offset + RECORD_HEADER..offset + RECORD_HEADER + length];
        let crc = u32_at(header, 0);
        if masked(salt, &[&header[4..24], payload]) != crc {
            return damaged(records);
        }
        if kind == 3 {
            let seal_ok = length == 20
                && lsn == next_lsn - 1
                && u64_at(payload, 0) == count
                && u64_at(payload, 8) == next_lsn - 1
                && u32_at(payload, 16) == digest;
            return if seal_ok {
                Decoded::Clean(records)
            } else {
                damaged(records)
            };
        }
        if lsn != next_lsn {
            return damaged(records);
        }
        let logical = match kind {
            2 => match split_batch(payload) {
                Some(entries) => entries,
                None => return damaged(records),
            },
            _ => vec![payload.to_vec()],
        };
        for entry in logical {
            records.push((next_lsn, entry));
            next_lsn += 1;
            count += 1;
        }
        digest = crc32c::crc32c_append(digest, &crc.to_le_bytes());
        offset += size;
    }
}

/// The records of a batch payload: `count: u32`, then `count` times
/// `length: u32` and the bytes, exactly filling the payload; `None` otherwise.
fn split_batch(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let count = u32::from_le_bytes(payload.get(0..4)?.try_into().ok()?);
    let mut at = 4;
    let mut entries = Vec::new();
    for _ in 0..count {
        let length = u32::from_le_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
        entries.push(payload.get(at + 4..at + 4 + length)?.to_vec());
        at += 4 + length;
    }
    (count > 0 && at == payload.len()).then_some(entries)
}
