//! `yoi backup`: a copy of the store of every embedded Runtime in a data
//! directory, taken while a server may be writing to it, laid out as a
//! data directory of its own (`yoi serve --data-dir COPY` serves it).

use std::path::Path;

use yoi_runtime_api::RuntimeId;
use yoi_runtime_embedded::store::{SqliteStore, StoreError};

use crate::config::{RUNTIMES_FOLDER, store_path};

/// Why a backup was not made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination is in the way, or there is nothing to copy.
    #[error("{0}")]
    Usage(String),
    /// A store could not be read or its copy written.
    #[error("runtime '{runtime_id}': {source}")]
    Store {
        /// The Runtime whose store it is.
        runtime_id: RuntimeId,
        /// What SQLite said.
        #[source]
        source: StoreError,
    },
}

/// Copies each Runtime's store in `data_dir` to the same place under
/// `dest`, which must not exist or be an empty folder; the Runtimes
/// copied, in id order. Folders of `data_dir` that are not Runtimes'
/// (their names are not ids, or they hold no store) are left out. All or
/// nothing: when one store cannot be copied, the copies already made are
/// removed again, and `dest` is left as it was.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<Vec<RuntimeId>, BackupError> {
    let in_the_way =
        std::fs::read_dir(dest).is_ok_and(|mut entries| entries.next().is_some()) || dest.is_file();
    if in_the_way {
        return Err(BackupError::Usage(
            "the backup's folder exists and is not empty; give a new one".to_owned(),
        ));
    }
    let mut runtime_ids: Vec<RuntimeId> = std::fs::read_dir(data_dir.join(RUNTIMES_FOLDER))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter_map(|name| RuntimeId::new(name).ok())
                .filter(|id| store_path(data_dir, id).is_file())
                .collect()
        })
        .unwrap_or_default();
    if runtime_ids.is_empty() {
        return Err(BackupError::Usage(
            "the data directory holds no store to back up".to_owned(),
        ));
    }
    runtime_ids.sort();
    let existed = dest.exists();
    for runtime_id in &runtime_ids {
        let copied = SqliteStore::backup(
            &store_path(data_dir, runtime_id),
            &store_path(dest, runtime_id),
        );
        if let Err(source) = copied {
            // `dest` was missing or empty: all in it now is this backup's.
            let _ = if existed {
                std::fs::remove_dir_all(dest.join(RUNTIMES_FOLDER))
            } else {
                std::fs::remove_dir_all(dest)
            };
            return Err(BackupError::Store {
                runtime_id: runtime_id.clone(),
                source,
            });
        }
    }
    Ok(runtime_ids)
}
