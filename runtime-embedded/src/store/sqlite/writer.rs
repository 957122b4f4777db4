//! The one writer: applies recorded changes in batches (group commit).
//!
//! Changes arrive through the [`Queue`] in the order they were recorded.
//! The writer takes a batch when one is due (see the queue), applies it in
//! one transaction, commits, and publishes the last ticket it committed.
//! While it commits, new changes queue for the next batch, so under load
//! many inputs share one commit and the hot path never waits for the
//! disk. Within a batch, appends to one entry are joined into one
//! update, and only a Worker's last summary is written.
//!
//! A batch that cannot be committed (a full disk, an I/O error) is tried
//! again, [`FAILED_AFTER`] times quickly and then with a growing pause up
//! to [`MAX_RETRY_PAUSE`], until it commits or the store closes: **changes
//! are committed in the order they were recorded, or not at all**, so the
//! writer never skips a batch. From the quick tries' end until a commit
//! succeeds, [`Progress::failed`] is set: waiting for durability fails at
//! once and the Runtime takes nothing new that must last, which also keeps
//! the queue from growing by more than what running turns record. A store
//! closed while failing drops what it could not write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, params};
use tokio::sync::watch;
use yoi_runtime_api::WorkerId;

use super::codec::{json, name, nanos};
use super::moves;
use super::queue::Queue;
use yoi_runtime_api::dto::{Metadata, TranscriptEntry, WorkerEvent};

use crate::store::{Change, LoadBounds, Ticket, WorkerStatus};

/// Where the writer has got to.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Progress {
    /// Every record up to this ticket is committed.
    pub(super) durable: Ticket,
    /// Writes are failing: nothing is committed until a retry succeeds.
    pub(super) failed: bool,
    /// The store is closed: nothing more becomes durable (set by the
    /// store once its writer has ended, or has been left behind stalled).
    pub(super) closed: bool,
}

/// When the commit under way started: a commit that does not end (a hung
/// disk, a lock another process holds) is a stalled store.
#[derive(Debug)]
pub(super) struct CommitClock {
    base: Instant,
    /// Nanoseconds after `base` plus one when the commit under way started;
    /// 0 while none is.
    started: AtomicU64,
}

impl CommitClock {
    pub(super) fn new() -> Self {
        Self {
            base: Instant::now(),
            started: AtomicU64::new(0),
        }
    }

    fn start(&self) {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.started.store(now + 1, Ordering::Relaxed);
    }

    fn stop(&self) {
        self.started.store(0, Ordering::Relaxed);
    }

    /// How long the commit under way has taken, if one is.
    pub(super) fn running_for(&self) -> Option<Duration> {
        let started = self.started.load(Ordering::Relaxed);
        (started != 0).then(|| {
            self.base
                .elapsed()
                .saturating_sub(Duration::from_nanos(started - 1))
        })
    }
}

/// Quick tries of a batch before the store reports itself failed.
const FAILED_AFTER: u32 = 3;
/// The pause after the first failed try, doubled after each one.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between tries of a failing batch.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Runs until the queue is closed and drained.
pub(super) fn run(
    mut conn: Connection,
    queue: &Queue,
    progress: watch::Sender<Progress>,
    retain: LoadBounds,
    clock: &CommitClock,
) {
    let mut next_order: i64 = conn
        .query_row("SELECT COALESCE(MAX(ord), 0) FROM client_ids", [], |r| {
            r.get(0)
        })
        .unwrap_or(0);
    let mut moves = moves::count(&conn);
    while let Some(batch) = queue.next_batch() {
        let last = batch.last().map_or(Ticket(0), |(ticket, _)| *ticket);
        let mut tries = 0;
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            // A rolled-back try must not leave the counts it moved.
            let counts = (next_order, moves);
            clock.start();
            let result = commit(&mut conn, &batch, retain, (&mut next_order, &mut moves));
            clock.stop();
            let err = match result {
                Ok(()) => {
                    if progress.borrow().failed {
                        tracing::warn!("the store writes again");
                    }
                    progress.send_modify(|p| {
                        p.durable = last;
                        p.failed = false;
                    });
                    break;
                }
                Err(err) => err,
            };
            (next_order, moves) = counts;
            tries += 1;
            if tries == FAILED_AFTER {
                tracing::error!(
                    error = %err,
                    "the store failed to write; it takes nothing new until a retry succeeds"
                );
                progress.send_modify(|p| p.failed = true);
            }
            if queue.closed_within(pause) && tries >= FAILED_AFTER {
                tracing::error!(
                    error = %err,
                    "the store closed while failing to write; the changes since its last \
                     commit are lost"
                );
                // Drain and drop the rest: nothing more becomes durable.
                while queue.next_batch().is_some() {}
                return;
            }
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
        }
    }
}

