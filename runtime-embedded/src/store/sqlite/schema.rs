//! The SQLite schema and its versioned migrations.
//!
//! `PRAGMA user_version` holds the schema version. Opening applies every
//! migration past it in order, each in its own transaction; a store newer
//! than [`MIGRATIONS`] knows is refused, never guessed at.

use rusqlite::Connection;

use crate::store::StoreError;

/// Migration `n` (from 0) brings a store from version `n` to `n + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: Workers, their transcripts, event logs and remembered client ids.
    // Timestamps are Unix nanoseconds; enums are their wire names. Events
    // are stored in segments: the events one batch wrote for one Worker, as
    // a JSON array of [seq, event], so a streamed reply costs one row per
    // commit, not one per delta.
    "CREATE TABLE workers (
        id TEXT PRIMARY KEY NOT NULL,
        display_name TEXT NOT NULL,
        profile TEXT NOT NULL,
        fallback INTEGER NOT NULL,
        intent TEXT,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        transcript_len INTEGER NOT NULL,
        pending_inputs INTEGER NOT NULL,
        last_cursor TEXT,
        next_seq INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE entries (
        worker_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        at INTEGER NOT NULL,
        status TEXT NOT NULL,
        input_id TEXT,
        PRIMARY KEY (worker_id, idx)
     ) WITHOUT ROWID;
     CREATE TABLE events (
        worker_id TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        events TEXT NOT NULL,
        PRIMARY KEY (worker_id, first_seq)
     ) WITHOUT ROWID;
     CREATE TABLE client_ids (
        worker_id TEXT NOT NULL,
        client_input_id TEXT NOT NULL,
        acceptance TEXT NOT NULL,
        ord INTEGER NOT NULL,
        PRIMARY KEY (worker_id, client_input_id)
     ) WITHOUT ROWID;
     CREATE INDEX client_ids_by_order ON client_ids (worker_id, ord);",
    // 2: Worker metadata, a JSON object of string pairs.
    "ALTER TABLE workers ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';",
    // 3: Where a fork came from (JSON), NULL for other Workers.
    "ALTER TABLE workers ADD COLUMN forked_from TEXT;",
    // 4: Finding Workers: each metadata pair as a row keyed for lookup by
    // pair (in worker id order), and indexes for the `updated_at` order and
    // the profile filter.
    "CREATE TABLE worker_metadata (
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        worker_id TEXT NOT NULL,
        PRIMARY KEY (key, value, worker_id)
     ) WITHOUT ROWID;
     CREATE INDEX worker_metadata_by_worker ON worker_metadata (worker_id);
     INSERT INTO worker_metadata (key, value, worker_id)
        SELECT pair.key, pair.value, workers.id FROM workers, json_each(workers.metadata) AS pair;
     CREATE INDEX workers_by_updated ON workers (updated_at, id);
     CREATE INDEX workers_by_profile ON workers (profile, id);",
    // 5: Changes of `updated_at` (kept for an hour), so an `updated_at`
    // pass orders Workers as they stood at its snapshot, and creation
    // order for the Workers created since.
    "CREATE TABLE worker_moves (
        new_key INTEGER NOT NULL,
        worker_id TEXT NOT NULL,
        old_key INTEGER NOT NULL,
        PRIMARY KEY (new_key, worker_id)
     ) WITHOUT ROWID;
     CREATE TABLE search_state (forgotten INTEGER NOT NULL);
     INSERT INTO search_state (forgotten) VALUES (-9223372036854775808);
     CREATE INDEX workers_by_created ON workers (created_at, id);",
    // 6: Text appended to an entry after the batch that wrote it, one row
    // per commit, folded into the entry when its status changes: appending
    // is O(text) instead of rewriting the whole entry each commit.
    "CREATE TABLE entry_parts (
        worker_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        part INTEGER NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (worker_id, idx, part)
     ) WITHOUT ROWID;",
    // 7: A digest of each remembered input's text (FNV-1a as a signed
    // 64-bit integer), so that a `client_input_id` sent again with another
    // text is refused. NULL for ids remembered before: any text retries them.
    "ALTER TABLE client_ids ADD COLUMN text_digest INTEGER;",
];

/// The schema version this program writes.
pub(super) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the store to the current version, or refuses it.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if found > current_version() {
        return Err(StoreError::NewerSchema {
            found,
            known: current_version(),
        });
    }
    if found < 0 {
        return Err(StoreError::Corrupt(format!("schema version {found}")));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn
            .transaction()
            .map_err(|e| StoreError::Io(e.to_string()))?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Corrupt(format!("migration to version {}: {e}", from + 1)))?;
        tx.pragma_update(None, "user_version", from as i64 + 1)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        tx.commit().map_err(|e| StoreError::Io(e.to_string()))?;
    }
    Ok(())
}
