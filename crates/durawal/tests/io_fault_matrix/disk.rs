//! The matrix's view of the disk, behind the injecting storage: it numbers
//! every operation, injects the case's fault at the chosen one (and, for a
//! disk that stays broken, at every one after it), notes what each
//! operation was, and keeps per file the bytes a successful data sync made
//! durable. After the workload, [`Disk::lose_unsynced_writes`] puts back
//! what the last successful sync of each file left, as a power loss after
//! a failed sync may: what the log acknowledged must survive that.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::common::faults::{Fault, InjectingStorage, Operation};
use crate::common::release_tier;
use durawal::format::ControlKind;

/// The faults the matrix injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The operation fails with this OS error.
    Errno(i32),
    /// A write that puts part of its bytes in place, then fails with EIO
    /// (any other operation just fails with EIO).
    ShortWrite,
}

impl Failure {
    /// EIO, ENOSPC, EDQUOT and a short write; in the release tier also
    /// EROFS, EFBIG, EINTR and ENOMEM.
    pub fn all() -> Vec<Failure> {
        let mut errnos = vec![libc::EIO, libc::ENOSPC, libc::EDQUOT];
        if release_tier() {
            errnos.extend([libc::EROFS, libc::EFBIG, libc::EINTR, libc::ENOMEM]);
        }
        let mut all: Vec<Failure> = errnos.into_iter().map(Failure::Errno).collect();
        all.push(Failure::ShortWrite);
        all
    }

