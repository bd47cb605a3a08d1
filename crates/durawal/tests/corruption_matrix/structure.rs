//! Damage to the log directory rather than to bytes: segments missing,
//! copied under another name, taken from another log or from a fork of this
//! one, headers that are valid but lie, damaged control files, and files
//! that are not the log's. Each comes with the expectation the contract
//! states for it (docs/durability.md, "Recovery modes").

use durawal::format::PREPARED_SEGMENT_NAME;
use durawal::format::{segment_file_name, ControlKind, ControlRecord, SegmentHeader};

use crate::check::Variant;
use crate::common::memory::Image;
use crate::common::Rng;
use crate::logs::{another_log, forked_segment};
use crate::oracle::{Expect, Refusal};
use crate::{Matrix, Tier};

pub fn all(matrix: &mut Matrix, rng: &mut Rng, tier: &Tier, seed: u64) {
    missing_segments(matrix);
    duplicate_segments(matrix);
    foreign_segments(matrix, seed);
    forks(matrix, rng, tier);
    lying_headers(matrix);
    control_files(matrix, rng);
    stray_files(matrix, rng);
}

/// Checks `image` (the log with `change` made) against `expect`.
fn variant(matrix: &mut Matrix, label: &str, change: impl FnOnce(&mut Image), expect: Expect) {
    let mut image = matrix.log.image.clone();
    change(&mut image);
    matrix.check(Variant {
        label: label.to_owned(),
        image,
        expect,
    });
}

fn names_from(matrix: &Matrix, first: usize) -> Vec<String> {
    (first..=matrix.log.last_segment())
        .map(|index| matrix.log.segment_name(index))
        .collect()
}

fn first_lsn(matrix: &Matrix, index: usize) -> u64 {
    matrix.log.expected.layout.segments[index].first_lsn
}

/// The first segment missing is refused (a log's head is never silently
/// dropped); a middle one is a gap; the last one cannot be told from a log
/// whose last segment was never started.
fn missing_segments(matrix: &mut Matrix) {
    let last = matrix.log.last_segment();
    if last == 0 {
        return;
    }
    for index in 0..=last {
        let name = matrix.log.segment_name(index);
        let expect = if index == 0 {
            Expect::Refused {
                files: vec![matrix.log.segment_name(1)],
            }
        } else if index < last {
            Expect::Gap {
                next: matrix.log.segment_name(index + 1),
                intact: first_lsn(matrix, index) - 1,
                later: names_from(matrix, index + 1),
            }
        } else {
            Expect::Clean {
                intact: first_lsn(matrix, index) - 1,
            }
        };
        let label = format!("segment {index} ({name}) missing");
        variant(matrix, &label, |image| drop(image.remove(&name)), expect);
    }
}

/// A segment's bytes also under a name its header contradicts: misnamed,
/// refused in every mode.
fn duplicate_segments(matrix: &mut Matrix) {
    let last = matrix.log.last_segment();
    for index in [0, last] {
        let bytes = matrix.log.segment(index).to_vec();
        for lsn in [first_lsn(matrix, index) + 1, matrix.log.records() + 1] {
            let copy = segment_file_name(lsn);
            if matrix.log.image.contains_key(&copy) {
                continue;
            }
            let label = format!("segment {index} copied to {copy}");
            let expect = Expect::Refused {
                files: vec![copy.clone()],
            };
            variant(
                matrix,
                &label,
                |image| drop(image.insert(copy.clone(), bytes.clone())),
                expect,
            );
        }
    }
}

/// Each segment replaced by the segment of the same name of another log
/// (another log id, other salts); refused in every mode, naming it or, for
/// the first, the segment after it (which no longer belongs with it).
fn foreign_segments(matrix: &mut Matrix, seed: u64) {
    let last = matrix.log.last_segment();
    if last == 0 {
        return;
    }
    let other = another_log(matrix.log.profile, seed);
    for index in 0..=last {
        let name = matrix.log.segment_name(index);
        let Some(foreign) = other.image.get(&name).cloned() else {
            continue;
        };
        let mut files = vec![name.clone()];
        if index == 0 {
            files.push(matrix.log.segment_name(1));
        }
        let label = format!("segment {index} replaced by another log's {name}");
        variant(
            matrix,
            &label,
            |image| drop(image.insert(name.clone(), foreign)),
            Expect::Refused { files },
        );
    }
}

