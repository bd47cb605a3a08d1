//! The production [`Storage`]: real files through std and libc.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use super::{LockGuard, NotARegularFile, OpenMode, Storage, StorageFile};

/// Files created by the log get owner-only permissions: a WAL usually holds
/// application data that other local users have no business reading.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Real files on the local filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

struct OsFile(File);

impl StorageFile for OsFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(&self.0, bytes, offset)
        }
        #[cfg(windows)]
        {
            let mut written = 0;
            while written < bytes.len() {
                let n = std::os::windows::fs::FileExt::seek_write(
                    &self.0,
                    &bytes[written..],
                    offset + written as u64,
                )?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                written += n;
            }
            Ok(())
        }
    }

    fn read_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&self.0, buffer, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&self.0, buffer, offset)
        }
    }

    /// std maps this to fdatasync on Linux, `fcntl(F_FULLFSYNC)` on macOS (a
    /// plain fsync there does not flush the drive's cache) and
    /// `FlushFileBuffers` on Windows: exactly the per-platform flush we need.
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn length(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn drop_cache(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: plain syscall on a descriptor we own.
            let rc =
                unsafe { libc::posix_fadvise(self.0.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
        }
        Ok(())
    }
}

fn open_options(mode: OpenMode) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true);
    match mode {
        OpenMode::Read => {}
        OpenMode::ReadWrite => {
            options.write(true);
        }
        OpenMode::CreateNew => {
            options.write(true).create_new(true);
        }
        OpenMode::CreateOrOpen => {
            options.write(true).create(true);
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

#[cfg(unix)]
fn platform_flags(options: &mut OpenOptions, direct: bool) {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK only so that opening a FIFO cannot wait for a writer; it is
    // cleared again once the file is known to be regular.
    let mut flags = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if direct {
        flags |= libc::O_DIRECT;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = direct;
    options.custom_flags(flags);
}

/// Opens `path` as a regular file or refuses it with [`NotARegularFile`].
fn open_regular(path: &Path, mut options: OpenOptions, direct: bool) -> io::Result<File> {
    platform_flags(&mut options, direct);
    let file = options.open(path).map_err(|error| {
        // With O_NOFOLLOW, ELOOP means the last component is a symbolic link.
        #[cfg(unix)]
        if error.raw_os_error() == Some(libc::ELOOP) {
            return NotARegularFile::io_error("symbolic link");
        }
        error
    })?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(NotARegularFile::io_error(describe(file_type)));
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: plain fcntl calls on a descriptor we own.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags == -1 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } == -1
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(file)
}

fn describe(file_type: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_socket() {
            return "socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "device";
        }
    }
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

#[cfg(windows)]
fn platform_flags(_options: &mut OpenOptions, _direct: bool) {
    // Direct I/O is not offered on Windows (FILE_FLAG_NO_BUFFERING also needs
    // sector-aligned reads everywhere); writes are buffered and made durable
    // with FlushFileBuffers.
}

impl Storage for OsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        match fs::create_dir_all(dir) {
            // When `dir` exists, std checks that it is a directory and, if
            // that check fails for any reason (a failing disk included),
            // returns mkdir's EEXIST, which hides the real error. Look again
            // so that the caller hears it.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => match fs::metadata(dir) {
                Ok(metadata) if metadata.is_dir() => Ok(()),
                Ok(_) => Err(error),
                Err(stat_error) => Err(stat_error),
            },
            result => result,
        }
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn open(&self, path: &Path, mode: OpenMode, direct: bool) -> io::Result<Box<dyn StorageFile>> {
        let file = open_regular(path, open_options(mode), direct)?;
        #[cfg(target_vendor = "apple")]
        if direct {
            use std::os::fd::AsRawFd;
            // macOS has no O_DIRECT; F_NOCACHE is its way to bypass the cache.
            // SAFETY: plain fcntl on a descriptor we own.
            if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_NOCACHE, 1) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Box::new(OsFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(windows)]
        {
            // Windows cannot open a directory for flushing; NTFS journals
            // renames and creates itself.
            let _ = dir;
            Ok(())
        }
    }

    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime> {
        fs::symlink_metadata(path)?.modified()
    }

    fn lock(&self, path: &Path) -> io::Result<LockGuard> {
        let file = open_regular(path, open_options(OpenMode::CreateOrOpen), false)?;
        // std's lock is flock on Unix and LockFileEx on Windows. flock belongs
        // to the open file description, so a second open in the same process
        // (another Wal, a worker thread) conflicts just like another process.
        match file.try_lock() {
            Ok(()) => Ok(Box::new(HeldLock(file))),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

/// The lock file, locked; dropping it unlocks before closing. Closing alone
/// is not enough: a child process forked by the host (Node spawns them) holds
/// a copy of the descriptor until it execs, and with it the open file
/// description the lock belongs to, so a reopen right after close could find
/// the log still locked. Unlocking through our descriptor releases the lock
/// on that description, whoever else still refers to it.
struct HeldLock(File);

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
