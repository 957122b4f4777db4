//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use std::sync::Arc;
use yoi_runtime_api::ProfileName;
use yoi_runtime_api::conformance::SLOW_PROFILE;

use yoi_runtime_embedded::store::{LoadBounds, SqliteStore};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, ProfileConfig};

/// Options with the `conformance-slow` profile the suite needs.
pub fn options_with_slow_profile() -> EmbeddedOptions {
    EmbeddedOptions {
        profiles: vec![ProfileConfig::echo(
            ProfileName::new(SLOW_PROFILE).unwrap(),
            Duration::from_millis(600),
        )],
        ..EmbeddedOptions::default()
    }
}

/// A runtime with the `conformance-slow` profile the suite needs.
pub fn runtime_with_slow_profile() -> EmbeddedRuntime {
    EmbeddedRuntime::new(options_with_slow_profile()).unwrap()
}

/// What the SQLite store keeps per Worker, from `options`.
pub fn retain(options: &EmbeddedOptions) -> LoadBounds {
    LoadBounds {
        entries: options.limits.max_transcript_entries,
        events: options.limits.max_events_per_worker,
        client_ids: options.limits.max_remembered_client_ids,
    }
}

/// A runtime over a SQLite store at `path`; returns the store too, so the
/// test can close it (waiting for the writer) after dropping the runtime.
pub fn sqlite_runtime(
    path: &std::path::Path,
    options: EmbeddedOptions,
) -> (EmbeddedRuntime, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(path, retain(&options)).unwrap());
    let runtime = EmbeddedRuntime::open(options, store.clone()).unwrap();
    (runtime, store)
}