/// Segments of a fork of the log (a second writer that continued the log
/// as it was before its last rotation with other records) put among the
/// log's own: they overlap its last segment or replace it. Refused,
/// naming the fork's segment or the log's last segment, which is then no
/// longer the last and ends without a seal; point-in-time may instead keep
/// the records before the overlap. A fork whose segment would continue the
/// log past its end, or continue it exactly as its own last segment does,
/// is no damage recovery can see, and is not used.
fn forks(matrix: &mut Matrix, rng: &mut Rng, tier: &Tier) {
    let log = matrix.log;
    let Some(before) = &log.before_last_rotation else {
        return;
    };
    let last = log.last_segment();
    let last_name = log.segment_name(last);
    let last_first = first_lsn(matrix, last);
    for draw in 0..tier.forks {
        let (name, bytes) = forked_segment(log.profile, before, rng);
        let first = durawal::format::parse_segment_name(&name).unwrap();
        let written_end = log.expected.layout.segments[last].end;
        let (refusals, intact, removed) = if first == last_first {
            if bytes[40..52] == log.segment(last)[40..52] {
                continue;
            }
            (vec![Refusal::at(&name, 0)], first - 1, vec![name.clone()])
        } else if first < last_first {
            (
                vec![Refusal::at(&name, 0)],
                last_first - 1,
                vec![name.clone(), last_name.clone()],
            )
        } else if first <= log.records() {
            let refusals = vec![Refusal::at(&last_name, written_end), Refusal::at(&name, 0)];
            (refusals, log.records(), vec![name.clone()])
        } else {
            continue;
        };
        let label = format!("fork {draw}'s segment {name} (first LSN {first}) added");
        let expect = Expect::Overlap {
            refusals,
            intact,
            removed,
        };
        variant(
            matrix,
            &label,
            |image| drop(image.insert(name.clone(), bytes)),
            expect,
        );
    }
}

/// Rewrites the header of segment `index` with `edit` and a fixed-up CRC.
fn edit_header(image: &mut Image, name: &str, edit: impl FnOnce(&mut SegmentHeader)) {
    let bytes = image.get_mut(name).unwrap();
    let mut header = SegmentHeader::decode(&bytes[..4096]).expect("an undamaged header");
    edit(&mut header);
    bytes[..4096].copy_from_slice(&header.encode());
}

/// A change to a segment header, made before its CRC is fixed up.
type HeaderEdit = Box<dyn Fn(&mut SegmentHeader)>;

/// Headers whose CRC is right and whose content is wrong: an unknown format
/// version and a bad magic are damage; a first LSN that contradicts the
/// name, another log's id and a first segment that names a previous one
/// are misplaced segments; a previous seal that is not the previous
/// segment's breaks the chain.
fn lying_headers(matrix: &mut Matrix) {
    let last = matrix.log.last_segment();
    let mut indexes = vec![0, last];
    indexes.dedup();
    for index in indexes {
        let name = matrix.log.segment_name(index);
        let header_damage = Expect::Header {
            file: name.clone(),
            index,
            intact: first_lsn(matrix, index) - 1,
            from_here: names_from(matrix, index),
        };
        let misplaced = Expect::Refused {
            files: vec![name.clone()],
        };
        let mut cases: Vec<(&str, HeaderEdit, Expect)> = vec![
            (
                "format version 0",
                Box::new(|h| h.version = 0),
                header_damage.clone(),
            ),
            (
                "format version 99",
                Box::new(|h| h.version = 99),
                header_damage.clone(),
            ),
            (
                "first LSN off by one",
                Box::new(|h| h.first_lsn += 1),
                misplaced.clone(),
            ),
        ];
        if index > 0 {
            cases.push((
                "another log id",
                Box::new(|h| h.log_id[3] ^= 1),
                misplaced.clone(),
            ));
            cases.push((
                "previous seal offset moved",
                Box::new(|h| h.prev_seal_offset += 8),
                header_damage.clone(),
            ));
            cases.push((
                "previous digest changed",
                Box::new(|h| h.prev_digest ^= 1),
                header_damage.clone(),
            ));
        } else {
            cases.push((
                "a previous seal named",
                Box::new(|h| h.prev_seal_offset = 4096),
                misplaced.clone(),
            ));
            if last > 0 {
                let files = vec![matrix.log.segment_name(1)];
                cases.push((
                    "another log id",
                    Box::new(|h| h.log_id[3] ^= 1),
                    Expect::Refused { files },
                ));
            }
        }
        for (what, edit, expect) in cases {
            let label = format!("segment {index}'s header: {what}, CRC fixed");
            variant(
                matrix,
                &label,
                |image| edit_header(image, &name, edit),
                expect,
            );
        }
        let label = format!("segment {index}'s header: bad magic, CRC fixed");
        let bad_magic = |image: &mut Image| {
            let bytes = image.get_mut(&name).unwrap();
            bytes[0] = b'X';
            let crc = crate::common::masked_crc(0, &bytes[0..52]);
            bytes[52..56].copy_from_slice(&crc.to_le_bytes());
        };
        variant(matrix, &label, bad_magic, header_damage);
    }
}

