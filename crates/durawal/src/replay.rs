//! Reading records back in LSN order, many at a time.
//!
//! A cursor returns batches (one byte buffer, record end offsets and LSNs)
//! so that a binding crosses into native code once per batch, not per record.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalogue::Pin;
use crate::error::{Error, Result};
use crate::format::{parse_segment_name, segment_file_name, BatchEntries, RecordKind};
use crate::scanner::{ScanItem, SegmentScanner};
use crate::seek_index::SeekPoint;
use crate::storage::{OpenMode, Storage};

/// Records read in one step.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayBatch {
    /// Payloads, back to back.
    pub data: Vec<u8>,
    /// End offset in `data` of each record.
    pub ends: Vec<u32>,
    /// LSN of each record.
    pub lsns: Vec<u64>,
    /// Indexes (into `lsns`) of the records that are checkpoints.
    pub checkpoints: Vec<u32>,
}

impl ReplayBatch {
    fn push(&mut self, lsn: u64, payload: &[u8]) {
        self.data.extend_from_slice(payload);
        self.ends.push(self.data.len() as u32);
        self.lsns.push(lsn);
    }

    fn push_checkpoint(&mut self, lsn: u64, payload: &[u8]) {
        self.checkpoints.push(self.lsns.len() as u32);
        self.push(lsn, payload);
    }

    /// Number of records in the batch.
    pub fn len(&self) -> usize {
        self.lsns.len()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.lsns.is_empty()
    }
}

/// A position in the log, moving forward.
pub struct ReplayCursor {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    scanner: Option<SegmentScanner>,
    /// First LSNs of the segments present when replay started, in order.
    segment_starts: Vec<u64>,
    from: u64,
    to: u64,
    skip_corrupted: bool,
    /// Keeps truncation away from the segments still to be read.
    pin: Option<Pin>,
    /// The segment after the one whose seal was read last, when its first
    /// LSN was past `to` then: it is opened once `to` reaches it.
    next_segment: Option<u64>,
    /// Where to start, until the first segment is opened (which waits, for
    /// a following reader, until `to` reaches `from`).
    start: Option<Option<(u64, SeekPoint)>>,
    /// The start waited for `to` to reach `from`.
    deferred_start: bool,
}

impl ReplayCursor {
    /// A cursor over the records with LSNs in `from..=to` of the log in `dir`,
    /// whose segments start at `segment_starts` (in order), starting at
    /// `hint` (a segment's first LSN and a known record of it at or before
    /// `from`, from the seek index) when there is one. `pin`, when given,
    /// is moved forward as the cursor leaves segments behind.
    pub fn new(
        storage: Arc<dyn Storage>,
        dir: &Path,
        range: (u64, u64),
        segment_starts: Vec<u64>,
        skip_corrupted: bool,
        hint: Option<(u64, SeekPoint)>,
        pin: Option<Pin>,
    ) -> Result<Self> {
        let (from, to) = range;
        let mut cursor = Self {
            storage,
            dir: dir.to_owned(),
            scanner: None,
            segment_starts,
            from,
            to,
            skip_corrupted,
            pin,
            next_segment: None,
            start: Some(hint),
            deferred_start: false,
        };
        cursor.open_start()?;
        cursor.deferred_start = cursor.start.is_some();
        Ok(cursor)
    }

    /// Opens the segment that holds `from` once `to` reaches it.
    fn open_start(&mut self) -> Result<()> {
        if self.from > self.to {
            return Ok(());
        }
        let Some(hint) = self.start.take() else {
            return Ok(());
        };
        if self.deferred_start {
            // Listed when the cursor was made, before its first record was
            // durable: segments made since (a log that was empty) count too.
            self.segment_starts = list_segments(&*self.storage, &self.dir)?;
        }
        let starts = &self.segment_starts;
        let start = starts
            .iter()
            .rev()
            .find(|&&first| first <= self.from)
            .or(starts.first());
        if let Some(&first) = start {
            let mut scanner = self.open_segment(first)?;
            // Start near `from` when the seek index knows a record of
            // this segment at or before it; else read from the start.
            if let Some((segment, point)) = hint {
                if segment == first && point.lsn > first {
                    scanner.jump_to(point);
                }
            }
            self.scanner = Some(scanner);
        }
        Ok(())
    }

