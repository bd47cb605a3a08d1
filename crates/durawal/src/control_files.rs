//! Reading, replacing and removing the log's control files (see
//! [`crate::format::ControlRecord`]). A control file changes the meaning of
//! the segments beside it, so every change to one is made durable (file
//! synced, renamed, directory synced) before the segments are touched.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{ControlKind, ControlRecord, CONTROL_RECORD_SIZE};
use crate::storage::{OpenMode, Storage};

/// The control file of `kind` in `dir`, if there is one. One that is
/// damaged, or not a regular file, is refused: it decides where the log
/// begins or ends, and guessing could lose or resurrect records.
pub fn read_control(
    storage: &dyn Storage,
    dir: &Path,
    kind: ControlKind,
) -> Result<Option<ControlRecord>> {
    let path = dir.join(kind.file_name());
    let file = match storage.open(&path, OpenMode::Read, false) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::open_failed(&path, error)),
    };
    let mut bytes = [0u8; CONTROL_RECORD_SIZE + 1];
    let mut length = 0;
    while length < bytes.len() {
        match file.read_at(&mut bytes[length..], length as u64) {
            Ok(0) => break,
            Ok(read) => length += read,
            Err(error) => return Err(Error::io("read", &path, error)),
        }
    }
    ControlRecord::decode(kind, &bytes[..length])
        .map(Some)
        .map_err(|reason| Error::corrupt(&path, 0, reason))
}

/// Replaces the control file of `record.kind` in `dir`, durably.
pub fn write_control(storage: &dyn Storage, dir: &Path, record: &ControlRecord) -> Result<()> {
    let temporary = dir.join(record.kind.temporary_name());
    remove_if_present(storage, &temporary)?;
    let file = storage
        .open(&temporary, OpenMode::CreateNew, false)
        .map_err(|e| Error::open_failed(&temporary, e))?;
    file.write_all_at(&record.encode(), 0)
        .map_err(|e| Error::io("write", &temporary, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &temporary, e))?;
    drop(file);
    let path = dir.join(record.kind.file_name());
    storage
        .rename(&temporary, &path)
        .map_err(|e| Error::io("rename", &temporary, e))?;
    sync_dir(storage, dir)
}

/// Removes the control file of `kind` from `dir`, durably.
pub fn remove_control(storage: &dyn Storage, dir: &Path, kind: ControlKind) -> Result<()> {
    remove_if_present(storage, &dir.join(kind.file_name()))?;
    sync_dir(storage, dir)
}

fn remove_if_present(storage: &dyn Storage, path: &Path) -> Result<()> {
    match storage.remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Error::io("unlink", path, error)),
    }
}

fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<()> {
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync", dir, e))
}
