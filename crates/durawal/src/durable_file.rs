//! The writer's durable LSN, published in the `DURABLE` file for readers in
//! other processes (`LogReader`), which cannot see the writer's memory and
//! must not read records that are written but not yet synced.
//!
//! The file is overwritten in place after every flush, through the page
//! cache and without a sync: a pwrite of 36 bytes costs about a microsecond,
//! a sync would cost a second fdatasync per flush. It is written after the
//! records it covers are synced, so it never runs ahead of what is durable;
//! after a power loss it may lag (then readers see fewer records until the
//! next writer opens and publishes again), never lead, except after a
//! `truncateAfter` whose lowered value was lost, which readers guard against
//! (see `LogReader`). Publishing is best effort: a failure to write it (a
//! full disk at open) never fails the log, it only leaves readers behind.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use crate::format::{ControlKind, ControlRecord};
use crate::storage::{OpenMode, Storage, StorageFile};

/// Writes the durable LSN of one log into its `DURABLE` file.
pub struct DurablePublisher {
    /// Closed with the log: an open descriptor would keep its filesystem
    /// from being remounted read-only or unmounted.
    file: Mutex<Option<Box<dyn StorageFile>>>,
    log_id: [u8; 16],
}

impl DurablePublisher {
    /// Opens (creating) the `DURABLE` file of the log `log_id` in `dir`.
    pub fn open(storage: &dyn Storage, dir: &Path, log_id: [u8; 16]) -> Self {
        let path = dir.join(ControlKind::Durable.file_name());
        let file = storage.open(&path, OpenMode::CreateOrOpen, false).ok();
        Self {
            file: Mutex::new(file),
            log_id,
        }
    }

    /// Publishes `lsn` as durable; see the module documentation for why a
    /// failure is ignored.
    pub fn publish(&self, lsn: u64) {
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = file.as_ref() {
            let record = ControlRecord {
                kind: ControlKind::Durable,
                log_id: self.log_id,
                lsn,
            };
            let _ = file.write_all_at(&record.encode(), 0);
        }
    }

    /// Closes the file; nothing is published after.
    pub fn close(&self) {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}
