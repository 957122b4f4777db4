//! One process per store: an exclusive lock on a file beside the database.
//!
//! Two processes writing one store would each believe they own every
//! Worker in it: both would recover the same interrupted turns and append
//! to the same event logs with their own sequence numbers, and the logs
//! would no longer be one history. So a store is claimed before it is
//! opened, with `flock` on `<database>.lock`, and the claim is held while
//! the store's writer runs. The kernel drops it when the process ends, by
//! any means (`kill -9` included), so a restart never finds a stale claim.
//! The holder writes its process id into the file, so that a refused
//! opener can say which process to stop.
//! A separate file, not the database: SQLite's own locks are POSIX record
//! locks, which closing any other descriptor of the same file would drop.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;

use crate::store::StoreError;

/// The claim on one store; dropping it lets another process open the store.
#[derive(Debug)]
pub(super) struct Claim {
    /// `None` where the file system cannot lock files: nothing is claimed.
    _file: Option<File>,
}

impl Claim {
    /// Claims the store at `database`, or says it is in use.
    pub(super) fn take(database: &Path) -> Result<Self, StoreError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        // The error names neither file: where the store is stays internal.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(Path::new(&name))
            .map_err(|e| {
                StoreError::Io(format!("cannot create the store's lock file: {}", e.kind()))
            })?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the message a second opener gives.
                // Best effort: the lock, not the text, is the claim.
                let _ = file.set_len(0);
                let _ = (&file).write_all(std::process::id().to_string().as_bytes());
                Ok(Self { _file: Some(file) })
            }
            Err(TryLockError::WouldBlock) => Err(StoreError::InUse { pid: holder(&file) }),
            // A file system that cannot lock files (some network mounts):
            // the store opens as it did before claims, unguarded, rather
            // than not at all.
            Err(TryLockError::Error(err)) => {
                tracing::warn!(
                    error = %err.kind(),
                    "the store's lock could not be taken; a second process on its data \
                     directory would not be refused"
                );
                Ok(Self { _file: None })
            }
        }
    }
}

/// The process id the holder wrote into the lock file, if it is one.
fn holder(file: &File) -> Option<u32> {
    let mut text = String::new();
    Read::take(file, 16).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
