//! What recovery must make of a damaged log, derived from the damage alone:
//! where the first damaged byte of the log's records is (comparing the
//! damaged files with the originals, record by record, in log order), and
//! then, for each recovery mode, what docs/durability.md allows there.
//!
//! The outcome is always either the valid prefix before the damage, or
//! `Corrupt` naming the damaged file and offset. Where the contract leaves a
//! choice (damage near the end of the log may be a torn write, which is cut,
//! or damage to synced records, which format 3 refuses), both are allowed;
//! where it does not (absolute mode and any damage of written bytes; damage
//! inside the log in tolerate-tail mode; a state a crash can leave, which
//! must open), only one is.

use crate::common::memory::Image;
use crate::common::{end_of_nonzero, RECORD_HEADER_SIZE, SEAL_SIZE, SEGMENT_HEADER_SIZE};
use crate::logs::OriginalLog;
use durawal::RecoveryMode;

/// Bytes of a seal that carry meaning: its header and 20-byte payload (the
/// padding after it is not covered by any CRC).
const SEAL_BYTES: u64 = RECORD_HEADER_SIZE + 20;

/// Where a log is damaged, as far as the contract cares.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Nothing but zeros after the first `intact` records: a shorter log,
    /// which every mode opens as it is.
    Clean { intact: u64 },
    /// The last segment's records end in damage at `offset`; a recovery that
    /// cuts it must zero `cut_bytes` bytes from there. `torn_write`: the
    /// damage is a state a crash can leave (only bytes of the last flush
    /// differ, each holding what it held before that flush), which the
    /// default mode must open.
    Tail {
        file: String,
        offset: u64,
        intact: u64,
        cut_bytes: u64,
        torn_write: bool,
    },
    /// A segment before the last is damaged at `offset` (a record, its seal,
    /// or its end); `later` are the segments after it.
    Inside {
        file: String,
        offset: u64,
        intact: u64,
        cut_bytes: u64,
        later: Vec<String>,
    },
    /// The header of segment `index` is damaged; `from_here` is that
    /// segment and every one after it.
    Header {
        file: String,
        index: usize,
        intact: u64,
        from_here: Vec<String>,
    },
    /// A middle segment is missing: `next` is the one after the gap and
    /// `later` it and every one after it.
    Gap {
        next: String,
        intact: u64,
        later: Vec<String>,
    },
    /// Refused in every mode, naming one of `files` at offset 0: a missing
    /// first segment, a foreign or misnamed segment, a damaged control file.
    Refused { files: Vec<String> },
    /// Two segments of the same log overlap (a fork's segment among the
    /// log's own): refused, naming one of `refusals`; point-in-time may
    /// instead keep the first `intact` records and delete `removed`.
    Overlap {
        refusals: Vec<Refusal>,
        intact: u64,
        removed: Vec<String>,
    },
    /// Files that are not the log's: every mode opens the whole log, lists
    /// `stray` and deletes `removed` (leftovers of unfinished writes).
    Stray {
        intact: u64,
        stray: Vec<String>,
        removed: Vec<String>,
    },
}

/// A refusal that the contract allows: `Corrupt` naming `file`, at
/// `offset` (any offset when `None`).
#[derive(Clone, Debug)]
pub struct Refusal {
    pub file: String,
    pub offset: Option<u64>,
}

impl Refusal {
    pub fn at(file: &str, offset: u64) -> Self {
        Self {
            file: file.to_owned(),
            offset: Some(offset),
        }
    }

    fn anywhere_in(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            offset: None,
        }
    }
}

/// What a successful open must have recovered.
#[derive(Clone, Debug)]
pub enum Opened {
    /// Exactly LSNs `1..=intact`, byte-exact, nothing skipped, with this cut
    /// of the last segment reported (none: no cut) and exactly these files
    /// removed, and at least these listed as stray.
    Exactly {
        intact: u64,
        cut: Option<Cut>,
        removed: Vec<String>,
        stray: Vec<String>,
    },
    /// Skip-corrupted: the original records of some LSNs, in order, LSNs
    /// `1..=intact` among them, and every missing LSN counted as skipped.
    Salvage { intact: u64 },
}

