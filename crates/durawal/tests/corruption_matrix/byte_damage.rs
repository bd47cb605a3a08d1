//! Damage to the bytes of a log's segments, where the oracle finds the
//! expectation by comparing the damaged bytes with the originals: what a
//! torn write, a failing disk or a stray write does to the end of a log and,
//! for contrast, to bytes deep inside it.

use crate::common::{encode_flagged_record, masked_crc, segment_salt, PlacedRecord, Rng};
use crate::common::{KIND_DATA, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE};
use crate::{Matrix, Tier};

/// The records at the end of the last segment that get every kind of damage.
const LAST_RECORDS: usize = 3;
/// Sector sizes a torn write is made of.
const SECTORS: [usize; 2] = [512, 4096];

pub fn all(matrix: &mut Matrix, rng: &mut Rng, tier: &Tier) {
    truncations(matrix, rng, tier);
    header_bits(matrix, rng, tier);
    payload_flips(matrix, rng, tier);
    lying_lengths(matrix, rng);
    garbage_tails(matrix, rng, tier);
    stale_records(matrix, rng);
    torn_sectors(matrix, rng, tier);
}

/// The last physical records of the last segment.
fn last_records(matrix: &Matrix) -> Vec<PlacedRecord> {
    let records = matrix
        .log
        .expected
        .layout
        .records_in(matrix.log.last_segment());
    records[records.len().saturating_sub(LAST_RECORDS)..].to_vec()
}

fn describe(record: &PlacedRecord) -> String {
    format!(
        "record of LSN {} at offset {} of segment {}",
        record.first_lsn, record.offset, record.segment
    )
}

/// Offsets of a record's bytes (its padding included) to damage at: all of
/// them in the release tier and for records up to 512 bytes, else every
/// header byte and a sample of the payload.
fn offsets(record: &PlacedRecord, rng: &mut Rng, tier: &Tier) -> Vec<u64> {
    let all = record.offset..record.padded_end();
    if tier.every_byte || all.end - all.start <= 512 {
        return all.collect();
    }
    let header_end = record.offset + RECORD_HEADER_SIZE;
    let mut offsets: Vec<u64> = (record.offset..header_end).collect();
    offsets.extend((0..48).map(|_| rng.range(header_end, all.end - 1)));
    offsets.extend([record.end() - 1, record.end(), all.end - 1]);
    offsets.sort();
    offsets.dedup();
    offsets
}

/// Zeroing from each offset of the last records to the end of the written
/// part, and truncating the file there; the last segment cut inside its
/// header block; a middle segment cut short.
fn truncations(matrix: &mut Matrix, rng: &mut Rng, tier: &Tier) {
    let last = matrix.log.last_segment();
    let written_end = matrix.log.expected.layout.segments[last].end as usize;
    for record in last_records(matrix) {
        for offset in offsets(&record, rng, tier) {
            let at = offset as usize;
            let label = format!("{}: zeroed from offset {offset}", describe(&record));
            matrix.damage(label, last, |bytes| bytes[at..written_end].fill(0));
            let label = format!("{}: file cut at offset {offset}", describe(&record));
            matrix.damage(label, last, |bytes| bytes.truncate(at));
        }
    }
    for length in [0, 55, 56, 57, 1000, 4095, 4096] {
        let label = format!("last segment cut to {length} bytes");
        matrix.damage(label, last, |bytes| bytes.truncate(length));
    }
    if last > 0 {
        let layout = &matrix.log.expected.layout;
        let middle = last - 1;
        let seal = layout.segments[middle]
            .seal_offset
            .expect("a middle segment is sealed");
        let final_record = layout.records_in(middle).last().unwrap().clone();
        let inside = rng.range(final_record.offset + 1, final_record.end() - 1);
        for length in [100, 4096, final_record.offset, inside, seal, seal + 30] {
            let label = format!("segment {middle} cut to {length} bytes");
            matrix.damage(label, middle, |bytes| bytes.truncate(length as usize));
        }
    }
}

/// Flips `bit` of the byte at `offset` of segment `index`.
fn flip(matrix: &mut Matrix, index: usize, offset: u64, bit: u8, what: &str) {
    let label = format!("{what}: bit {bit} of the byte at offset {offset} of segment {index}");
    matrix.damage(label, index, |bytes| bytes[offset as usize] ^= 1 << bit);
}

