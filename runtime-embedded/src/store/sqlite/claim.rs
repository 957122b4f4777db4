//! One process per store: an exclusive lock on a file beside the database.
//!
//! Two processes writing one store would each believe they own every
//! Worker in it: both would recover the same interrupted turns and append
//! to the same event logs with their own sequence numbers, and the logs
//! would no longer be one history. So a store is claimed before it is
//! opened, with `flock` on `<database>.lock`, and the claim is held while
//! the store's writer runs. The kernel drops it when the process ends, by
//! any means (`kill -9` included), so a restart never finds a stale claim.
//! A separate file, not the database: SQLite's own locks are POSIX record
//! locks, which closing any other descriptor of the same file would drop.

use std::fs::{File, OpenOptions, TryLockError};
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
            .write(true)
            .open(Path::new(&name))
            .map_err(|e| {
                StoreError::Io(format!("cannot create the store's lock file: {}", e.kind()))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: Some(file) }),
            Err(TryLockError::WouldBlock) => Err(StoreError::InUse),
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
