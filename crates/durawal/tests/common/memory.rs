//! Logs kept in memory: the fuzz targets' in-memory filesystem (one source
//! file, included here rather than copied), and the whole directory as a
//! value that a test can copy, damage, compare and open again thousands of
//! times a second without touching the disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use durawal::storage::{OpenMode, Storage};

#[path = "../../fuzz/src/memory_storage.rs"]
mod memory_storage;

pub use memory_storage::MemoryStorage;

/// The files of a log directory by name, with their bytes.
pub type Image = BTreeMap<String, Vec<u8>>;

/// Where in-memory logs live: a name only, nothing is created there.
pub const MEMORY_DIR: &str = "/in-memory-log";

/// A filesystem holding `image` in [`MEMORY_DIR`].
pub fn storage_with(image: &Image) -> Arc<MemoryStorage> {
    let files = image
        .iter()
        .map(|(name, bytes)| (name.clone(), bytes.clone()))
        .collect();
    Arc::new(MemoryStorage::with_files(Path::new(MEMORY_DIR), files))
}

/// Every file of [`MEMORY_DIR`] in `storage`, read through the same
/// interface the log uses.
pub fn image_of(storage: &dyn Storage) -> Image {
    let dir = Path::new(MEMORY_DIR);
    let names = storage.list_dir(dir).expect("list the in-memory directory");
    names
        .into_iter()
        .map(|name| {
            let file = storage
                .open(&dir.join(&name), OpenMode::Read, false)
                .expect("open an in-memory file");
            let mut bytes = vec![0; file.length().expect("length") as usize];
            let read = file.read_at(&mut bytes, 0).expect("read");
            assert_eq!(read, bytes.len(), "an in-memory file reads whole");
            (name, bytes)
        })
        .collect()
}