/// Every bit of the last record headers, of the last seal (header and
/// payload) and of the last segment's header (and of the first segment's
/// in the release tier), and bits of the header block's zero part.
fn header_bits(matrix: &mut Matrix, rng: &mut Rng, tier: &Tier) {
    let last = matrix.log.last_segment();
    for record in last_records(matrix) {
        for offset in record.offset..record.offset + RECORD_HEADER_SIZE {
            for bit in 0..8 {
                flip(matrix, last, offset, bit, "record header");
            }
        }
    }
    if last > 0 {
        let seal = matrix.log.expected.layout.segments[last - 1]
            .seal_offset
            .unwrap();
        for offset in seal..seal + RECORD_HEADER_SIZE + 20 {
            for bit in 0..8 {
                flip(matrix, last - 1, offset, bit, "seal");
            }
        }
    }
    let mut headers = vec![last];
    if tier.every_byte && last > 0 {
        headers.push(0);
    }
    for index in headers {
        for offset in 0..56 {
            for bit in 0..8 {
                flip(matrix, index, offset, bit, "segment header");
            }
        }
        for _ in 0..16 {
            let offset = rng.range(56, SEGMENT_HEADER_SIZE - 1);
            flip(
                matrix,
                index,
                offset,
                rng.range(0, 7) as u8,
                "segment header's zeros",
            );
        }
    }
}

/// Bits flipped in payloads: of the last records, and of any record of the log.
fn payload_flips(matrix: &mut Matrix, rng: &mut Rng, tier: &Tier) {
    let layout = &matrix.log.expected.layout;
    let last = layout.records_in(matrix.log.last_segment());
    let near_end: Vec<PlacedRecord> = last[last.len().saturating_sub(10)..].to_vec();
    let anywhere = layout.records.clone();
    for (pool, count) in [
        (near_end, tier.payload_flips),
        (anywhere, tier.payload_flips / 2),
    ] {
        let pool: Vec<&PlacedRecord> = pool.iter().filter(|r| r.payload_len > 0).collect();
        for _ in 0..count {
            let record = pool[rng.range(0, pool.len() as u64 - 1) as usize];
            let payload = record.offset + RECORD_HEADER_SIZE;
            let offset = rng.range(payload, payload + record.payload_len - 1);
            let bit = rng.range(0, 7) as u8;
            flip(
                matrix,
                record.segment,
                offset,
                bit,
                &format!("payload of the {}", describe(record)),
            );
        }
    }
}

/// Length fields that lie, with the header CRC fixed up so that the lie is
/// believed: recovery must check the length against the bytes left in the
/// file before it reads or allocates anything.
fn lying_lengths(matrix: &mut Matrix, rng: &mut Rng) {
    let layout = &matrix.log.expected.layout;
    let mut victims = last_records(matrix);
    for index in 0..matrix.log.last_segment() {
        victims.push(layout.records_in(index).last().unwrap().clone());
    }
    for _ in 0..2 {
        victims
            .push(layout.records[rng.range(0, layout.records.len() as u64 - 1) as usize].clone());
    }
    for record in victims {
        let file_length = matrix.log.segment(record.segment).len() as u64;
        let to_file_end = file_length - record.offset - RECORD_HEADER_SIZE;
        let length = record.payload_len;
        let lies = [
            0,
            length.saturating_sub(1),
            length + 1,
            length + 8,
            to_file_end,
            to_file_end + 1,
            (16 << 20) + 1,
            1 << 30,
            u64::from(u32::MAX),
        ];
        for lie in lies.into_iter().filter(|&lie| lie != length) {
            let label = format!("{}: length {length} said to be {lie}", describe(&record));
            let at = record.offset as usize;
            matrix.damage(label, record.segment, |bytes| {
                let salt = segment_salt(bytes);
                bytes[at + 4..at + 8].copy_from_slice(&(lie as u32).to_le_bytes());
                let header_crc = masked_crc(salt, &bytes[at + 4..at + 20]);
                bytes[at + 20..at + 24].copy_from_slice(&header_crc.to_le_bytes());
            });
        }
    }
}

/// Random bytes after the written part (right after it, after a gap, at the
/// end of the file), over the last record, and a header that is valid but
/// heads no valid record.
fn garbage_tails(matrix: &mut Matrix, rng: &mut Rng, tier: &Tier) {
    let last = matrix.log.last_segment();
    let written_end = matrix.log.expected.layout.segments[last].end;
    let file_length = matrix.log.segment(last).len() as u64;
    let final_record = last_records(matrix).pop().unwrap();
    for draw in 0..tier.garbage_tails {
        let length = rng.range(1, 3000);
        let start = match draw % 4 {
            0 => written_end,
            1 => written_end + rng.range(1, 600),
            2 => rng.range(final_record.offset, written_end - 1),
            _ => file_length - length,
        }
        .min(file_length - length);
        let garbage = rng.bytes(length as usize);
        let label = format!("{length} random bytes at offset {start}");
        matrix.damage(label, last, |bytes| {
            bytes[start as usize..(start + length) as usize].copy_from_slice(&garbage)
        });
    }
    let next_lsn = matrix.log.records() + 1;
    let length = rng.range(1, 200) as u32;
    let label = format!("a valid header of LSN {next_lsn} heading {length} random bytes");
    matrix.damage(label, last, |bytes| {
        let salt = segment_salt(bytes);
        let at = written_end as usize;
        let mut header =
            encode_flagged_record(salt, KIND_DATA, next_lsn, false, &vec![0; length as usize]);
        header[0] ^= 0x5a;
        for byte in &mut header[24..] {
            *byte = 0xa5;
        }
        bytes[at..at + header.len()].copy_from_slice(&header);
    });
}

