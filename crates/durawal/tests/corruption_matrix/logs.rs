//! The logs the matrix damages: small real logs written by `durawal::Wal` on
//! the in-memory filesystem, in flushes of a few records (so that format 3
//! flags the first record of each), with what was appended and where the
//! layout model says each record lies. Each profile fixes the record sizes,
//! the segment sizes and how many segments the log spans.

use std::path::Path;
use std::sync::Arc;

use crate::common::memory::{image_of, storage_with, Image, MemoryStorage, MEMORY_DIR};
use crate::common::{segment_as_format_2, Expected, LayoutModel, Rng, RECORD_HEADER_SIZE};
use durawal::format::PREPARED_SEGMENT_NAME;
use durawal::{DirectIo, Options, RecoveryMode, SyncPolicy, Wal};

/// What kind of log to write.
pub struct Profile {
    pub name: &'static str,
    /// Payload lengths of records, inclusive.
    pub record_len: (u64, u64),
    /// One append in this many is a batch (of up to four records), one in
    /// `3 * batch_every` a checkpoint.
    pub batch_every: u64,
    /// Records per flush are drawn from `1..=flush_max`.
    pub flush_max: u64,
    pub first_segment_size: u64,
    pub segment_size: u64,
    /// Segments the log spans at least.
    pub segments: usize,
    /// Physical records the last segment holds at least.
    pub last_segment_records: usize,
    /// The log's one segment is rewritten as format 2 wrote it (no
    /// synced-before flags), so that the tear-window rule, which logs of
    /// format 2 still rely on, meets the same damage.
    pub format_2: bool,
}

/// Segment size of most profiles: the smallest, so that a few hundred records span several.
const SMALL: u64 = 64 * 1024;

pub const TINY: Profile = Profile {
    name: "tiny records",
    record_len: (1, 40),
    batch_every: 5,
    flush_max: 8,
    first_segment_size: SMALL,
    segment_size: SMALL,
    segments: 3,
    last_segment_records: 24,
    format_2: false,
};

pub const MEDIUM: Profile = Profile {
    name: "records of about 500 bytes",
    record_len: (400, 600),
    batch_every: 4,
    flush_max: 4,
    first_segment_size: SMALL,
    segment_size: 2 * SMALL,
    segments: 3,
    last_segment_records: 12,
    format_2: false,
};

pub const LARGE: Profile = Profile {
    name: "multi-KiB records",
    record_len: (2048, 8192),
    batch_every: 3,
    flush_max: 2,
    first_segment_size: SMALL,
    segment_size: SMALL,
    segments: 4,
    last_segment_records: 5,
    format_2: false,
};

pub const FORMAT_2: Profile = Profile {
    name: "a format-2 segment",
    record_len: (1, 700),
    batch_every: 4,
    flush_max: 3,
    first_segment_size: SMALL,
    segment_size: SMALL,
    segments: 1,
    last_segment_records: 30,
    format_2: true,
};

/// A log as written, and what the matrix needs to know about it.
pub struct OriginalLog {
    pub profile: &'static Profile,
    /// Its files (the prepared next segment left out: recovery deletes it).
    pub image: Image,
    /// What was appended and where each record lies.
    pub expected: Expected,
    /// The log as it was before its last flush: what a torn write leaves
    /// where the last flush's sectors did not reach the disk.
    pub before_last_flush: Image,
    /// Where the bytes the last flush wrote begin in the last segment.
    pub last_flush_start: u64,
    /// The log as it was before the flush that opened its last segment
    /// (`None` for a log of one segment): where a fork of the log starts.
    pub before_last_rotation: Option<Image>,
}

impl OriginalLog {
    /// Index of the last segment.
    pub fn last_segment(&self) -> usize {
        self.expected.layout.segments.len() - 1
    }

    /// The name of segment `index`.
    pub fn segment_name(&self, index: usize) -> String {
        self.expected.layout.file_name(index)
    }

    /// The bytes of segment `index`.
    pub fn segment(&self, index: usize) -> &[u8] {
        &self.image[&self.segment_name(index)]
    }

    /// Logical records in the log.
    pub fn records(&self) -> u64 {
        self.expected.payloads.len() as u64
    }
}

/// The options every matrix log is written and opened with.
pub fn options(profile: &Profile, recovery: RecoveryMode) -> Options {
    Options {
        segment_size: profile.segment_size,
        first_segment_size: Some(profile.first_segment_size),
        recovery,
        direct_io: DirectIo::Off,
        sync: SyncPolicy::Never,
        ..Options::default()
    }
}

