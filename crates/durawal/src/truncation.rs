//! Removing records: whole segments at the head of the log
//! ([`Wal::truncate_before`]) and everything after an LSN at its end
//! ([`Wal::truncate_after`]). Both leave a control file before touching a
//! segment, so that a crash at any point recovers to the old log or the new
//! one, never a mix; both poison the log when a step fails, like a failed
//! write.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::append::TailFile;
use crate::catalogue;
use crate::control_files::{remove_control, write_control};
use crate::error::{Error, Result};
use crate::format::{ControlKind, ControlRecord};
use crate::recovery::{inspect_cut, repair, Repair};
use crate::storage::OpenMode;
use crate::wal::{active_segment, read_tail_block, FlushEvent, Shared, Wal};

impl Wal {
    /// Removes the segments all of whose records have LSNs below `lsn`, as
    /// far as that is safe: only durable records, never the segment appends
    /// go to, never a segment an open replay still reads. Returns the first
    /// LSN of the log afterwards (0 when it is empty).
    ///
    /// `HEAD` is replaced first, so that a crash at any point leaves either
    /// the old log or the new one: recovery removes the segments before the
    /// one `HEAD` names. A failure poisons the log like a failed write.
    pub fn truncate_before(&self, lsn: u64) -> Result<u64> {
        remove_head(&self.shared, lsn, None)
    }

    /// Cuts the log back to `lsn`: every record holding a later LSN goes (a
    /// batch that holds `lsn` and later LSNs goes whole, being atomic), and
    /// appends continue after the last record kept. Returns that record's
    /// LSN. What a Raft log needs when a new leader overwrites its tail.
    ///
    /// Everything appended is made durable first; appends made meanwhile are
    /// refused with [`Error::Busy`]. `TRUNCATE` is written before any segment
    /// is touched and removed after the cut is durable, so a crash recovers
    /// either the old tail or the new one: recovery finishes a cut it finds.
    pub fn truncate_after(&self, lsn: u64) -> Result<u64> {
        let _maintenance = self.shared.lock_maintenance();
        let last = {
            let mut state = self.shared.lock_state();
            state.check_open()?;
            let last = state.last_lsn();
            if lsn >= last {
                return Ok(last);
            }
            let first = catalogue::lock(&self.shared.catalogue)
                .first_lsn()
                .unwrap_or(1);
            if lsn + 1 < first {
                return Err(Error::InvalidArgument(format!(
                    "truncateAfter({lsn}) would cut below the first record of the log (LSN {first}); use an LSN of at least {}",
                    first - 1
                )));
            }
            state.truncating = true;
            last
        };
        let result = self.sync(Some(last)).and_then(|_| self.cut_after(lsn));
        self.shared.lock_state().truncating = false;
        result
    }

