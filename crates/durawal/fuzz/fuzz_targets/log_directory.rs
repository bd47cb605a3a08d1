//! Whole-directory recovery: up to three chained segments of valid records
//! (see `SegmentBuilder`), control files, and what can go wrong between
//! files — a segment renamed, duplicated, dropped or from another log, a
//! `HEAD` or `TRUNCATE` naming any LSN, damaged bytes — opened in every
//! recovery mode and replayed. The input: a layout byte, then per segment
//! its records up to a 0xFF marker, then two LSN bytes, then damage triples
//! (segment, offset, xor).
#![no_main]

use durawal::format::{segment_file_name, ControlKind, ControlRecord, SEGMENT_HEADER_SIZE};
use durawal_fuzz::{open_and_replay, SegmentBuilder, SEGMENT_SIZE};

const LOG_ID: [u8; 16] = [5; 16];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [layout, rest @ ..] = data else { return };
    let layout = *layout;
    let segment_count = 1 + (layout % 3) as usize;
    let mut rest = rest;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut previous = None;
    let mut first_lsn = 1;
    for index in 0..segment_count {
        let foreign = layout & 0x40 != 0 && index == segment_count - 1;
        let log_id = if foreign { [9; 16] } else { LOG_ID };
        let mut builder = SegmentBuilder::new(0x1000 + index as u32, log_id, first_lsn, previous);
        rest = builder.append_from(rest);
        let name = segment_file_name(first_lsn);
        first_lsn = builder.next_lsn();
        let bytes = if index + 1 < segment_count {
            let (bytes, seal) = builder.seal();
            previous = Some(seal);
            bytes
        } else {
            builder.finish()
        };
        files.push((name, bytes));
    }
    let (lsn_a, lsn_b) = match rest {
        [a, b, tail @ ..] => {
            rest = tail;
            (u64::from(*a), u64::from(*b))
        }
        _ => (0, 0),
    };
    for (flag, kind, lsn) in [
        (0x04, ControlKind::Head, lsn_a),
        (0x08, ControlKind::Cut, lsn_b),
    ] {
        if layout & flag != 0 {
            let record = ControlRecord {
                kind,
                log_id: LOG_ID,
                lsn,
            };
            files.push((kind.file_name().into(), record.encode().to_vec()));
        }
    }
    for triple in rest.chunks_exact(3) {
        let segment = triple[0] as usize % segment_count;
        let offset = SEGMENT_HEADER_SIZE / 2
            + (usize::from(triple[1]) * 263) % (SEGMENT_SIZE as usize - SEGMENT_HEADER_SIZE / 2);
        files[segment].1[offset] ^= triple[2];
    }
    match layout >> 4 & 0x3 {
        // A segment lost, or renamed to the name of an LSN it does not start at.
        1 if segment_count > 1 => drop(files.remove(usize::from(layout) % (segment_count - 1))),
        2 => files[0].0 = segment_file_name(u64::from(layout) + 2),
        3 => {
            let copy = files[0].1.clone();
            files.push((segment_file_name(first_lsn + 1), copy));
        }
        _ => {}
    }
    if layout & 0x80 != 0 {
        files.push(("next-segment.tmp".into(), vec![0; 4096]));
        files.push(("notes.txt".into(), b"stray".to_vec()));
    }
    open_and_replay(&files);
});