    /// Opens the segment starting at `first_lsn`; one that is gone was
    /// removed by truncation (by retention that stopped waiting for this
    /// reader, or by the writer of a log read from another process).
    fn open_segment(&mut self, first_lsn: u64) -> Result<SegmentScanner> {
        if let Some(pin) = &mut self.pin {
            pin.advance(first_lsn);
        }
        let path = self.dir.join(segment_file_name(first_lsn));
        match self.storage.open(&path, OpenMode::Read, false) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(Error::Truncated {
                lsn: first_lsn.max(self.from),
                path,
            }),
            Err(error) => Err(Error::open_failed(&path, error)),
            Ok(file) => SegmentScanner::read_header(file, &path),
        }
    }

    /// Skip-corrupted mode: leaves a segment that ends without a seal for the
    /// next segment that was there when replay started.
    fn skip_to_next_segment(&mut self) -> Result<()> {
        let current = self
            .scanner
            .as_ref()
            .map_or(0, |scanner| scanner.header().first_lsn);
        let next = self
            .segment_starts
            .iter()
            .find(|&&first| first > current)
            .copied();
        self.scanner = match next {
            Some(first) if first <= self.to => Some(self.open_segment(first)?),
            _ => None,
        };
        Ok(())
    }

    /// Sets the end of the range to `to`, the durable LSN of the moment, for
    /// a reader that follows the log: the cursor stays where it stopped and
    /// goes on from there. `to` is lower than before only after the log was
    /// cut back (`truncateAfter`), and then the cursor must not read past it.
    pub fn follow_to(&mut self, to: u64) -> Result<()> {
        if to == self.to {
            return Ok(());
        }
        self.to = to;
        self.open_start()?;
        if let Some(scanner) = self.scanner.as_mut() {
            scanner.refresh()?;
        }
        if let Some(next) = self.next_segment.filter(|&next| next <= to) {
            self.next_segment = None;
            self.scanner = Some(self.open_segment(next)?);
        }
        Ok(())
    }

    /// The next records, up to about `max_bytes` of payload or `max_records`
    /// records (at least one record when any is left); `None` at the end.
    pub fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Option<ReplayBatch>> {
        let mut batch = ReplayBatch::default();
        while batch.len() < max_records && batch.data.len() < max_bytes {
            let Some(scanner) = self.scanner.as_mut() else {
                break;
            };
            // Kept where it stands: a following reader extends `to`.
            if scanner.next_lsn() > self.to {
                break;
            }
            match scanner.next_item()? {
                ScanItem::Record { header } => {
                    let wanted = self.from..=self.to;
                    let mut take = |lsn: u64, payload: &[u8]| {
                        if wanted.contains(&lsn) {
                            batch.push(lsn, payload);
                        }
                    };
                    match header.kind {
                        RecordKind::Checkpoint if wanted.contains(&header.lsn) => {
                            batch.push_checkpoint(header.lsn, scanner.payload());
                        }
                        RecordKind::Batch => {
                            let entries = BatchEntries::new(scanner.payload())
                                .expect("scanner checked the batch");
                            for (index, entry) in entries.enumerate() {
                                take(
                                    header.lsn + index as u64,
                                    entry.expect("scanner checked the batch"),
                                );
                            }
                        }
                        _ => take(header.lsn, scanner.payload()),
                    }
                }
                ScanItem::Seal { seal, .. } => {
                    let next = seal.last_lsn + 1;
                    self.scanner = None;
                    if next <= self.to {
                        self.scanner = Some(self.open_segment(next)?);
                    } else {
                        self.next_segment = Some(next);
                    }
                }
                ScanItem::End { offset }
                | ScanItem::Stop { offset }
                | ScanItem::Damage { offset, .. }
                    if self.skip_corrupted =>
                {
                    if scanner.skip_damage(offset)?.is_none() {
                        self.skip_to_next_segment()?;
                    }
                }
                ScanItem::End { offset } | ScanItem::Stop { offset } => {
                    return Err(Error::corrupt(
                        scanner.path(),
                        offset,
                        format!(
                            "log ends at LSN {} but replay expected records up to LSN {}",
                            scanner.next_lsn() - 1,
                            self.to
                        ),
                    ));
                }
                ScanItem::Damage { offset, reason } => {
                    return Err(Error::corrupt(scanner.path(), offset, reason));
                }
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}

/// The first LSNs of the segments in `dir`, in order.
pub fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>> {
    let names = storage
        .list_dir(dir)
        .map_err(|e| Error::io("readdir", dir, e))?;
    let mut starts: Vec<u64> = names
        .iter()
        .filter_map(|name| parse_segment_name(name))
        .collect();
    starts.sort_unstable();
    Ok(starts)
}
