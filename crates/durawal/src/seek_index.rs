//! Where records are, sparsely, so that a replay from an LSN deep inside a
//! segment starts reading near it instead of at the segment's start.
//!
//! The index lives in memory only: recovery fills it while it reads every
//! record at open (it reads them anyway), and appends add to it. One point is
//! kept per [`SPACING`] bytes of records, so a replay from any LSN reads at
//! most that much before its first record, and a log of 1 GiB costs 16,384
//! points (256 KiB).

use std::collections::BTreeMap;

/// Bytes of records between two points of a segment.
pub const SPACING: u64 = 64 << 10;

/// A record's LSN (its first, for a batch) and the offset of its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeekPoint {
    /// LSN of the record.
    pub lsn: u64,
    /// Offset of its header in its segment.
    pub offset: u64,
}

/// The points of one segment, in order; a point is added once the records
/// have moved [`SPACING`] bytes past the last one.
#[derive(Clone, Debug, Default)]
pub struct SegmentPoints(Vec<SeekPoint>);

impl SegmentPoints {
    /// Notes the record at `offset` carrying `lsn`.
    pub fn note(&mut self, lsn: u64, offset: u64) {
        if self
            .0
            .last()
            .is_none_or(|last| offset >= last.offset + SPACING)
        {
            self.0.push(SeekPoint { lsn, offset });
        }
    }

    /// The last point at or before `lsn`.
    fn at_or_before(&self, lsn: u64) -> Option<SeekPoint> {
        let after = self.0.partition_point(|point| point.lsn <= lsn);
        after.checked_sub(1).map(|index| self.0[index])
    }
}

/// The points of every segment of the log, by the segment's first LSN.
#[derive(Clone, Debug, Default)]
pub struct SeekIndex(BTreeMap<u64, SegmentPoints>);

impl SeekIndex {
    /// Takes the points of the segment starting at `segment`.
    pub fn insert(&mut self, segment: u64, points: SegmentPoints) {
        self.0.insert(segment, points);
    }

    /// Notes the record at `offset` of the segment starting at `segment`.
    pub fn note(&mut self, segment: u64, lsn: u64, offset: u64) {
        self.0.entry(segment).or_default().note(lsn, offset);
    }

    /// Forgets a segment (replaced under the same name while still empty).
    pub fn forget(&mut self, segment: u64) {
        self.0.remove(&segment);
    }

    /// Where to start reading for `lsn`: the segment that holds it and the
    /// last point of that segment at or before it.
    pub fn seek(&self, lsn: u64) -> Option<(u64, SeekPoint)> {
        let (&segment, points) = self.0.range(..=lsn).next_back()?;
        points.at_or_before(lsn).map(|point| (segment, point))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeks_to_the_last_point_at_or_before_an_lsn_in_its_segment() {
        let mut index = SeekIndex::default();
        // Segment 1: records of 1 KiB from offset 4096; segment 1000 after it.
        for lsn in 1..1000 {
            index.note(1, lsn, 4096 + (lsn - 1) * 1024);
        }
        index.note(1000, 1000, 4096);
        assert_eq!(
            index.seek(1),
            Some((
                1,
                SeekPoint {
                    lsn: 1,
                    offset: 4096
                }
            ))
        );
        assert_eq!(
            index.seek(64),
            Some((
                1,
                SeekPoint {
                    lsn: 1,
                    offset: 4096
                }
            ))
        );
        assert_eq!(
            index.seek(65),
            Some((
                1,
                SeekPoint {
                    lsn: 65,
                    offset: 4096 + 64 * 1024
                }
            ))
        );
        assert_eq!(
            index.seek(999),
            Some((
                1,
                SeekPoint {
                    lsn: 961,
                    offset: 4096 + 960 * 1024
                }
            ))
        );
        assert_eq!(
            index.seek(5000),
            Some((
                1000,
                SeekPoint {
                    lsn: 1000,
                    offset: 4096
                }
            ))
        );
        assert_eq!(index.seek(0), None);
    }
}