    /// The work of [`Self::truncate_after`] once every record is on disk.
    fn cut_after(&self, lsn: u64) -> Result<u64> {
        let storage = &*self.shared.storage;
        let dir = &self.shared.dir;
        // The segment holding lsn + 1 (the first, when the whole log goes)
        // becomes the last; the ones after it go.
        let (segment_first, segment_path, later) = {
            let catalogue = catalogue::lock(&self.shared.catalogue);
            let segments: Vec<(u64, PathBuf)> = catalogue
                .segments()
                .map(|(first, entry)| (first, entry.path.clone()))
                .collect();
            let kept = segments.partition_point(|(first, _)| *first <= lsn).max(1);
            let (first, path) = segments[kept - 1].clone();
            (first, path, segments[kept..].to_vec())
        };
        let log_id = self.shared.lock_state().segment.header.log_id;
        let cut = ControlRecord {
            kind: ControlKind::Cut,
            log_id,
            lsn,
        };
        let disk_work = || -> Result<_> {
            write_control(storage, dir, &cut)?;
            let (tail, zeroing, points) =
                inspect_cut(storage, &segment_path, lsn, self.recovery_mode)?;
            let mut plan: Vec<Repair> = later
                .iter()
                .map(|(_, path)| Repair::RemoveFile(path.clone()))
                .collect();
            plan.extend(zeroing);
            plan.push(Repair::SyncDir);
            repair(storage, dir, &plan)?;
            remove_control(storage, dir, ControlKind::Cut)?;
            let file = storage
                .open(&tail.path, OpenMode::ReadWrite, self.shared.direct)
                .map_err(|e| Error::open_failed(&tail.path, e))?;
            let tail_block = match tail.seal {
                Some(_) => Vec::new(),
                None => read_tail_block(&*file, &tail.path, tail.position)?,
            };
            Ok((tail, points, file, tail_block))
        };
        let (tail, points, file, tail_block) =
            disk_work().map_err(|error| self.shared.fail_and_announce(error))?;

        {
            let mut catalogue = catalogue::lock(&self.shared.catalogue);
            for (first, _) in &later {
                catalogue.removed(*first);
            }
            if tail.seal.is_none() {
                catalogue.unsealed(segment_first);
            }
            catalogue.set_last_checkpoint(segment_first, tail.last_checkpoint);
        }
        let new_last = tail.next_lsn - 1;
        {
            let mut state = self.shared.lock_state();
            for (first, _) in &later {
                state.seek_index.forget(*first);
            }
            state.seek_index.insert(segment_first, points);
            state.restart_at(tail.next_lsn, active_segment(&tail), &tail_block);
            state.tail_handoff = Some(TailFile {
                file,
                path: tail.path.clone(),
                first_lsn: segment_first,
            });
            // The durable LSN moves back with the end of the log.
            self.shared.durable_lsn.store(new_last, Ordering::Release);
            self.shared.durable_file.publish(new_last);
        }
        self.shared.announce(FlushEvent::Durable {
            lsn: new_last,
            buffered_bytes: 0,
        });
        Ok(new_last)
    }
}

/// [`Wal::truncate_before`], for retention too: a pin more than
/// `reader_lag_limit` bytes of segments behind the end of the log (when
/// given) no longer holds removal back.
pub(crate) fn remove_head(shared: &Shared, lsn: u64, reader_lag_limit: Option<u64>) -> Result<u64> {
    let _maintenance = shared.lock_maintenance();
    let log_id = {
        let state = shared.lock_state();
        state.check_open()?;
        state.segment.header.log_id
    };
    let bound = lsn.min(shared.durable_lsn.load(Ordering::Acquire) + 1);
    let (doomed, new_first) = {
        let catalogue = catalogue::lock(&shared.catalogue);
        let bound = catalogue
            .lowest_pin_within(reader_lag_limit)
            .map_or(bound, |pin| pin.min(bound));
        catalogue.wholly_below(bound)
    };
    if let (Some(new_first), false) = (new_first, doomed.is_empty()) {
        remove_segments(shared, log_id, new_first, &doomed)
            .map_err(|error| shared.fail_and_announce(error))?;
    }
    Ok(shared.first_lsn())
}

/// The disk work of [`remove_head`]: the new `HEAD`, then the removals, then
/// one directory sync.
fn remove_segments(
    shared: &Shared,
    log_id: [u8; 16],
    new_first: u64,
    doomed: &[(u64, PathBuf)],
) -> Result<()> {
    let storage = &*shared.storage;
    let dir = &shared.dir;
    let head = ControlRecord {
        kind: ControlKind::Head,
        log_id,
        lsn: new_first,
    };
    write_control(storage, dir, &head)?;
    for (first, path) in doomed {
        // Forgotten first, so that no new replay starts in it.
        catalogue::lock(&shared.catalogue).removed(*first);
        shared.lock_state().seek_index.forget(*first);
        storage
            .remove_file(path)
            .map_err(|e| Error::io("unlink", path, e))?;
    }
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync", dir, e))
}
