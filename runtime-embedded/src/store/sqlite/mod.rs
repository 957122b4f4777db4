//! [`SqliteStore`]: one SQLite file per Runtime, written by one thread.

mod claim;
mod codec;
mod moves;
mod queue;
mod schema;
mod search;
mod writer;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::watch;
use yoi_runtime_api::dto::{
    PageKey, PassOrder, WorkerCounts, WorkerEvent, WorkerFilter, WorkerSort, WorkerState,
};
use yoi_runtime_api::{Timestamp, WorkerId};

use self::claim::Claim;
use self::codec::{from_json, from_name, id, name, timestamp};
use self::queue::Queue;
use self::writer::{CommitClock, Progress};
use super::{
    Change, LoadBounds, RememberedInput, StoreError, StoredSummary, StoredWorker, Ticket,
    WorkerMeta, WorkerStatus, WorkerStore,
};

/// A durable store in one SQLite file (WAL, `synchronous = NORMAL`).
///
/// **Durability:** a change is durable once its batch is committed: it
/// survives the process being killed at any moment. With
/// `synchronous = NORMAL` in WAL mode, a power cut or kernel crash can
/// lose the last batches committed before it (never corrupt the file).
/// Reads use their own connection and see committed data.
pub struct SqliteStore {
    /// Records on their way to the writer.
    queue: Arc<Queue>,
    /// Where the writer has got to; the store's own handle on it says when
    /// the store is closed.
    progress: watch::Sender<Progress>,
    reader: Mutex<Connection>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// When the writer's commit under way started.
    clock: Arc<CommitClock>,
    /// A commit taking longer than this is a stalled store.
    stall_after: Duration,
}

impl fmt::Debug for SqliteStore {
    /// Never shows where the file is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}

/// One `record` call, as the writer gets it.
type Record = (Ticket, Vec<Change>);

fn io(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(err.to_string())
        }
        _ => StoreError::Io(err.to_string()),
    }
}

fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    // SQLite's open errors name the file: keep the location out.
    let redact = |err: rusqlite::Error| match io(err) {
        StoreError::Io(message) => StoreError::Io(redact_path(&message, path)),
        StoreError::Corrupt(message) => StoreError::Corrupt(redact_path(&message, path)),
        other => other,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(redact)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(redact)?;
    // Pages read through a memory map rather than copied by `pread`, and
    // 16 MiB of page cache per connection.
    conn.pragma_update(None, "mmap_size", 256i64 << 20)
        .map_err(redact)?;
    conn.pragma_update(None, "cache_size", -16384i64)
        .map_err(redact)?;
    Ok(conn)
}

