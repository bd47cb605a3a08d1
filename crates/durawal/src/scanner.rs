//! Reads the records of one segment file in order and says exactly where and
//! why the valid part ends. Recovery and replay share it, so both apply the
//! same rules to the same bytes.

use std::path::{Path, PathBuf};

use crate::aligned_buffer::BLOCK_SIZE;
use crate::error::{Error, Result};
use crate::format::{
    chain_digest, BatchEntries, HeaderCheck, RecordHeader, RecordKind, SealPayload, SegmentHeader,
    CHECKPOINT_VERSION, RECORD_ALIGNMENT, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE,
    SYNCED_BEFORE_VERSION,
};
use crate::seek_index::{SeekPoint, SegmentPoints};
use crate::storage::{OpenMode, Storage, StorageFile};

/// Bytes read from the file at a time.
const READ_WINDOW: usize = 1 << 20;

/// One step of a scan.
#[derive(Debug)]
pub enum ScanItem {
    /// A data or batch record. Its payload is available through [`SegmentScanner::payload`].
    Record {
        /// Its header.
        header: RecordHeader,
    },
    /// The seal that closes the segment; it matched the records before it.
    Seal {
        /// Where the seal starts.
        offset: u64,
        /// What it says.
        seal: SealPayload,
    },
    /// The written part ends here cleanly: a zero header or the end of the file.
    End {
        /// Where the next record would go.
        offset: u64,
    },
    /// The next record holds an LSN past the limit set by
    /// [`SegmentScanner::stop_after`]; nothing was read past `offset`.
    Stop {
        /// Where that record starts.
        offset: u64,
    },
    /// Bytes that are not the next valid record of this segment.
    Damage {
        /// Where the damage starts.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Sequential reader of one segment.
pub struct SegmentScanner {
    file: Box<dyn StorageFile>,
    path: PathBuf,
    header: SegmentHeader,
    file_length: u64,
    position: u64,
    next_lsn: u64,
    digest: u32,
    record_count: u64,
    /// Records were skipped, so the digest and count no longer cover the
    /// whole segment and the seal can only be checked for its LSN.
    resumed: bool,
    /// Where the records read so far are, sparsely (for the seek index).
    seek_points: SegmentPoints,
    window: Vec<u8>,
    window_start: u64,
    last_payload: (usize, usize),
    /// Records holding an LSN above this are not read: see [`Self::stop_after`].
    last_wanted_lsn: u64,
    /// LSN of the last checkpoint record read.
    last_checkpoint: Option<u64>,
}

impl SegmentScanner {
    /// Opens `path` read-only: this fails for a misplaced entry (not a
    /// regular file) rather than for damage, which [`Self::read_header`] finds.
    pub fn open_file(storage: &dyn Storage, path: &Path) -> Result<Box<dyn StorageFile>> {
        storage
            .open(path, OpenMode::Read, false)
            .map_err(|e| Error::open_failed(path, e))
    }

    /// Checks the header of `file`, dropping cached pages first so that what
    /// is read is what the disk holds.
    pub fn read_header(file: Box<dyn StorageFile>, path: &Path) -> Result<Self> {
        file.drop_cache()
            .map_err(|e| Error::io("posix_fadvise", path, e))?;
        let file_length = file.length().map_err(|e| Error::io("stat", path, e))?;
        let mut scanner = Self {
            file,
            path: path.to_owned(),
            header: SegmentHeader {
                version: 0,
                salt: 0,
                log_id: [0; 16],
                first_lsn: 0,
                prev_seal_offset: 0,
                prev_digest: 0,
            },
            file_length,
            position: SEGMENT_HEADER_SIZE as u64,
            next_lsn: 0,
            digest: 0,
            record_count: 0,
            resumed: false,
            seek_points: SegmentPoints::default(),
            window: Vec::new(),
            window_start: 0,
            last_payload: (0, 0),
            last_wanted_lsn: u64::MAX,
            last_checkpoint: None,
        };
        // Read on its own rather than through the window: a replay that then
        // jumps deep into the segment would otherwise read a window it skips.
        let mut header_bytes = vec![0u8; SEGMENT_HEADER_SIZE.min(file_length as usize)];
        scanner.read_exact_at(&mut header_bytes, 0)?;
        scanner.header = SegmentHeader::decode(&header_bytes)
            .map_err(|reason| Error::corrupt(path, 0, reason))?;
        scanner.next_lsn = scanner.header.first_lsn;
        Ok(scanner)
    }

    /// The checked segment header.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the segment file.
    pub fn file_length(&self) -> u64 {
        self.file_length
    }

    /// LSN the next record must carry.
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// Where the next record starts.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Chained digest of the records read so far.
    pub fn digest(&self) -> u32 {
        self.digest
    }

    /// LSN of the last checkpoint record read so far.
    pub fn last_checkpoint(&self) -> Option<u64> {
        self.last_checkpoint
    }

    /// Logical records read so far.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// Forgets what was read ahead and the file's length, for a reader that
    /// follows a log being written: bytes read past the old end were zeros
    /// or a torn write then, and are records now.
    pub fn refresh(&mut self) -> Result<()> {
        self.window.clear();
        self.window_start = 0;
        self.file_length = self
            .file
            .length()
            .map_err(|e| Error::io("stat", &self.path, e))?;
        Ok(())
    }

    /// Makes the scan end with [`ScanItem::Stop`] at the first record that
    /// holds an LSN above `lsn` (a whole batch, when the LSN is inside one):
    /// where `truncateAfter(lsn)` cuts the log.
    pub fn stop_after(&mut self, lsn: u64) {
        self.last_wanted_lsn = lsn;
    }

    /// The payload of the record last returned by [`Self::next_item`].
    pub fn payload(&self) -> &[u8] {
        &self.window[self.last_payload.0..self.last_payload.1]
    }

    /// Reads the next item and advances past it when it is a record or seal.
    pub fn next_item(&mut self) -> Result<ScanItem> {
        let offset = self.position;
        match self.check_record_at(offset)? {
            Candidate::Zero | Candidate::EndOfFile => Ok(ScanItem::End { offset }),
            Candidate::Invalid(reason) => Ok(ScanItem::Damage {
                offset,
                reason: reason.into(),
            }),
            Candidate::Valid(header, payload_range) => self.accept(offset, header, payload_range),
        }
    }

    fn accept(
        &mut self,
        offset: u64,
        header: RecordHeader,
        payload_range: (usize, usize),
    ) -> Result<ScanItem> {
        self.last_payload = payload_range;
        if header.synced_before && self.header.version < SYNCED_BEFORE_VERSION {
            return Ok(ScanItem::Damage {
                offset,
                reason: format!(
                    "synced-before flag in a segment of format version {}",
                    self.header.version
                ),
            });
        }
        let expected_last = self.next_lsn.wrapping_sub(1);
        match header.kind {
            RecordKind::Seal => {
                let seal = SealPayload::decode(self.payload());
                let matches = seal.is_some_and(|seal| {
                    header.lsn == expected_last
                        && seal.last_lsn == expected_last
                        && (self.resumed
                            || (seal.digest == self.digest
                                && seal.record_count == self.record_count))
                });
                match seal {
                    Some(seal) if matches => {
                        self.position += header.record_size() as u64;
                        Ok(ScanItem::Seal { offset, seal })
                    }
                    _ => Ok(ScanItem::Damage {
                        offset,
                        reason: "seal does not match the records before it".into(),
                    }),
                }
            }
            RecordKind::Checkpoint if self.header.version < CHECKPOINT_VERSION => {
                Ok(ScanItem::Damage {
                    offset,
                    reason: "checkpoint record in a segment of format version 1".into(),
                })
            }
            RecordKind::Data | RecordKind::Batch | RecordKind::Checkpoint => {
                if header.lsn != self.next_lsn {
                    return Ok(ScanItem::Damage {
                        offset,
                        reason: format!(
                            "record carries LSN {} where LSN {} was expected",
                            header.lsn, self.next_lsn
                        ),
                    });
                }
                let count = match header.kind {
                    RecordKind::Batch => match batch_count(self.payload()) {
                        Some(count) => count,
                        None => {
                            return Ok(ScanItem::Damage {
                                offset,
                                reason: "malformed batch record".into(),
                            })
                        }
                    },
                    _ => 1,
                };
                // A batch is atomic: a cut inside one removes all of it.
                if header.lsn + count - 1 > self.last_wanted_lsn {
                    return Ok(ScanItem::Stop { offset });
                }
                self.seek_points.note(header.lsn, offset);
                self.position += header.record_size() as u64;
                self.next_lsn += count;
                self.record_count += count;
                self.digest = chain_digest(self.digest, header.crc);
                if header.kind == RecordKind::Checkpoint {
                    self.last_checkpoint = Some(header.lsn);
                }
                Ok(ScanItem::Record { header })
            }
        }
    }

    /// Looks for the next record at or after `from` (on the record alignment)
    /// and before `limit` that is valid for this segment (its CRCs check out
    /// under the segment's salt) and that `wanted` accepts. Runs of zeros, such
    /// as the zero-filled rest of a segment, are stepped over at memory speed.
    pub fn find_record(
        &mut self,
        from: u64,
        limit: u64,
        wanted: impl Fn(&RecordHeader) -> bool,
    ) -> Result<Option<(u64, RecordHeader)>> {
        let limit = limit.min(self.file_length);
        let mut offset = from.next_multiple_of(RECORD_ALIGNMENT as u64);
        while offset + RECORD_HEADER_SIZE as u64 <= limit {
            match self.check_record_at(offset)? {
                Candidate::Valid(header, _) if wanted(&header) => {
                    return Ok(Some((offset, header)))
                }
                Candidate::Zero => {
                    // A record header has a non-zero byte among its 24 (its
                    // kind), so none starts before the next non-zero byte - 23.
                    let after_zeros = offset + RECORD_HEADER_SIZE as u64;
                    let Some(nonzero) = self.next_nonzero(after_zeros, limit)? else {
                        return Ok(None);
                    };
                    let earliest = (nonzero + 1).saturating_sub(RECORD_HEADER_SIZE as u64);
                    offset = earliest
                        .max(offset + RECORD_ALIGNMENT as u64)
                        .next_multiple_of(RECORD_ALIGNMENT as u64);
                    continue;
                }
                _ => {}
            }
            offset += RECORD_ALIGNMENT as u64;
        }
        Ok(None)
    }

    /// The next data or batch record at or after `from` that could continue
    /// the scan: valid, and carrying an LSN at or above the one expected.
    pub fn find_valid_record(
        &mut self,
        from: u64,
        limit: u64,
    ) -> Result<Option<(u64, RecordHeader)>> {
        let next_lsn = self.next_lsn;
        self.find_record(from, limit, |header| {
            header.kind != RecordKind::Seal && header.lsn >= next_lsn
        })
    }

    /// The skip-corrupted rule, one for recovery and replay: after damage (or
    /// a zero header that is not the end of the segment) at `offset`, the scan
    /// continues at the next valid record of this segment, however far away,
    /// whose LSN is not below the one expected. `None` when there is none: the
    /// segment's records end at `offset`.
    pub fn skip_damage(&mut self, offset: u64) -> Result<Option<SkippedRegion>> {
        let Some((resumed_at, header)) = self.find_valid_record(offset + 1, self.file_length)?
        else {
            return Ok(None);
        };
        let skipped = SkippedRegion {
            offset,
            resumed_at,
            lsns: header.lsn - self.next_lsn,
        };
        self.position = resumed_at;
        self.next_lsn = header.lsn;
        self.resumed = true;
        Ok(Some(skipped))
    }

    /// Continues the scan at a record the seek index knows (`point`), rather
    /// than reading every record before it. The digest then no longer covers
    /// the whole segment, so a seal is checked for its LSN only.
    pub fn jump_to(&mut self, point: SeekPoint) {
        self.position = point.offset;
        self.next_lsn = point.lsn;
        self.resumed = true;
    }

    /// The seek points of the records read so far, taken out of the scanner.
    pub fn take_seek_points(&mut self) -> SegmentPoints {
        std::mem::take(&mut self.seek_points)
    }

    /// Offset of the first non-zero byte in `[from, until)`, if any.
    pub fn next_nonzero(&mut self, from: u64, until: u64) -> Result<Option<u64>> {
        let until = until.min(self.file_length);
        let mut offset = from;
        while offset < until {
            let length = (until - offset).min(READ_WINDOW as u64) as usize;
            let bytes = self.read(offset, length)?;
            if let Some(index) = first_nonzero(bytes) {
                return Ok(Some(offset + index as u64));
            }
            offset += length as u64;
        }
        Ok(None)
    }

    /// Offset just past the last non-zero byte in `[from, until)`, or `from` when all are zero.
    pub fn end_of_nonzero(&mut self, from: u64, until: u64) -> Result<u64> {
        let until = until.min(self.file_length);
        let mut end = from;
        let mut offset = from;
        while offset < until {
            let length = (until - offset).min(READ_WINDOW as u64) as usize;
            let bytes = self.read(offset, length)?;
            if let Some(last) = bytes.iter().rposition(|&b| b != 0) {
                end = offset + last as u64 + 1;
            }
            offset += length as u64;
        }
        Ok(end)
    }

    fn check_record_at(&mut self, offset: u64) -> Result<Candidate> {
        if offset + RECORD_HEADER_SIZE as u64 > self.file_length {
            return Ok(Candidate::EndOfFile);
        }
        let header_bytes: [u8; RECORD_HEADER_SIZE] = self
            .read(offset, RECORD_HEADER_SIZE)?
            .try_into()
            .expect("header size");
        let header = match RecordHeader::decode(self.header.salt, &header_bytes) {
            HeaderCheck::Zero => return Ok(Candidate::Zero),
            HeaderCheck::Invalid(reason) => return Ok(Candidate::Invalid(reason)),
            HeaderCheck::Valid(header) => header,
        };
        // The length is checked before a single byte of payload is read or a
        // buffer is sized for it. The bound is the bytes left in the segment
        // (itself at most MAX_SEGMENT_SIZE), not the current maxRecordSize
        // option: lowering that option must not make older records unreadable.
        let bytes_left = self.file_length - offset;
        if header.record_size() as u64 > bytes_left {
            return Ok(Candidate::Invalid(
                "record length exceeds the bytes left in the segment",
            ));
        }
        let payload_offset = offset + RECORD_HEADER_SIZE as u64;
        self.read(payload_offset, header.length as usize)?;
        let start = (payload_offset - self.window_start) as usize;
        let range = (start, start + header.length as usize);
        if !header.payload_matches(
            self.header.salt,
            &header_bytes,
            &self.window[range.0..range.1],
        ) {
            return Ok(Candidate::Invalid("record checksum mismatch"));
        }
        Ok(Candidate::Valid(header, range))
    }

    /// Fills `buffer` from `offset`; a file that ends first is damage.
    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> Result<()> {
        let mut filled = 0;
        while filled < buffer.len() {
            let n = self
                .file
                .read_at(&mut buffer[filled..], offset + filled as u64)
                .map_err(|e| Error::io("read", &self.path, e))?;
            if n == 0 {
                return Err(Error::corrupt(
                    &self.path,
                    offset + filled as u64,
                    "segment file ended while being read",
                ));
            }
            filled += n;
        }
        Ok(())
    }

    /// Makes `[offset, offset + length)` available in the window and returns it.
    fn read(&mut self, offset: u64, length: usize) -> Result<&[u8]> {
        let window_end = self.window_start + self.window.len() as u64;
        if offset < self.window_start || offset + length as u64 > window_end {
            let start = offset - offset % BLOCK_SIZE as u64;
            let want = ((offset - start) as usize + length).max(READ_WINDOW);
            let want = want.min((self.file_length - start) as usize);
            self.window.resize(want, 0);
            let mut filled = 0;
            while filled < want {
                let n = self
                    .file
                    .read_at(&mut self.window[filled..], start + filled as u64)
                    .map_err(|e| Error::io("read", &self.path, e))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            self.window.truncate(filled);
            self.window_start = start;
            if (offset - start) as usize + length > filled {
                return Err(Error::corrupt(
                    &self.path,
                    offset,
                    "segment file ended while being read",
                ));
            }
        }
        let start = (offset - self.window_start) as usize;
        Ok(&self.window[start..start + length])
    }
}

/// A stretch of a segment that the skip-corrupted mode stepped over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkippedRegion {
    /// Where the damage starts.
    pub offset: u64,
    /// Where the scan resumed.
    pub resumed_at: u64,
    /// LSNs lost in between.
    pub lsns: u64,
}

/// Index of the first non-zero byte, a word at a time.
fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let words = bytes.chunks_exact(8);
    let tail_start = bytes.len() - words.remainder().len();
    let word = words
        .enumerate()
        .find(|(_, word)| u64::from_ne_bytes((*word).try_into().expect("8 bytes")) != 0)
        .map(|(index, _)| index * 8);
    let search_from = word.unwrap_or(tail_start);
    bytes[search_from..]
        .iter()
        .position(|&byte| byte != 0)
        .map(|index| search_from + index)
}

enum Candidate {
    Zero,
    EndOfFile,
    Invalid(&'static str),
    Valid(RecordHeader, (usize, usize)),
}

/// Number of logical records in a batch payload, or `None` when its
/// structure is broken (entries that do not fill the payload exactly included).
fn batch_count(payload: &[u8]) -> Option<u64> {
    let mut entries = BatchEntries::new(payload)?;
    let count = entries.declared_count();
    let mut seen = 0u32;
    for entry in entries.by_ref() {
        entry?;
        seen += 1;
    }
    (count > 0 && seen == count && entries.is_exhausted()).then_some(u64::from(count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode_batch_payload;

    #[test]
    fn a_batch_must_fill_its_payload_exactly() {
        let mut payload = Vec::new();
        encode_batch_payload(&[b"ab", b"cde"], &mut payload);
        assert_eq!(batch_count(&payload), Some(2));
        payload.push(0);
        assert_eq!(batch_count(&payload), None, "a byte left over");
        payload.truncate(payload.len() - 2);
        assert_eq!(batch_count(&payload), None, "the last entry cut short");
    }
}