/// Valid records of the segment where they do not belong: copies of earlier
/// records over the last one and after the end, the last record copied
/// before itself (an LSN ahead), the flagged first record of the last flush
/// after the end, and new records whose LSN is behind.
fn stale_records(matrix: &mut Matrix, rng: &mut Rng) {
    let last = matrix.log.last_segment();
    let segment = matrix.log.segment(last).to_vec();
    let records = matrix.log.expected.layout.records_in(last);
    let written_end = matrix.log.expected.layout.segments[last].end;
    let copy = |record: &PlacedRecord| {
        segment[record.offset as usize..record.padded_end() as usize].to_vec()
    };
    let count = records.len();
    let final_record = records[count - 1].clone();
    let mut placements = vec![
        (
            copy(&final_record),
            records[count - 2].offset,
            "the last record",
        ),
        (copy(&final_record), written_end, "the last record"),
        (
            copy(&records[0]),
            written_end + 64,
            "the segment's first record",
        ),
    ];
    for back in [2, 5] {
        if let Some(earlier) = count.checked_sub(back).map(|index| &records[index]) {
            placements.push((copy(earlier), final_record.offset, "an earlier record"));
        }
    }
    if let Some(flagged) = records
        .iter()
        .rev()
        .find(|record| crate::common::synced_before(&segment, record.offset))
    {
        placements.push((copy(flagged), written_end, "the last flagged record"));
    }
    let salt = segment_salt(&segment);
    let behind = matrix.log.records() - 1;
    for flag in [false, true] {
        let length = rng.range(1, 64) as usize;
        let record = encode_flagged_record(salt, KIND_DATA, behind, flag, &rng.bytes(length));
        placements.push((record, written_end, "a new record of an old LSN"));
    }
    for (bytes, at, what) in placements {
        if at as usize + bytes.len() > segment.len() {
            continue;
        }
        let label = format!("{what} ({} bytes) written at offset {at}", bytes.len());
        matrix.damage(label, last, |segment| {
            segment[at as usize..at as usize + bytes.len()].copy_from_slice(&bytes)
        });
    }
    if last > 0 {
        let middle = matrix.log.expected.layout.records_in(last - 1);
        let (source, target) = (&middle[0], &middle[middle.len() / 2]);
        let bytes = matrix.log.segment(last - 1)
            [source.offset as usize..source.padded_end() as usize]
            .to_vec();
        let label = format!(
            "the {} copied over the {}",
            describe(source),
            describe(target)
        );
        matrix.damage(label, last - 1, |segment| {
            let at = target.offset as usize;
            segment[at..at + bytes.len()].copy_from_slice(&bytes)
        });
    }
}

/// Sectors (512 bytes and 4 KiB) of the blocks the last flush wrote that
/// kept what they held before it (a torn write) or turned to zeros: each
/// alone, every prefix and every suffix of them, and random sets.
fn torn_sectors(matrix: &mut Matrix, rng: &mut Rng, tier: &Tier) {
    let log = matrix.log;
    let last = log.last_segment();
    let name = log.segment_name(last);
    let original = log.segment(last);
    let older = log
        .before_last_flush
        .get(&name)
        .cloned()
        .unwrap_or_default();
    let written_end = log.expected.layout.segments[last].end as usize;
    let first_block = log.last_flush_start as usize / 4096 * 4096;
    let end = written_end.next_multiple_of(4096).min(original.len());
    for sector in SECTORS {
        let sectors: Vec<usize> = (first_block..end).step_by(sector).collect();
        let n = sectors.len();
        let mut sets: Vec<(String, Vec<bool>)> = Vec::new();
        for index in 0..n {
            sets.push((
                format!("sector {index}"),
                (0..n).map(|i| i == index).collect(),
            ));
            sets.push((
                format!("sectors from {index}"),
                (0..n).map(|i| i >= index).collect(),
            ));
            sets.push((
                format!("sectors before {index}"),
                (0..n).map(|i| i < index).collect(),
            ));
        }
        for draw in 0..tier.torn_sets {
            let set = (0..n).map(|_| rng.range(0, 1) == 1).collect();
            sets.push((format!("random set {draw}"), set));
        }
        let mut seen = std::collections::BTreeSet::new();
        sets.retain(|(_, set)| seen.insert(set.clone()));
        for (what, set) in sets {
            for zeros in [false, true] {
                let source = if zeros {
                    "zeros"
                } else {
                    "what they held before the last flush"
                };
                let label = format!("{sector}-byte {what} of the last flush's blocks from offset {first_block} replaced by {source}");
                let set = &set;
                let older = &older;
                matrix.damage(label, last, |bytes| {
                    for (&start, _) in sectors.iter().zip(set).filter(|(_, torn)| **torn) {
                        for at in start..(start + sector).min(bytes.len()) {
                            bytes[at] = if zeros {
                                0
                            } else {
                                older.get(at).copied().unwrap_or(0)
                            };
                        }
                    }
                });
            }
        }
    }
}
