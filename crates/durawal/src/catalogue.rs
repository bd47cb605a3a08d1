//! The segments of an open log and the readers that still need them.
//!
//! The flusher installs segments, truncation removes them, replay cursors pin
//! the oldest LSN they may still read: nothing that a reader still needs is
//! removed (unless retention is told to stop waiting for a lagging reader,
//! which then gets `Error::Truncated` instead of a missing file).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// One segment file of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Its path.
    pub path: PathBuf,
    /// Its size on disk.
    pub bytes: u64,
    /// When it was sealed (its last modification, for one found sealed at
    /// open); `None` while it is the segment being written.
    pub sealed_at: Option<SystemTime>,
    /// LSN of its last durable checkpoint record.
    pub last_checkpoint: Option<u64>,
}

/// The segments by first LSN, and the pins of readers.
#[derive(Debug, Default)]
pub struct SegmentCatalogue {
    segments: BTreeMap<u64, SegmentEntry>,
    /// LSN -> number of readers pinned there.
    pins: BTreeMap<u64, usize>,
}

impl SegmentCatalogue {
    /// A catalogue of the segments recovery kept, by first LSN.
    pub fn new(segments: impl IntoIterator<Item = (u64, SegmentEntry)>) -> Self {
        Self {
            segments: segments.into_iter().collect(),
            pins: BTreeMap::new(),
        }
    }

    /// First LSN of the first segment, `None` when there is no segment.
    pub fn first_lsn(&self) -> Option<u64> {
        self.segments.keys().next().copied()
    }

    /// Number of segment files.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of all segment files.
    pub fn total_bytes(&self) -> u64 {
        self.segments.values().map(|entry| entry.bytes).sum()
    }

    /// The segments in log order.
    pub fn segments(&self) -> impl Iterator<Item = (u64, &SegmentEntry)> {
        self.segments.iter().map(|(&first, entry)| (first, entry))
    }

    /// Notes a segment made visible under its name (replacing an empty one
    /// of the same name).
    pub fn installed(&mut self, first_lsn: u64, entry: SegmentEntry) {
        self.segments.insert(first_lsn, entry);
    }

    /// Notes that the segment starting at `first_lsn` was sealed at `when`.
    pub fn sealed(&mut self, first_lsn: u64, when: SystemTime) {
        if let Some(entry) = self.segments.get_mut(&first_lsn) {
            entry.sealed_at = Some(when);
        }
    }

    /// Notes that the segment starting at `first_lsn` lost its seal to a
    /// cut and takes appends again.
    pub fn unsealed(&mut self, first_lsn: u64) {
        if let Some(entry) = self.segments.get_mut(&first_lsn) {
            entry.sealed_at = None;
        }
    }

    /// Notes that the checkpoint at `lsn` in the segment starting at
    /// `first_lsn` is durable.
    pub fn checkpointed(&mut self, first_lsn: u64, lsn: u64) {
        if let Some(entry) = self.segments.get_mut(&first_lsn) {
            entry.last_checkpoint = Some(lsn);
        }
    }

    /// Sets what the segment's last checkpoint is after a cut.
    pub fn set_last_checkpoint(&mut self, first_lsn: u64, lsn: Option<u64>) {
        if let Some(entry) = self.segments.get_mut(&first_lsn) {
            entry.last_checkpoint = lsn;
        }
    }

    /// LSN of the latest durable checkpoint in the log.
    pub fn last_checkpoint(&self) -> Option<u64> {
        self.segments
            .values()
            .rev()
            .find_map(|entry| entry.last_checkpoint)
    }

    /// Forgets a removed segment.
    pub fn removed(&mut self, first_lsn: u64) {
        self.segments.remove(&first_lsn);
    }

    /// The oldest LSN a reader still needs; with `lag_limit`, only among
    /// readers whose segment and the ones after it take at most that many
    /// bytes (a reader further behind no longer holds removal back).
    pub fn lowest_pin_within(&self, lag_limit: Option<u64>) -> Option<u64> {
        let Some(limit) = lag_limit else {
            return self.pins.keys().next().copied();
        };
        self.pins.keys().copied().find(|&pin| {
            let start = self
                .segments
                .range(..=pin)
                .next_back()
                .map_or(0, |(&first, _)| first);
            let lag: u64 = self
                .segments
                .range(start..)
                .map(|(_, entry)| entry.bytes)
                .sum();
            lag <= limit
        })
    }