fn commit(
    conn: &mut Connection,
    batch: &[(Ticket, Vec<Change>)],
    retain: LoadBounds,
    (next_order, moves): (&mut i64, &mut i64),
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut batch_writer = Batch {
        tx: &tx,
        entries: HashMap::new(),
        appends: HashMap::new(),
        events: HashMap::new(),
        summaries: HashMap::new(),
        pruning: HashMap::new(),
        next_order,
        moves,
    };
    for (_, changes) in batch {
        for change in changes {
            batch_writer.apply(change)?;
        }
    }
    batch_writer.finish(retain)?;
    tx.commit()
}

/// What needs pruning for one Worker after the batch.
#[derive(Default)]
struct Prune {
    client_ids: bool,
    /// The oldest entry and event memory keeps, when it changed.
    retained: Option<(u64, u64)>,
}

struct Batch<'a, 'b> {
    tx: &'a Transaction<'b>,
    /// Entries added in this batch, written once at its end with every
    /// append and status change applied.
    entries: HashMap<(WorkerId, u64), TranscriptEntry>,
    /// Text appended to (worker, index) of an entry from an earlier batch,
    /// not yet written.
    appends: HashMap<(WorkerId, u64), String>,
    /// The last summary of each Worker.
    summaries: HashMap<WorkerId, WorkerStatus>,
    /// Events of each Worker, written as one segment at the batch's end.
    events: HashMap<WorkerId, Vec<(u64, &'a WorkerEvent)>>,
    pruning: HashMap<WorkerId, Prune>,
    next_order: &'a mut i64,
    /// Rows in `worker_moves`, as the writer counts them.
    moves: &'a mut i64,
}

impl<'a> Batch<'a, '_> {
    fn apply(&mut self, change: &'a Change) -> rusqlite::Result<()> {
        let tx = self.tx;
        match change {
            Change::Created(meta) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO workers (id, display_name, profile, fallback, intent,
                       created_at, state, updated_at, transcript_len, pending_inputs, last_cursor,
                       next_seq, metadata, forked_from)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'idle', ?6, 0, 0, NULL, 1, ?7, ?8)",
                )?
                .execute(params![
                    meta.worker_id.as_str(),
                    meta.display_name,
                    meta.profile.as_str(),
                    meta.fallback,
                    meta.intent,
                    nanos(&meta.created_at),
                    json(&meta.metadata),
                    meta.forked_from.as_ref().map(json),
                ])?;
                // A new id has no pairs yet: nothing to replace.
                if !meta.metadata.is_empty() {
                    write_pairs(tx, &meta.worker_id, &meta.metadata)?;
                }
            }
            Change::Meta {
                worker_id,
                display_name,
                metadata,
            } => {
                tx.prepare_cached(
                    "UPDATE workers SET display_name = ?2, metadata = ?3 WHERE id = ?1",
                )?
                .execute(params![
                    worker_id.as_str(),
                    display_name,
                    json(metadata)
                ])?;
                write_pairs(tx, worker_id, metadata)?;
            }
            Change::Summary(status) => {
                self.summaries
                    .insert(status.worker_id.clone(), status.clone());
            }
            Change::Entry { worker_id, entry } => {
                let key = (worker_id.clone(), entry.index);
                self.appends.remove(&key);
                self.entries.insert(key, entry.clone());
            }
            Change::AppendText {
                worker_id,
                index,
                text,
            } => {
                let key = (worker_id.clone(), *index);
                match self.entries.get_mut(&key) {
                    Some(entry) => entry.text.push_str(text),
                    None => self.appends.entry(key).or_default().push_str(text),
                }
            }
            Change::EntryStatus {
                worker_id,
                index,
                status,
            } => {
                let key = (worker_id.clone(), *index);
                match self.entries.get_mut(&key) {
                    Some(entry) => entry.status = *status,
                    None => {
                        self.flush_append(worker_id, *index)?;
                        fold_parts(tx, worker_id, *index)?;
                        tx.prepare_cached(
                            "UPDATE entries SET status = ?3 WHERE worker_id = ?1 AND idx = ?2",
                        )?
                        .execute(params![
                            worker_id.as_str(),
                            *index as i64,
                            name(status)
                        ])?;
                    }
                }
            }
            Change::Event { seq, event } => {
                self.events
                    .entry(event.worker_id.clone())
                    .or_default()
                    .push((*seq, event));
            }
            Change::ClientId {
                worker_id,
                client_input_id,
                remembered,
            } => {
                *self.next_order += 1;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO client_ids
                        (worker_id, client_input_id, acceptance, ord, text_digest)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    worker_id.as_str(),
                    client_input_id.as_str(),
                    json(&remembered.acceptance),
                    *self.next_order,
                    // Stored as its bits: SQLite integers are signed.
                    remembered.text_digest.map(|digest| digest as i64),
                ])?;
                self.prune(worker_id).client_ids = true;
            }
            Change::Retained {
                worker_id,
                first_entry,
                first_seq,
            } => {
                self.prune(worker_id).retained = Some((*first_entry, *first_seq));
            }
            Change::Deleted { worker_id } => {
                self.entries.retain(|(w, _), _| w != worker_id);
                self.appends.retain(|(w, _), _| w != worker_id);
                self.events.remove(worker_id);
                self.summaries.remove(worker_id);
                self.pruning.remove(worker_id);
                for table in [
                    "DELETE FROM workers WHERE id = ?1",
                    "DELETE FROM entries WHERE worker_id = ?1",
                    "DELETE FROM events WHERE worker_id = ?1",
                    "DELETE FROM client_ids WHERE worker_id = ?1",
                    "DELETE FROM worker_metadata WHERE worker_id = ?1",
                    "DELETE FROM entry_parts WHERE worker_id = ?1",
                ] {
                    tx.prepare_cached(table)?
                        .execute(params![worker_id.as_str()])?;
                }
            }
        }
        Ok(())
    }

    fn prune(&mut self, worker_id: &WorkerId) -> &mut Prune {
        self.pruning.entry(worker_id.clone()).or_default()
    }

    fn flush_append(&mut self, worker_id: &WorkerId, index: u64) -> rusqlite::Result<()> {
        if let Some(text) = self.appends.remove(&(worker_id.clone(), index)) {
            write_append(self.tx, worker_id, index, &text)?;
        }
        Ok(())
    }

    /// Writes what was held back, and deletes what retention drops.
    fn finish(self, retain: LoadBounds) -> rusqlite::Result<()> {
        let tx = self.tx;
        for ((worker_id, _), entry) in &self.entries {
            // The entry is written whole: no parts of an earlier one stay.
            tx.prepare_cached("DELETE FROM entry_parts WHERE worker_id = ?1 AND idx = ?2")?
                .execute(params![worker_id.as_str(), entry.index as i64])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO entries (worker_id, idx, role, text, at, status, input_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                worker_id.as_str(),
                entry.index as i64,
                name(&entry.role),
                entry.text,
                nanos(&entry.at),
                name(&entry.status),
                entry.input_id.as_ref().map(|id| id.as_str()),
            ])?;
        }
        for ((worker_id, index), text) in &self.appends {
            write_append(tx, worker_id, *index, text)?;
        }
        for (worker_id, events) in &self.events {
            let (Some((first, _)), Some((last, _))) = (events.first(), events.last()) else {
                continue;
            };
            tx.prepare_cached(
                "INSERT OR REPLACE INTO events (worker_id, first_seq, last_seq, events)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                worker_id.as_str(),
                *first as i64,
                *last as i64,
                json(events)
            ])?;
        }
        let mut newest_move = None;
        for status in self.summaries.values() {
            // A change of updated_at is kept as a move (old, new), so an
            // updated_at pass can place the Worker as it stood at its
            // snapshot (moves.rs).
            let new_key = nanos(&status.updated_at);
            if moves::record(tx, &status.worker_id, new_key)? {
                *self.moves += 1;
                newest_move = newest_move.max(Some(new_key));
            }
            tx.prepare_cached(
                "UPDATE workers SET state = ?2, updated_at = ?3, transcript_len = ?4,
                   pending_inputs = ?5, last_cursor = ?6, next_seq = ?7
                 WHERE id = ?1",
            )?
            .execute(params![
                status.worker_id.as_str(),
                name(&status.state),
                nanos(&status.updated_at),
                status.transcript_len as i64,
                status.pending_inputs as i64,
                status.last_cursor.as_ref().map(|c| c.as_str()),
                status.next_seq as i64,
            ])?;
        }
        if let Some(newest) = newest_move {
            moves::trim(tx, newest, self.moves)?;
        }
        // Retention on disk: keep what the Runtime keeps in memory. Memory
        // reports what it dropped (`Change::Retained`); client ids are
        // trimmed in steps, so that most batches delete nothing.
        const STEP: u64 = 64;
        for (worker_id, prune) in &self.pruning {
            if let Some((first_entry, first_seq)) = prune.retained {
                // What memory dropped by bytes (or count) goes from the
                // disk too, so the byte budgets bound the disk as well.
                for (statement, from) in [
                    (
                        "DELETE FROM entries WHERE worker_id = ?1 AND idx < ?2",
                        first_entry,
                    ),
                    (
                        "DELETE FROM entry_parts WHERE worker_id = ?1 AND idx < ?2",
                        first_entry,
                    ),
                    // `first_seq` bounds the primary key's range, so the
                    // delete reads only the rows it deletes (and the one
                    // segment that straddles the first retained event).
                    (
                        "DELETE FROM events
                         WHERE worker_id = ?1 AND first_seq < ?2 AND last_seq < ?2",
                        first_seq,
                    ),
                ] {
                    tx.prepare_cached(statement)?
                        .execute(params![worker_id.as_str(), from as i64])?;
                }
            }
            if prune.client_ids && *self.next_order % STEP as i64 == 0 {
                tx.prepare_cached(
                    "DELETE FROM client_ids WHERE worker_id = ?1 AND ord <= (
                       SELECT ord FROM client_ids WHERE worker_id = ?1
                       ORDER BY ord DESC LIMIT 1 OFFSET ?2)",
                )?
                .execute(params![worker_id.as_str(), retain.client_ids as i64])?;
            }
        }
        Ok(())
    }
}

