//! Opening workspace files without trusting them.
//!
//! **Only regular files are read, and symbolic links are never followed**:
//! files are opened with `O_NOFOLLOW | O_NONBLOCK` (so a FIFO cannot block
//! the open) and the opened descriptor's type is checked before any byte is
//! read, so a FIFO, device or socket planted under a record's name is
//! refused at once.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum Refused {
    /// It does not exist.
    Missing,
    /// It is a symbolic link, FIFO, device, socket or directory.
    NotRegular,
    /// It is larger than allowed.
    TooLarge,
    /// Reading it failed.
    Io,
}

/// What identifies one version of a file cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) inode: u64,
    pub(crate) len: u64,
    pub(crate) modified: Option<SystemTime>,
}

impl Stamp {
    pub(crate) fn of(metadata: &Metadata) -> Self {
        Self {
            inode: metadata.ino(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

/// Opens `path` if it is a regular file that is no symbolic link.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), Refused> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => Refused::Missing,
            // ELOOP: the last component is a symbolic link.
            _ if err.raw_os_error() == Some(libc::ELOOP) => Refused::NotRegular,
            _ => Refused::Io,
        })?;
    let metadata = file.metadata().map_err(|_| Refused::Io)?;
    if !metadata.is_file() {
        return Err(Refused::NotRegular);
    }
    Ok((file, metadata))
}

/// Reads a whole small regular file, refusing one over `max` bytes.
pub(crate) fn read_small(path: &Path, max: u64) -> Result<(Vec<u8>, Stamp), Refused> {
    let (file, metadata) = open_regular(path)?;
    if metadata.len() > max {
        return Err(Refused::TooLarge);
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // `take` bounds the read even if the file grows meanwhile.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| Refused::Io)?;
    if bytes.len() as u64 > max {
        return Err(Refused::TooLarge);
    }
    Ok((bytes, Stamp::of(&metadata)))
}

/// Whether `path` is a real directory (not a symbolic link to one).
pub(crate) fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir())
}