    /// The sealed segments (never the last one, which appends may still go
    /// to) all of whose records have LSNs below `bound`, oldest first, and
    /// the first LSN of the segment after them.
    pub fn wholly_below(&self, bound: u64) -> (Vec<(u64, PathBuf)>, Option<u64>) {
        let mut doomed = Vec::new();
        let mut segments = self.segments.iter().peekable();
        while let (Some((&first, entry)), Some((&next, _))) = (segments.next(), segments.peek()) {
            if next > bound {
                return (doomed, Some(first));
            }
            doomed.push((first, entry.path.clone()));
        }
        let after = self.segments.keys().nth(doomed.len()).copied();
        (doomed, after)
    }

    fn add_pin(&mut self, lsn: u64) {
        *self.pins.entry(lsn).or_default() += 1;
    }

    fn drop_pin(&mut self, lsn: u64) {
        if let Some(count) = self.pins.get_mut(&lsn) {
            *count -= 1;
            if *count == 0 {
                self.pins.remove(&lsn);
            }
        }
    }
}

/// The catalogue as the log shares it between threads.
pub type SharedCatalogue = Arc<Mutex<SegmentCatalogue>>;

/// Locks the catalogue. It holds no invariant a panic could break halfway
/// (every change is one map operation), so a poisoned lock is taken back.
pub fn lock(catalogue: &SharedCatalogue) -> MutexGuard<'_, SegmentCatalogue> {
    catalogue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A reader's claim on every record from `lsn` on; released when dropped.
#[derive(Debug)]
pub struct Pin {
    catalogue: SharedCatalogue,
    lsn: u64,
}

impl Pin {
    /// Pins `lsn` in `catalogue`.
    pub fn new(catalogue: SharedCatalogue, lsn: u64) -> Self {
        lock(&catalogue).add_pin(lsn);
        Self { catalogue, lsn }
    }

    /// Moves the pin forward to `lsn` (a reader that moved on releases what
    /// is behind it).
    pub fn advance(&mut self, lsn: u64) {
        if lsn > self.lsn {
            let mut catalogue = lock(&self.catalogue);
            catalogue.drop_pin(self.lsn);
            catalogue.add_pin(lsn);
            self.lsn = lsn;
        }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        lock(&self.catalogue).drop_pin(self.lsn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> SegmentEntry {
        SegmentEntry {
            path: PathBuf::from(name),
            bytes: 100,
            sealed_at: None,
            last_checkpoint: None,
        }
    }

    #[test]
    fn only_segments_wholly_below_the_bound_and_never_the_last_are_removable() {
        let catalogue =
            SegmentCatalogue::new([(1, entry("a")), (50, entry("b")), (90, entry("c"))]);
        let starts = |bound| {
            let (doomed, after) = catalogue.wholly_below(bound);
            let firsts: Vec<u64> = doomed.into_iter().map(|(first, _)| first).collect();
            (firsts, after)
        };
        assert_eq!(starts(1), (vec![], Some(1)));
        assert_eq!(starts(49), (vec![], Some(1)));
        assert_eq!(starts(50), (vec![1], Some(50)));
        assert_eq!(starts(89), (vec![1], Some(50)));
        assert_eq!(starts(90), (vec![1, 50], Some(90)));
        assert_eq!(starts(u64::MAX), (vec![1, 50], Some(90)));
        assert_eq!(catalogue.total_bytes(), 300);
    }

    #[test]
    fn pins_count_readers_and_move_forward_only() {
        let shared: SharedCatalogue = Arc::default();
        let mut first = Pin::new(shared.clone(), 10);
        let second = Pin::new(shared.clone(), 10);
        assert_eq!(lock(&shared).lowest_pin_within(None), Some(10));
        first.advance(40);
        assert_eq!(lock(&shared).lowest_pin_within(None), Some(10));
        drop(second);
        assert_eq!(lock(&shared).lowest_pin_within(None), Some(40));
        first.advance(5);
        assert_eq!(lock(&shared).lowest_pin_within(None), Some(40));
        drop(first);
        assert_eq!(lock(&shared).lowest_pin_within(None), None);
    }

    #[test]
    fn a_pin_further_behind_than_the_lag_limit_is_passed_over() {
        let shared: SharedCatalogue = Arc::new(Mutex::new(SegmentCatalogue::new([
            (1, entry("a")),
            (50, entry("b")),
            (90, entry("c")),
        ])));
        let behind = Pin::new(shared.clone(), 10);
        let recent = Pin::new(shared.clone(), 60);
        let catalogue = lock(&shared);
        assert_eq!(catalogue.lowest_pin_within(None), Some(10));
        // Pin 10 is 300 bytes behind the end, pin 60 is 200.
        assert_eq!(catalogue.lowest_pin_within(Some(300)), Some(10));
        assert_eq!(catalogue.lowest_pin_within(Some(299)), Some(60));
        assert_eq!(catalogue.lowest_pin_within(Some(199)), None);
        drop(catalogue);
        drop((behind, recent));
    }
}
