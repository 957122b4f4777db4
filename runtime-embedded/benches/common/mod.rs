//! What the benchmarks share: a Runtime over SQLite in a fresh folder.

use std::sync::Arc;

use yoi_runtime_embedded::store::{LoadBounds, SqliteStore};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime};

/// A Runtime with `options` over a SQLite store in a fresh temporary
/// folder, keeping what the options' limits say.
pub(crate) fn sqlite_runtime(options: EmbeddedOptions) -> EmbeddedRuntime {
    let dir = std::env::temp_dir().join(format!(
        "yoi-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let retain = LoadBounds {
        entries: options.limits.max_transcript_entries,
        events: options.limits.max_events_per_worker,
        client_ids: options.limits.max_remembered_client_ids,
    };
    let store = SqliteStore::open(&dir.join("yoi.sqlite3"), retain).unwrap();
    EmbeddedRuntime::open(options, Arc::new(store)).unwrap()
}
