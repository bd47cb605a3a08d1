//! An in-memory filesystem for the fuzzed logs, so an iteration costs no
//! disk I/O.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use durawal::storage::{LockGuard, OpenMode, Storage, StorageFile};

/// One file's bytes, shared by its open handles.
type Bytes = Arc<Mutex<Vec<u8>>>;

/// Files by path.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    files: Arc<Mutex<BTreeMap<PathBuf, Bytes>>>,
}

struct MemoryFile(Bytes);

impl StorageFile for MemoryFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut data = self.0.lock().unwrap();
        let end = offset as usize + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        let data = self.0.lock().unwrap();
        let start = (offset as usize).min(data.len());
        let length = buffer.len().min(data.len() - start);
        buffer[..length].copy_from_slice(&data[start..start + length]);
        Ok(length)
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
    fn length(&self) -> io::Result<u64> {
        Ok(self.0.lock().unwrap().len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.lock().unwrap().resize(len as usize, 0);
        Ok(())
    }
    fn drop_cache(&self) -> io::Result<()> {
        Ok(())
    }
}

impl MemoryStorage {
    /// A directory holding these files.
    pub fn with_files(dir: &Path, files: Vec<(String, Vec<u8>)>) -> Self {
        let storage = Self::default();
        for (name, bytes) in files {
            storage
                .files
                .lock()
                .unwrap()
                .insert(dir.join(name), Arc::new(Mutex::new(bytes)));
        }
        storage
    }
}

impl Storage for MemoryStorage {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        Ok(self
            .files
            .lock()
            .unwrap()
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect())
    }
    fn open(&self, path: &Path, mode: OpenMode, _direct: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut files = self.files.lock().unwrap();
        let file = match (files.get(path), mode) {
            (Some(_), OpenMode::CreateNew) => return Err(io::ErrorKind::AlreadyExists.into()),
            (Some(file), _) => file.clone(),
            (None, OpenMode::CreateNew | OpenMode::CreateOrOpen) => {
                let file = Arc::new(Mutex::new(Vec::new()));
                files.insert(path.to_owned(), file.clone());
                file
            }
            (None, _) => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(Box::new(MemoryFile(file)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = self.files.lock().unwrap();
        let file = files.remove(from).ok_or(io::ErrorKind::NotFound)?;
        files.insert(to.to_owned(), file);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.files
            .lock()
            .unwrap()
            .remove(path)
            .map(drop)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn modified(&self, _path: &Path) -> io::Result<std::time::SystemTime> {
        // The fuzzed disk keeps no times.
        Ok(std::time::SystemTime::UNIX_EPOCH)
    }
    fn lock(&self, _path: &Path) -> io::Result<LockGuard> {
        Ok(Box::new(()))
    }
}