    fn fault(self, operation: &Operation) -> Fault {
        match (self, operation) {
            (Failure::ShortWrite, Operation::Write { bytes, .. }) => Fault::ShortWrite {
                written: short_length(bytes.len()),
                error: io::Error::from_raw_os_error(libc::EIO),
            },
            (Failure::ShortWrite, _) => Fault::Fail(io::Error::from_raw_os_error(libc::EIO)),
            (Failure::Errno(errno), _) => Fault::Fail(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// How much of a write of `length` bytes a short write puts in place:
/// about half, in whole 512-byte sectors when there are several (a direct
/// write must stay aligned).
fn short_length(length: usize) -> usize {
    if length >= 1024 {
        length / 2 / 512 * 512
    } else {
        length / 2
    }
}

/// The fault of one case: `failure` at operation `at`, and at every
/// operation after it when the disk stays broken (`persistent`).
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub at: u64,
    pub persistent: bool,
    pub failure: Failure,
}

/// One operation as the disk saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Its number, from 1.
    pub index: u64,
    pub kind: &'static str,
    /// The file's number, for operations on an open file.
    pub file: Option<u64>,
    /// The file's name when the operation was made (after renames).
    pub name: String,
    /// A write of log data (any non-zero byte, to a file other than
    /// `DURABLE`), or a sync of a file that holds such data.
    pub data: bool,
    pub failed: bool,
}

/// A file's bytes as the last successful sync left them, and the writes since.
#[derive(Default)]
struct Shadow {
    durable: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
    /// It received log data.
    has_data: bool,
}

impl Shadow {
    fn synced(&mut self) {
        for (offset, bytes) in self.pending.drain(..) {
            let end = offset as usize + bytes.len();
            if self.durable.len() < end {
                self.durable.resize(end, 0);
            }
            self.durable[offset as usize..end].copy_from_slice(&bytes);
        }
    }
}

/// What the disk saw and keeps.
pub struct Disk {
    dir: PathBuf,
    plan: Option<Plan>,
    operations: u64,
    pub seen: Vec<Seen>,
    /// Current name of each file number.
    names: BTreeMap<u64, String>,
    /// Shadows by file name.
    shadows: BTreeMap<String, Shadow>,
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Disk {
    /// A disk for the log in `dir` that injects `plan` (nothing when `None`).
    pub fn new(dir: &Path, plan: Option<Plan>) -> Arc<Mutex<Disk>> {
        Arc::new(Mutex::new(Disk {
            dir: dir.to_owned(),
            plan,
            operations: 0,
            seen: Vec::new(),
            names: BTreeMap::new(),
            shadows: BTreeMap::new(),
        }))
    }

    /// The storage the log is opened with: real files, seen and faulted by `disk`.
    pub fn storage(disk: &Arc<Mutex<Disk>>) -> InjectingStorage {
        let disk = disk.clone();
        InjectingStorage::with_faults(move |operation| disk.lock().unwrap().operate(operation))
    }

    /// Operations made so far.
    pub fn operations(&self) -> u64 {
        self.operations
    }

    fn operate(&mut self, operation: &Operation) -> Option<Fault> {
        self.operations += 1;
        let index = self.operations;
        let fault = self
            .plan
            .filter(|plan| index == plan.at || (plan.persistent && index > plan.at))
            .map(|plan| plan.failure.fault(operation));
        let failed = fault.is_some();
        let (kind, file, name, data) = match operation {
            Operation::Open { path, file, .. } => {
                if !failed {
                    self.opened(*file, path);
                }
                ("open", Some(*file), name_of(path), false)
            }
            Operation::Write {
                file,
                offset,
                bytes,
                ..
            } => {
                let name = self.names[file].clone();
                let data =
                    name != ControlKind::Durable.file_name() && bytes.iter().any(|&b| b != 0);
                let landed = match &fault {
                    None => Some(*bytes),
                    Some(Fault::ShortWrite { written, .. }) => Some(&bytes[..*written]),
                    Some(Fault::Fail(_)) => None,
                };
                // A file removed by name but still written through its handle
                // is gone from the directory: nothing of it survives.
                if let Some(shadow) = self.shadows.get_mut(&name) {
                    shadow.has_data |= data;
                    if let Some(landed) = landed {
                        shadow.pending.push((*offset, landed.to_vec()));
                    }
                }
                ("write", Some(*file), name, data)
            }
            Operation::Read { file, .. } => ("read", Some(*file), self.names[file].clone(), false),
            Operation::Sync { file, .. } => {
                let name = self.names[file].clone();
                let mut data = false;
                if let Some(shadow) = self.shadows.get_mut(&name) {
                    if !failed {
                        shadow.synced();
                    }
                    data = shadow.has_data;
                }
                ("sync", Some(*file), name, data)
            }
            Operation::Rename { from, to } => {
                let (from, to) = (name_of(from), name_of(to));
                if !failed {
                    self.renamed(&from, &to);
                }
                ("rename", None, format!("{from} -> {to}"), false)
            }
            Operation::Remove { path } => {
                let name = name_of(path);
                if !failed {
                    self.shadows.remove(&name);
                }
                ("remove", None, name, false)
            }
            Operation::SyncDir { .. } => ("sync dir", None, String::new(), false),
        };
        self.seen.push(Seen {
            index,
            kind,
            file,
            name,
            data,
            failed,
        });
        fault
    }

    /// A file opened: a new one starts empty; one already on disk starts
    /// as durable as it is now (this matrix's logs begin in an empty
    /// directory, so that is only the lock file).
    fn opened(&mut self, file: u64, path: &Path) {
        let name = name_of(path);
        self.names.insert(file, name.clone());
        self.shadows.entry(name).or_insert_with(|| Shadow {
            durable: std::fs::read(path).unwrap_or_default(),
            ..Shadow::default()
        });
    }

    fn renamed(&mut self, from: &str, to: &str) {
        for name in self.names.values_mut().filter(|name| *name == from) {
            *name = to.to_owned();
        }
        if let Some(shadow) = self.shadows.remove(from) {
            self.shadows.insert(to.to_owned(), shadow);
        }
    }

    /// Puts back, in every file, what its last successful sync left:
    /// writes made since (or whose sync failed) are lost, as a power loss
    /// after a failed sync may lose them. File names are taken as they
    /// are (directory changes are the power-loss harness's business).
    pub fn lose_unsynced_writes(&self) -> io::Result<()> {
        for (name, shadow) in &self.shadows {
            if shadow.pending.is_empty() {
                continue;
            }
            let path = self.dir.join(name);
            let mut bytes = std::fs::read(&path)?;
            let kept = shadow.durable.len().min(bytes.len());
            bytes[..kept].copy_from_slice(&shadow.durable[..kept]);
            bytes[kept..].fill(0);
            std::fs::write(&path, &bytes)?;
        }
        Ok(())
    }
}
