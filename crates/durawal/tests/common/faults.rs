//! A storage backend that passes every operation to the real filesystem
//! unless an injector, shown each operation first, returns an error for it
//! (or panics in its place). Tests describe the fault as a closure over the
//! operation, so one backend serves every fault plan.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use durawal::storage::{LockGuard, OpenMode, OsStorage, Storage, StorageFile};

/// One operation of the log on its files, as the injector sees it.
#[derive(Debug)]
pub enum Operation<'a> {
    Open {
        path: &'a Path,
        mode: OpenMode,
    },
    Write {
        path: &'a Path,
        offset: u64,
        length: usize,
    },
    Read {
        path: &'a Path,
        offset: u64,
        length: usize,
    },
    Sync {
        path: &'a Path,
    },
    Rename {
        from: &'a Path,
        to: &'a Path,
    },
    Remove {
        path: &'a Path,
    },
    SyncDir {
        dir: &'a Path,
    },
}

/// Decides the fate of an operation: `Some(error)` fails it, `None` lets it through.
pub type Injector = dyn Fn(&Operation) -> Option<io::Error> + Send + Sync;

/// [`OsStorage`] with faults injected by a closure.
#[derive(Clone)]
pub struct InjectingStorage {
    inject: Arc<Injector>,
}

impl InjectingStorage {
    pub fn new(inject: impl Fn(&Operation) -> Option<io::Error> + Send + Sync + 'static) -> Self {
        Self {
            inject: Arc::new(inject),
        }
    }

    fn check(&self, operation: Operation) -> io::Result<()> {
        match (self.inject)(&operation) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

struct InjectingFile {
    inner: Box<dyn StorageFile>,
    /// The path it was opened under (a prepared segment keeps its temporary name).
    path: PathBuf,
    storage: InjectingStorage,
}

impl StorageFile for InjectingFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.storage.check(Operation::Write {
            path: &self.path,
            offset,
            length: bytes.len(),
        })?;
        self.inner.write_all_at(bytes, offset)
    }
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        self.storage.check(Operation::Read {
            path: &self.path,
            offset,
            length: buffer.len(),
        })?;
        self.inner.read_at(buffer, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.storage.check(Operation::Sync { path: &self.path })?;
        self.inner.sync_data()
    }
    fn length(&self) -> io::Result<u64> {
        self.inner.length()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn drop_cache(&self) -> io::Result<()> {
        self.inner.drop_cache()
    }
}

impl Storage for InjectingStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        OsStorage.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        OsStorage.list_dir(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode, direct: bool) -> io::Result<Box<dyn StorageFile>> {
        self.check(Operation::Open { path, mode })?;
        Ok(Box::new(InjectingFile {
            inner: OsStorage.open(path, mode, direct)?,
            path: path.to_owned(),
            storage: self.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Operation::Rename { from, to })?;
        OsStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(Operation::Remove { path })?;
        OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Operation::SyncDir { dir })?;
        OsStorage.sync_dir(dir)
    }
    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime> {
        OsStorage.modified(path)
    }
    fn lock(&self, path: &Path) -> io::Result<LockGuard> {
        OsStorage.lock(path)
    }
}

/// True when `path` is a segment file (not the prepared file or the lock).
pub fn is_segment(path: &Path) -> bool {
    path.extension().is_some_and(|extension| extension == "wal")
}