/// Appends `text` to an entry written by an earlier batch: a new part row,
/// so a long reply streamed over many commits is written once, not
/// rewritten at each.
fn write_append(
    tx: &Transaction<'_>,
    worker_id: &WorkerId,
    index: u64,
    text: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO entry_parts (worker_id, idx, part, text)
         SELECT ?1, ?2, COALESCE(MAX(part), 0) + 1, ?3 FROM entry_parts
         WHERE worker_id = ?1 AND idx = ?2",
    )?
    .execute(params![worker_id.as_str(), index as i64, text])?;
    Ok(())
}

/// Folds an entry's parts into its text (as its status changes, so the
/// entry is whole again) and deletes them.
fn fold_parts(tx: &Transaction<'_>, worker_id: &WorkerId, index: u64) -> rusqlite::Result<()> {
    let parts: Vec<String> = tx
        .prepare_cached(
            "SELECT text FROM entry_parts WHERE worker_id = ?1 AND idx = ?2 ORDER BY part",
        )?
        .query_map(params![worker_id.as_str(), index as i64], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if parts.is_empty() {
        return Ok(());
    }
    tx.prepare_cached("UPDATE entries SET text = text || ?3 WHERE worker_id = ?1 AND idx = ?2")?
        .execute(params![worker_id.as_str(), index as i64, parts.concat()])?;
    tx.prepare_cached("DELETE FROM entry_parts WHERE worker_id = ?1 AND idx = ?2")?
        .execute(params![worker_id.as_str(), index as i64])?;
    Ok(())
}

/// Replaces a Worker's rows in `worker_metadata`.
fn write_pairs(
    tx: &rusqlite::Transaction<'_>,
    worker_id: &WorkerId,
    metadata: &Metadata,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM worker_metadata WHERE worker_id = ?1")?
        .execute(params![worker_id.as_str()])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO worker_metadata (key, value, worker_id) VALUES (?1, ?2, ?3)",
    )?;
    for (key, value) in metadata {
        insert.execute(params![key, value, worker_id.as_str()])?;
    }
    Ok(())
}
