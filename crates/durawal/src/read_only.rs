//! Reading a log without writing to it: from another process while the
//! writer runs, on a read-only directory, on a full disk.
//!
//! A [`LogReader`] takes no lock and never creates, writes or removes a
//! file: it inspects the log as recovery would (without repairing it) and
//! reads only records the writer has published as durable in `DURABLE` (see
//! `durable_file.rs`), so it never hands out a record that a crash could
//! still take back. It learns that the file changed from the operating
//! system (inotify, kqueue or ReadDirectoryChangesW, through the `notify`
//! crate) instead of polling it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use notify::{RecursiveMode, Watcher};

use crate::control_files::read_control;
use crate::error::{Error, Result};
use crate::format::ControlKind;
use crate::options::RecoveryMode;
use crate::recovery::{inspect, inspect_visible, RecoveredTail, RecoveryReport};
use crate::replay::{list_segments, ReplayCursor};
use crate::seek_index::SeekIndex;
use crate::storage::{OpenMode, OsStorage, Storage};
use crate::LOCK_FILE_NAME;

/// Called (on a watcher thread) when the writer may have published more.
pub type ChangeListener = Box<dyn Fn() + Send + Sync>;

/// A read-only view of a log that another process may be writing.
pub struct LogReader {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    skip_corrupted: bool,
    report: RecoveryReport,
    /// The last valid LSN the inspection at open found.
    inspected_end: u64,
    /// The log's id, to refuse a `DURABLE` file of another log.
    log_id: Option<[u8; 16]>,
    seek_index: SeekIndex,
    /// What `DURABLE` said at open, and whether it may be believed past
    /// `inspected_end`: not when it claimed more than the disk holds while
    /// no writer held the lock (a lowered value lost to a power loss after
    /// a `truncateAfter`), until a writer publishes again.
    published_at_open: Option<u64>,
    published_trusted: AtomicBool,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl LogReader {
    /// Opens the log in `dir` for reading, judging damage as `mode` says.
    pub fn open(dir: &Path, mode: RecoveryMode) -> Result<Self> {
        Self::open_with(dir, mode, Arc::new(OsStorage))
    }

    /// [`Self::open`] through `storage`.
    pub fn open_with(dir: &Path, mode: RecoveryMode, storage: Arc<dyn Storage>) -> Result<Self> {
        // Only what the writer published is looked at: past it a live
        // writer may be in the middle of a flush. A `DURABLE` of another
        // log bounds nothing (a damaged one reads as absent).
        let published = read_control(&*storage, dir, ControlKind::Durable)
            .ok()
            .flatten();
        let mut inspection = inspect_visible(&*storage, dir, mode, published.map(|d| d.lsn))?;
        let foreign = |tail: &RecoveredTail| {
            published.is_some_and(|durable| durable.log_id != tail.header.log_id)
        };
        if inspection.tail.as_ref().is_some_and(foreign) {
            inspection = inspect(&*storage, dir, mode)?;
        }
        let inspected_end = inspection.tail.as_ref().map_or(0, |tail| tail.next_lsn - 1);
        let log_id = inspection.tail.as_ref().map(|tail| tail.header.log_id);
        let mut reader = Self {
            storage,
            dir: dir.to_owned(),
            skip_corrupted: mode == RecoveryMode::SkipCorrupted,
            report: inspection.report,
            inspected_end,
            log_id,
            seek_index: inspection.seek_index,
            published_at_open: None,
            published_trusted: AtomicBool::new(true),
            watcher: Mutex::new(None),
        };
        reader.published_at_open = reader.published();
        if reader
            .published_at_open
            .is_some_and(|lsn| lsn > inspected_end)
            && !reader.writer_is_live()
        {
            reader.published_trusted.store(false, Ordering::Relaxed);
        }
        Ok(reader)
    }

    /// What recovery would find and do if a writer opened the log now.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The durable LSN as the writer last published it (what the inspection
    /// found when no writer has published since the log was last written).
    pub fn durable_lsn(&self) -> u64 {
        let Some(published) = self.published() else {
            return self.inspected_end;
        };
        if !self.published_trusted.load(Ordering::Relaxed) {
            if Some(published) == self.published_at_open {
                return self.inspected_end;
            }
            // A writer opened since and published: believe it from now on.
            self.published_trusted.store(true, Ordering::Relaxed);
        }
        published
    }

    /// LSN of the first record (0 when no record is durable).
    pub fn first_lsn(&self) -> Result<u64> {
        let head = read_control(&*self.storage, &self.dir, ControlKind::Head)?.map_or(0, |h| h.lsn);
        let first = self
            .segment_starts()?
            .into_iter()
            .find(|&first| first >= head)
            .unwrap_or(0);
        Ok(if first > 0 && self.durable_lsn() >= first {
            first
        } else {
            0
        })
    }

    /// Reads the durable records with LSNs in `from..=to`.
    pub fn replay(&self, from: u64, to: u64) -> Result<ReplayCursor> {
        let from = from.max(1);
        ReplayCursor::new(
            self.storage.clone(),
            &self.dir,
            (from, to.min(self.durable_lsn())),
            self.segment_starts()?,
            self.skip_corrupted,
            self.seek_index.seek(from),
            None,
        )
    }

    /// Calls `listener` whenever the writer publishes a durable LSN, until
    /// [`Self::close`].
    pub fn watch(&self, listener: ChangeListener) -> Result<()> {
        let durable_path = self.dir.join(ControlKind::Durable.file_name());
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|event| event.paths.iter().any(|path| path == &durable_path)) {
                    listener();
                }
            })
            .map_err(|e| watch_error(&self.dir, e))?;
        watcher
            .watch(&self.dir, RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&self.dir, e))?;
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = Some(watcher);
        Ok(())
    }

    /// Stops watching. Idempotent.
    pub fn close(&self) {
        self.watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// The published durable LSN of this log, if a writer published one.
    /// A `DURABLE` file being rewritten can read torn: that reads as nothing new.
    fn published(&self) -> Option<u64> {
        let record = read_control(&*self.storage, &self.dir, ControlKind::Durable).ok()??;
        match self.log_id {
            Some(log_id) if log_id != record.log_id => None,
            _ => Some(record.lsn),
        }
    }

    /// Whether a writer holds the log's lock, found by trying to take it for
    /// a moment (only when `DURABLE` claims more than the disk holds).
    fn writer_is_live(&self) -> bool {
        let lock_path = self.dir.join(LOCK_FILE_NAME);
        // No lock file: no writer, and nothing is created to find out.
        if self
            .storage
            .open(&lock_path, OpenMode::Read, false)
            .is_err()
        {
            return false;
        }
        match self.storage.lock(&lock_path) {
            Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
            Ok(_released_at_once) => false,
        }
    }

    fn segment_starts(&self) -> Result<Vec<u64>> {
        list_segments(&*self.storage, &self.dir)
    }
}

fn watch_error(dir: &Path, error: notify::Error) -> Error {
    match error.kind {
        notify::ErrorKind::Io(source) => Error::io("watch", dir, source),
        other => Error::io("watch", dir, std::io::Error::other(format!("{other:?}"))),
    }
}