/// `HEAD` and `TRUNCATE` damaged, empty, or written for another log: refused
/// naming them. `DURABLE` damaged or missing: recovery ignores it.
fn control_files(matrix: &mut Matrix, rng: &mut Rng) {
    let first = matrix.log.segment(0);
    let log_id: [u8; 16] = first[16..32].try_into().unwrap();
    let mut other_id = log_id;
    other_id[0] ^= 0xff;
    for kind in [ControlKind::Head, ControlKind::Cut] {
        let name = kind.file_name();
        let record = |log_id, lsn| ControlRecord { kind, log_id, lsn }.encode().to_vec();
        let mut damaged = record(log_id, 1);
        damaged[30] ^= 4;
        let contents = [
            ("empty", Vec::new()),
            ("random bytes", rng.bytes(36)),
            ("a bit flipped", damaged),
            ("written for another log", record(other_id, 1)),
        ];
        for (what, bytes) in contents {
            let label = format!("{name}: {what}");
            let expect = Expect::Refused {
                files: vec![name.to_owned()],
            };
            variant(
                matrix,
                &label,
                |image| drop(image.insert(name.to_owned(), bytes)),
                expect,
            );
        }
    }
    let durable = ControlKind::Durable.file_name();
    let whole = Expect::Clean {
        intact: matrix.log.records(),
    };
    let garbage = rng.bytes(36);
    variant(
        matrix,
        "DURABLE: random bytes",
        |image| drop(image.insert(durable.to_owned(), garbage)),
        whole.clone(),
    );
    variant(
        matrix,
        "DURABLE: missing",
        |image| drop(image.remove(durable)),
        whole,
    );
}

/// Files that are not the log's: left alone and listed; leftovers of
/// unfinished writes (a prepared segment, a control file not yet renamed):
/// deleted and listed.
fn stray_files(matrix: &mut Matrix, rng: &mut Rng) {
    let first_name = matrix.log.segment_name(0);
    let stray = [
        "notes.txt".to_owned(),
        format!("{first_name}.bak"),
        first_name[1..].to_owned(),
        format!("0{first_name}"),
        first_name.replace(".wal", ".WAL"),
        "LOCK.old".to_owned(),
    ];
    let leftovers = [
        PREPARED_SEGMENT_NAME,
        ControlKind::Head.temporary_name(),
        ControlKind::Cut.temporary_name(),
    ];
    let whole = matrix.log.records();
    let first_bytes = matrix.log.segment(0).to_vec();
    let mut every: Vec<(String, Vec<u8>)> = Vec::new();
    for name in &stray {
        let bytes = if name.contains(".wal") || name.contains(".WAL") {
            first_bytes.clone()
        } else {
            rng.bytes(100)
        };
        every.push((name.clone(), bytes.clone()));
        let expect = Expect::Stray {
            intact: whole,
            stray: vec![name.clone()],
            removed: Vec::new(),
        };
        variant(
            matrix,
            &format!("stray file {name}"),
            |image| drop(image.insert(name.clone(), bytes)),
            expect,
        );
    }
    for name in leftovers {
        let bytes = rng.bytes(4096);
        every.push((name.to_owned(), bytes.clone()));
        let expect = Expect::Stray {
            intact: whole,
            stray: Vec::new(),
            removed: vec![name.to_owned()],
        };
        variant(
            matrix,
            &format!("leftover {name}"),
            |image| drop(image.insert(name.to_owned(), bytes)),
            expect,
        );
    }
    let expect = Expect::Stray {
        intact: whole,
        stray: stray.to_vec(),
        removed: leftovers.iter().map(|name| name.to_string()).collect(),
    };
    variant(
        matrix,
        "every stray file and leftover at once",
        |image| image.extend(every),
        expect,
    );
}