fn redact_path(message: &str, path: &Path) -> String {
    let text = path.display().to_string();
    let message = if text.is_empty() {
        message.to_owned()
    } else {
        message.replace(&text, "<store>")
    };
    // Anything still shaped like an absolute path goes too.
    message
        .split_whitespace()
        .map(|word| {
            if word.starts_with('/') {
                "<path>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Says the store is closed when dropped.
struct ClosedOnDrop(watch::Sender<Progress>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.send_modify(|p| p.closed = true);
    }
}

/// How often closing looks whether the writer has ended.
const CLOSE_POLL: Duration = Duration::from_millis(10);

impl SqliteStore {
    /// How long a commit may take before the store counts as stalled,
    /// unless [`SqliteStore::stall_after`] says otherwise.
    pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(10);

    /// Opens (or creates) the store at `path`, migrating it to the current
    /// schema; `retain` bounds what is kept on disk per Worker. Refuses a
    /// damaged file or one written by a newer version, and a store another
    /// process has open ([`StoreError::InUse`]): one process owns a store
    /// while its writer runs.
    pub fn open(path: &Path, retain: LoadBounds) -> Result<Self, StoreError> {
        let claim = Claim::take(path)?;
        // Each connection is used by one thread at a time (`Connection` is
        // not `Sync`), so SQLite's own per-call mutex is dropped.
        let mut conn = connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The first statement reads the header: a file that is not a
        // database fails here.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(io)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io(format!("cannot use WAL mode (got {mode})")));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(io)?;
        schema::migrate(&mut conn)?;
        // A cheap sanity read of every table, so damage shows now.
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM workers LIMIT 1), (SELECT 1 FROM entries LIMIT 1),
                    (SELECT 1 FROM events LIMIT 1), (SELECT 1 FROM client_ids LIMIT 1)",
            [],
            |_| Ok(()),
        )
        .map_err(io)?;
        let reader = connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let queue = Arc::new(Queue::default());
        let progress = watch::Sender::new(Progress::default());
        let records = queue.clone();
        let progress_for_writer = progress.clone();
        let clock = Arc::new(CommitClock::new());
        let writer_clock = clock.clone();
        let writer = std::thread::Builder::new()
            .name("yoi-store-writer".to_owned())
            .spawn(move || {
                // However the writer ends (even by a panic), whoever waits
                // for durability is answered.
                let _closed = ClosedOnDrop(progress_for_writer.clone());
                writer::run(conn, &records, progress_for_writer, retain, &writer_clock);
                // Held until the writer's last commit.
                drop(claim);
            })
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(Self {
            queue,
            progress,
            reader: Mutex::new(reader),
            writer: Mutex::new(Some(writer)),
            clock,
            stall_after: Self::DEFAULT_STALL_AFTER,
        })
    }

    /// The store, counting as stalled (see [`WorkerStore::is_stalled`])
    /// once a commit has taken longer than `after` (default
    /// [`SqliteStore::DEFAULT_STALL_AFTER`]).
    #[must_use]
    pub fn stall_after(mut self, after: Duration) -> Self {
        self.stall_after = after;
        self
    }

    /// Copies the store at `source` to a new file at `dest` (its folders are
    /// made if needed, the owner's alone as [`super::create_private_folder`]
    /// makes them), as one consistent moment of it, while a server may
    /// be writing to it: SQLite's `VACUUM INTO`, which only reads the
    /// source. Refuses a `dest` that exists, and a `source` that is not a
    /// store.
    pub fn backup(source: &Path, dest: &Path) -> Result<(), StoreError> {
        if dest.exists() {
            return Err(StoreError::Io(
                "the backup's file exists already; give a new one".to_owned(),
            ));
        }
        if !source.is_file() {
            return Err(StoreError::Io("there is no store to back up".to_owned()));
        }
        if let Some(folder) = dest.parent() {
            super::create_private_folder(folder).map_err(|e| StoreError::Io(e.to_string()))?;
        }
        // Read-write without create: a read-only connection could not make
        // the WAL index a stopped store lacks. Only reads are made.
        let conn = connect(
            source,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(io)?;
        if version == 0 {
            return Err(StoreError::Corrupt("not a yoi store".to_owned()));
        }
        let dest_text = dest
            .to_str()
            .ok_or_else(|| StoreError::Io("the backup's path is not UTF-8".to_owned()))?;
        conn.execute("VACUUM INTO ?1", [dest_text])
            .map_err(|err| match io(err) {
                StoreError::Io(message) => StoreError::Io(redact_path(&message, dest)),
                other => other,
            })?;
        Ok(())
    }

    /// Stops taking changes and waits until the writer has committed all
    /// it got. Later records are dropped.
    pub fn close(&self) {
        self.finish();
    }

    /// Closes the queue and waits for the writer to commit what it has,
    /// unless it is stuck in a write that does not end (a hung disk): a
    /// stalled writer is left behind, so that shutting down has an end.
    /// What it had not committed is lost, as in a crash.
    fn finish(&self) {
        self.queue.close();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(writer) = writer else {
            return;
        };
        while !writer.is_finished() {
            if self.is_stalled() {
                tracing::error!(
                    "the store's writer is stuck in a write that does not end; closing without \
                     it (what it had not committed is lost)"
                );
                break;
            }
            std::thread::sleep(CLOSE_POLL);
        }
        if writer.is_finished() {
            let _ = writer.join();
        }
        // Whoever still waits for durability is answered: nothing more
        // becomes durable through this store.
        self.progress.send_modify(|p| p.closed = true);
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        // One read transaction: a consistent snapshot across tables.
        let tx = conn.transaction().map_err(io)?;
        let value = f(&tx).map_err(io)?;
        tx.finish().map_err(io)?;
        Ok(value)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.finish();
    }
}

const SUMMARY_COLUMNS: &str = "id, display_name, profile, fallback, intent, created_at, state,
    updated_at, transcript_len, pending_inputs, last_cursor, next_seq, metadata, forked_from";

fn summary_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSummary> {
    let worker_id: WorkerId = id(&row.get::<_, String>(0)?)?;
    Ok(StoredSummary {
        meta: WorkerMeta {
            worker_id: worker_id.clone(),
            display_name: row.get(1)?,
            profile: id(&row.get::<_, String>(2)?)?,
            fallback: row.get(3)?,
            intent: row.get(4)?,
            created_at: timestamp(row.get(5)?)?,
            metadata: from_json(&row.get::<_, String>(12)?)?,
            forked_from: row
                .get::<_, Option<String>>(13)?
                .map(|text| from_json(&text))
                .transpose()?,
        },
        status: WorkerStatus {
            worker_id,
            state: from_name(&row.get::<_, String>(6)?)?,
            updated_at: timestamp(row.get(7)?)?,
            transcript_len: row.get::<_, i64>(8)? as u64,
            pending_inputs: row.get::<_, i64>(9)? as u64,
            last_cursor: row
                .get::<_, Option<String>>(10)?
                .map(|c| id(&c))
                .transpose()?,
            next_seq: row.get::<_, i64>(11)? as u64,
        },
    })
}

#[async_trait]
impl WorkerStore for SqliteStore {
    fn persistent(&self) -> bool {
        true
    }

    fn record(&self, changes: Vec<Change>) -> Ticket {
        // A closed store drops the record; its ticket (past every durable
        // one) never becomes durable, and waiting for it fails.
        self.queue.push(changes).unwrap_or(Ticket(u64::MAX))
    }

    fn recorded(&self) -> Ticket {
        self.queue.last()
    }

    fn is_durable(&self, ticket: Ticket) -> bool {
        self.progress.borrow().durable >= ticket
    }

    fn has_failed(&self) -> bool {
        self.progress.borrow().failed
    }

    fn is_stalled(&self) -> bool {
        self.clock
            .running_for()
            .is_some_and(|running| running > self.stall_after)
    }

    async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        if self.is_durable(ticket) {
            return Ok(());
        }
        self.queue.urge();
        let mut progress = self.progress.subscribe();
        let reached = progress
            .wait_for(|p| p.durable >= ticket || p.failed || p.closed)
            .await
            .map_err(|_| StoreError::Failed)?;
        if reached.durable >= ticket {
            Ok(())
        } else {
            Err(StoreError::Failed)
        }
    }

    fn load(
        &self,
        worker_id: &WorkerId,
        bounds: LoadBounds,
    ) -> Result<Option<StoredWorker>, StoreError> {
        self.read(|tx| {
            let Some(summary) = tx
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM workers WHERE id = ?1"
                ))?
                .query_row(params![worker_id.as_str()], summary_row)
                .optional()?
            else {
                return Ok(None);
            };
            let mut entries = tx
                .prepare_cached(
                    "SELECT idx, role, text, at, status, input_id FROM entries
                     WHERE worker_id = ?1 ORDER BY idx DESC LIMIT ?2",
                )?
                .query_map(params![worker_id.as_str(), bounds.entries as i64], |row| {
                    Ok(yoi_runtime_api::dto::TranscriptEntry {
                        index: row.get::<_, i64>(0)? as u64,
                        role: from_name(&row.get::<_, String>(1)?)?,
                        text: row.get(2)?,
                        at: timestamp(row.get(3)?)?,
                        status: from_name(&row.get::<_, String>(4)?)?,
                        input_id: row
                            .get::<_, Option<String>>(5)?
                            .map(|i| id(&i))
                            .transpose()?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            entries.reverse();
            // Text a commit appended to an entry that is not whole yet (a
            // reply a crash interrupted): its parts, in order.
            let parts = tx
                .prepare_cached(
                    "SELECT idx, text FROM entry_parts WHERE worker_id = ?1 ORDER BY idx, part",
                )?
                .query_map(params![worker_id.as_str()], |row| {
                    Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (index, text) in parts {
                if let Some(entry) = entries.iter_mut().find(|e| e.index == index) {
                    entry.text.push_str(&text);
                }
            }
            // Newest segments first, until enough events are read.
            let mut segments = tx.prepare_cached(
                "SELECT events FROM events WHERE worker_id = ?1 ORDER BY first_seq DESC",
            )?;
            let mut rows = segments.query(params![worker_id.as_str()])?;
            let mut newest_first: Vec<Vec<(u64, WorkerEvent)>> = Vec::new();
            let mut count = 0;
            while count < bounds.events {
                let Some(row) = rows.next()? else { break };
                let segment: Vec<(u64, WorkerEvent)> = from_json(&row.get::<_, String>(0)?)?;
                count += segment.len();
                newest_first.push(segment);
            }
            drop(rows);
            let mut events: Vec<(u64, WorkerEvent)> =
                newest_first.into_iter().rev().flatten().collect();
            let skip = events.len().saturating_sub(bounds.events);
            events.drain(..skip);
            let mut client_ids = tx
                .prepare_cached(
                    "SELECT client_input_id, acceptance, text_digest FROM client_ids
                     WHERE worker_id = ?1 ORDER BY ord DESC LIMIT ?2",
                )?
                .query_map(
                    params![worker_id.as_str(), bounds.client_ids as i64],
                    |row| {
                        let remembered = RememberedInput {
                            acceptance: from_json(&row.get::<_, String>(1)?)?,
                            text_digest: row.get::<_, Option<i64>>(2)?.map(|bits| bits as u64),
                        };
                        Ok((id(&row.get::<_, String>(0)?)?, remembered))
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            client_ids.reverse();
            Ok(Some(StoredWorker {
                meta: summary.meta,
                status: summary.status,
                entries,
                events,
                client_ids,
            }))
        })
    }

    fn search(
        &self,
        pass: &PassOrder,
        filter: &WorkerFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> Result<Option<Vec<(PageKey, StoredSummary)>>, StoreError> {
        self.read(|tx| {
            if pass.sort == WorkerSort::UpdatedAt && pass.snapshot < moves::forgotten(tx)? {
                return Ok(None);
            }
            search::page(tx, pass, filter, after, limit).map(Some)
        })
    }

    fn count(&self, filter: &WorkerFilter) -> Result<u64, StoreError> {
        self.read(|tx| search::count(tx, filter))
    }

    fn counts(&self) -> Result<WorkerCounts, StoreError> {
        self.read(|tx| {
            let mut counts = WorkerCounts::default();
            let rows = tx
                .prepare_cached("SELECT state, COUNT(*) FROM workers GROUP BY state")?
                .query_map([], |row| {
                    Ok((
                        from_name::<WorkerState>(&row.get::<_, String>(0)?)?,
                        row.get::<_, i64>(1)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (state, n) in rows {
                for _ in 0..n {
                    counts.add(state);
                }
            }
            Ok(counts)
        })
    }

    fn unfinished(&self) -> Result<Vec<WorkerId>, StoreError> {
        self.read(|tx| {
            tx.prepare_cached(
                "SELECT id FROM workers
                 WHERE state IN (?1, ?2) OR (pending_inputs > 0 AND state != ?3)",
            )?
            .query_map(
                params![
                    name(&WorkerState::Running),
                    name(&WorkerState::Stopping),
                    name(&WorkerState::Stopped)
                ],
                |row| id(&row.get::<_, String>(0)?),
            )?
            .collect()
        })
    }

    fn close(&self) {
        self.finish();
    }

    fn latest_updated_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|tx| {
            // The (updated_at, id) index answers this without a scan.
            let latest: Option<i64> =
                tx.query_row("SELECT max(updated_at) FROM workers", [], |row| row.get(0))?;
            latest.map(timestamp).transpose()
        })
    }

    fn stopped(&self) -> Result<Vec<(WorkerId, Timestamp)>, StoreError> {
        self.read(|tx| {
            tx.prepare_cached(
                "SELECT id, updated_at FROM workers WHERE state = ?1 ORDER BY updated_at, id",
            )?
            .query_map(params![name(&WorkerState::Stopped)], |row| {
                Ok((id(&row.get::<_, String>(0)?)?, timestamp(row.get(1)?)?))
            })?
            .collect()
        })
    }
}