/// A reported cut: `bytes` zeroed from `offset` of `file`.
#[derive(Clone, Debug)]
pub struct Cut {
    pub file: String,
    pub offset: u64,
    pub bytes: u64,
}

/// The outcomes one mode may have.
pub struct Allowed {
    pub open: Option<Opened>,
    pub refusals: Vec<Refusal>,
}

fn exactly(intact: u64, cut: Option<Cut>, removed: &[String]) -> Opened {
    Opened::Exactly {
        intact,
        cut,
        removed: removed.to_vec(),
        stray: Vec::new(),
    }
}

fn opens(opened: Opened) -> Allowed {
    Allowed {
        open: Some(opened),
        refusals: Vec::new(),
    }
}

fn refuses(refusals: Vec<Refusal>) -> Allowed {
    Allowed {
        open: None,
        refusals,
    }
}

fn either(opened: Opened, refusals: Vec<Refusal>) -> Allowed {
    Allowed {
        open: Some(opened),
        refusals,
    }
}

/// A cut of `bytes` at `offset` of `file`; none when there is nothing to zero.
fn cut(file: &str, offset: u64, bytes: u64) -> Option<Cut> {
    (bytes > 0).then(|| Cut {
        file: file.to_owned(),
        offset,
        bytes,
    })
}

impl Expect {
    /// The kind of damage, for the run's summary.
    pub fn kind(&self) -> &'static str {
        match self {
            Expect::Clean { .. } => "clean end",
            Expect::Tail {
                torn_write: true, ..
            } => "torn write",
            Expect::Tail { .. } => "damaged tail",
            Expect::Inside { .. } => "damage inside",
            Expect::Header { .. } => "damaged header",
            Expect::Gap { .. } => "gap",
            Expect::Refused { .. } => "misplaced",
            Expect::Overlap { .. } => "overlap",
            Expect::Stray { .. } => "stray files",
        }
    }

    /// What `mode` may do with a log damaged like this (docs/durability.md,
    /// "Recovery modes").
    pub fn allowed(&self, mode: RecoveryMode) -> Allowed {
        use RecoveryMode::*;
        match self {
            Expect::Clean { intact } => opens(exactly(*intact, None, &[])),
            Expect::Tail {
                file,
                offset,
                intact,
                cut_bytes,
                torn_write,
            } => {
                let cut_tail = exactly(*intact, cut(file, *offset, *cut_bytes), &[]);
                let salvage = Opened::Salvage { intact: *intact };
                let refusal = vec![Refusal::at(file, *offset)];
                match mode {
                    Absolute => refuses(refusal),
                    TolerateTail if *torn_write => opens(cut_tail),
                    TolerateTail => either(cut_tail, refusal),
                    PointInTime => opens(cut_tail),
                    SkipCorrupted if *torn_write => opens(salvage),
                    SkipCorrupted => either(salvage, refusal),
                }
            }
            Expect::Inside {
                file,
                offset,
                intact,
                cut_bytes,
                later,
            } => match mode {
                PointInTime => opens(exactly(*intact, cut(file, *offset, *cut_bytes), later)),
                SkipCorrupted => opens(Opened::Salvage { intact: *intact }),
                _ => refuses(vec![Refusal::at(file, *offset)]),
            },
            Expect::Header {
                file,
                index,
                intact,
                from_here,
            } => match mode {
                PointInTime if *index > 0 => opens(exactly(*intact, None, from_here)),
                _ => refuses(vec![Refusal::anywhere_in(file)]),
            },
            Expect::Gap {
                next,
                intact,
                later,
            } => match mode {
                PointInTime => opens(exactly(*intact, None, later)),
                _ => refuses(vec![Refusal::at(next, 0)]),
            },
            Expect::Refused { files } => {
                refuses(files.iter().map(|file| Refusal::at(file, 0)).collect())
            }
            Expect::Overlap {
                refusals,
                intact,
                removed,
            } => match mode {
                PointInTime => either(exactly(*intact, None, removed), refusals.clone()),
                _ => refuses(refusals.clone()),
            },
            Expect::Stray {
                intact,
                stray,
                removed,
            } => opens(Opened::Exactly {
                intact: *intact,
                cut: None,
                removed: removed.clone(),
                stray: stray.clone(),
            }),
        }
    }
}