/// Writes a log of `profile` with records drawn from `rng`, one flush of
/// `1..=flush_max` records at a time, until it spans the profile's segments
/// and its last flush stayed inside the last segment.
pub fn write(profile: &'static Profile, rng: &mut Rng) -> OriginalLog {
    let storage = Arc::new(MemoryStorage::default());
    let wal = Wal::open_with(
        Path::new(MEMORY_DIR),
        options(profile, RecoveryMode::TolerateTail),
        storage.clone(),
        None,
    )
    .expect("open a new in-memory log");
    let mut expected = Expected {
        payloads: Vec::new(),
        layout: LayoutModel::growing_from(profile.first_segment_size, profile.segment_size),
    };
    let mut before_last_rotation = None;
    loop {
        let before_last_flush = image_of(&*storage);
        let segments_before = expected.layout.segments.len();
        let last_flush_start = expected.layout.segments[segments_before - 1].end;
        for _ in 0..rng.range(1, profile.flush_max) {
            append_one(profile, &wal, &mut expected, rng);
        }
        wal.sync(None).expect("sync");
        let segments = expected.layout.segments.len();
        if segments != segments_before {
            before_last_rotation = Some(before_last_flush);
            continue;
        }
        if segments >= profile.segments
            && expected.layout.records_in(segments - 1).len() >= profile.last_segment_records
        {
            wal.close().expect("close");
            let mut log = finish(
                profile,
                &storage,
                expected,
                before_last_flush,
                last_flush_start,
            );
            log.before_last_rotation = before_last_rotation;
            return log;
        }
    }
}

/// Appends a record, a batch or a checkpoint, as the profile mixes them.
fn append_one(profile: &Profile, wal: &Wal, expected: &mut Expected, rng: &mut Rng) {
    let (low, high) = profile.record_len;
    let choice = rng.range(0, 3 * profile.batch_every - 1);
    if choice == 0 {
        let length = rng.range(low, high) as usize;
        expected.checkpoint(wal, rng.bytes(length));
    } else if choice < 3 {
        let records = (0..rng.range(2, 4))
            .map(|_| {
                let length = rng.range(low, high) as usize;
                rng.bytes(length)
            })
            .collect();
        expected.append_batch(wal, records);
    } else {
        let length = rng.range(low, high) as usize;
        expected.append(wal, rng.bytes(length));
    }
}

/// Takes the written log's image, checks that the layout model placed every
/// record where the log wrote it (the matrix trusts the model for every
/// offset it damages), and applies the profile's rewrite.
fn finish(
    profile: &'static Profile,
    storage: &MemoryStorage,
    expected: Expected,
    mut before_last_flush: Image,
    last_flush_start: u64,
) -> OriginalLog {
    let mut image = image_of(storage);
    image.remove(PREPARED_SEGMENT_NAME);
    before_last_flush.remove(PREPARED_SEGMENT_NAME);
    let layout = &expected.layout;
    for record in &layout.records {
        let bytes = &image[&layout.file_name(record.segment)];
        let at = record.offset as usize;
        let length = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let lsn = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        assert_eq!(
            (u64::from(length), lsn),
            (record.payload_len, record.first_lsn),
            "the layout model and the log disagree at offset {at} of {}",
            layout.file_name(record.segment)
        );
        assert!(bytes.len() as u64 >= record.offset + RECORD_HEADER_SIZE);
    }
    if profile.format_2 {
        assert_eq!(
            layout.segments.len(),
            1,
            "format 2 is written into one segment"
        );
        let name = layout.file_name(0);
        let records = layout.records_in(0);
        segment_as_format_2(image.get_mut(&name).unwrap(), &records);
        let older: Vec<_> = records
            .into_iter()
            .filter(|record| record.padded_end() <= last_flush_start)
            .collect();
        segment_as_format_2(before_last_flush.get_mut(&name).unwrap(), &older);
    }
    OriginalLog {
        profile,
        image,
        expected,
        before_last_flush,
        last_flush_start,
        before_last_rotation: None,
    }
}

/// Writes a log of `profile` that is not this one (another log id, other
/// salts) from the same seed, so that its segments carry the same names.
pub fn another_log(profile: &'static Profile, seed: u64) -> OriginalLog {
    write(profile, &mut Rng::new(seed))
}

/// Continues `image` (a state of a log of `profile`) with records of other
/// sizes until it rotates into a new segment, as a second writer that
/// forked the log would; returns that segment's name and bytes.
pub fn forked_segment(
    profile: &'static Profile,
    image: &Image,
    rng: &mut Rng,
) -> (String, Vec<u8>) {
    let storage = storage_with(image);
    let wal = Wal::open_with(
        Path::new(MEMORY_DIR),
        options(profile, RecoveryMode::Absolute),
        storage.clone(),
        None,
    )
    .expect("open the fork");
    let names = |image: &Image| -> Vec<String> {
        image
            .keys()
            .filter(|name| durawal::format::parse_segment_name(name).is_some())
            .cloned()
            .collect()
    };
    let before = names(image);
    loop {
        let length = rng.range(1, profile.record_len.1 / 2 + 1) as usize;
        wal.append(&rng.bytes(length)).expect("append to the fork");
        wal.sync(None).expect("sync the fork");
        let now = image_of(&*storage);
        if let Some(new) = names(&now).into_iter().find(|name| !before.contains(name)) {
            wal.close().expect("close the fork");
            let bytes = image_of(&*storage).remove(&new).unwrap();
            return (new, bytes);
        }
    }
}