/// Where the records of `log` are first damaged in `damaged` (the same
/// files, some bytes changed, some files shorter or longer), and what that
/// means. Bytes no record covers (padding, the zeros after a seal) are
/// ignored, except after the last record of the last segment, where
/// anything but zeros is damage.
pub fn classify(log: &OriginalLog, damaged: &Image) -> Expect {
    let layout = &log.expected.layout;
    let last = log.last_segment();
    let names_from = |first: usize| -> Vec<String> {
        (first..=last)
            .map(|index| log.segment_name(index))
            .collect()
    };
    for (index, segment) in layout.segments.iter().enumerate() {
        let name = log.segment_name(index);
        let original = log.segment(index);
        let now = &damaged[&name];
        let header = 0..SEGMENT_HEADER_SIZE as usize;
        if now.get(header.clone()) != original.get(header) {
            return Expect::Header {
                index,
                intact: segment.first_lsn - 1,
                from_here: names_from(index),
                file: name,
            };
        }
        // A record's padding is not covered by its CRC but is part of it on
        // disk: a file that ends inside it ends inside the record.
        let mut items: Vec<(u64, u64, u64, u64)> = layout
            .records_in(index)
            .iter()
            .map(|record| {
                let (offset, end) = (record.offset, record.end());
                (offset, end, record.padded_end(), record.first_lsn - 1)
            })
            .collect();
        if let Some(seal) = segment.seal_offset {
            let sealed_at = layout.segments[index + 1].first_lsn - 1;
            items.push((seal, seal + SEAL_BYTES, seal + SEAL_SIZE, sealed_at));
        }
        for (offset, end, padded_end, intact) in items {
            let range = offset as usize..end as usize;
            if now.get(range.clone()) == original.get(range) && now.len() as u64 >= padded_end {
                continue;
            }
            let cut_bytes = nonzero_length(now, offset);
            if index < last {
                return Expect::Inside {
                    file: name,
                    offset,
                    intact,
                    cut_bytes,
                    later: names_from(index + 1),
                };
            }
            return tail(log, damaged, name, offset, intact, cut_bytes);
        }
        if index == last {
            let cut_bytes = nonzero_length(now, segment.end);
            return tail(log, damaged, name, segment.end, log.records(), cut_bytes);
        }
    }
    unreachable!("a log has a last segment")
}

fn tail(
    log: &OriginalLog,
    damaged: &Image,
    file: String,
    offset: u64,
    intact: u64,
    cut_bytes: u64,
) -> Expect {
    if cut_bytes == 0 {
        return Expect::Clean { intact };
    }
    Expect::Tail {
        torn_write: is_torn_write(log, damaged),
        file,
        offset,
        intact,
        cut_bytes,
    }
}

/// Bytes from `from` to just past the last non-zero byte of `bytes`: what a
/// cut at `from` zeroes.
fn nonzero_length(bytes: &[u8], from: u64) -> u64 {
    if from >= bytes.len() as u64 {
        return 0;
    }
    end_of_nonzero(bytes, from) - from
}

/// True when `damaged` is a state a crash during the log's last flush can
/// leave: every file but the last segment unchanged, the last segment of
/// the same length, and every byte that differs written by the last flush
/// and holding what it held before that flush (sectors that did not reach
/// the disk).
fn is_torn_write(log: &OriginalLog, damaged: &Image) -> bool {
    let name = log.segment_name(log.last_segment());
    if damaged.len() != log.image.len()
        || damaged
            .iter()
            .any(|(file, bytes)| *file != name && log.image.get(file) != Some(bytes))
    {
        return false;
    }
    let (now, original) = (&damaged[&name], log.segment(log.last_segment()));
    let before = log
        .before_last_flush
        .get(&name)
        .map_or(&[][..], Vec::as_slice);
    now.len() == original.len()
        && now
            .iter()
            .zip(original)
            .enumerate()
            .all(|(at, (now, new))| {
                now == new
                    || (at as u64 >= log.last_flush_start
                        && *now == before.get(at).copied().unwrap_or(0))
            })
}
