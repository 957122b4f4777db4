//! Where an embedded Runtime keeps what must outlive it: the seam between
//! the worker core and storage.
//!
//! The worker core describes every change it makes as [`Change`]s, handed
//! to [`WorkerStore::record`] in the same critical section as the change
//! itself, so a store sees each Worker's changes in the order they
//! happened. A store may write them later, in batches; [`WorkerStore::durable`]
//! waits until a [`Ticket`] is on disk. The Runtime waits for it before it
//! answers an accepted input or a created or deleted Worker, and for
//! nothing else, so streaming a reply never waits on the disk.
//!
//! Two stores ship: [`MemoryStore`] (nothing outlives the process) and
//! [`SqliteStore`] (one SQLite file, one writer thread with group commit).
//! Another store (Postgres for several hosts, say) implements the same
//! trait; see `docs/adr/0008-durable-workers.md` for what it must keep.

mod memory;
mod sqlite;

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use yoi_runtime_api::digest::Digest;
use yoi_runtime_api::dto::{
    EntryStatus, ForkedFrom, InputAcceptance, Metadata, TranscriptEntry, WorkerCounts, WorkerEvent,
    WorkerState,
};
use yoi_runtime_api::dto::{PageKey, PassOrder, WorkerFilter};
use yoi_runtime_api::{EventCursor, InputId, ProfileName, Timestamp, WorkerId};

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

/// A position in a store's stream of recorded changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// One change of one Worker.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Change {
    /// A Worker was created.
    Created(WorkerMeta),
    /// The Worker's summary fields, as they are after the changes recorded
    /// with it.
    Summary(WorkerStatus),
    /// A transcript entry was added (or replaced, for the same index).
    Entry {
        /// The Worker.
        worker_id: WorkerId,
        /// The entry, with its index.
        entry: TranscriptEntry,
    },
    /// Text was appended to an entry (a reply's delta).
    AppendText {
        /// The Worker.
        worker_id: WorkerId,
        /// The entry.
        index: u64,
        /// The text appended.
        text: String,
    },
    /// An entry's status changed.
    EntryStatus {
        /// The Worker.
        worker_id: WorkerId,
        /// The entry.
        index: u64,
        /// Its new status.
        status: EntryStatus,
    },
    /// An event was appended to the Worker's log.
    Event {
        /// Its sequence number in the log.
        seq: u64,
        /// The event, with its cursor.
        event: WorkerEvent,
    },
    /// A `client_input_id` was remembered with the acceptance it answers.
    ClientId {
        /// The Worker.
        worker_id: WorkerId,
        /// The client's id.
        client_input_id: InputId,
        /// The first acceptance and its text's digest.
        remembered: RememberedInput,
    },
    /// The Worker's name or metadata changed.
    Meta {
        /// The Worker.
        worker_id: WorkerId,
        /// Its name now.
        display_name: String,
        /// Its metadata now.
        metadata: Metadata,
    },
    /// The oldest entry and event the Worker keeps (by count and by
    /// bytes): the store deletes what is older, so the disk holds what
    /// memory does.
    Retained {
        /// The Worker.
        worker_id: WorkerId,
        /// The index of its oldest retained entry.
        first_entry: u64,
        /// The sequence number of its oldest retained event.
        first_seq: u64,
    },
    /// The Worker and all its data are gone.
    Deleted {
        /// The Worker.
        worker_id: WorkerId,
    },
}

/// What a Worker was created with. Its name and metadata change later
/// only through [`Change::Meta`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerMeta {
    /// Its id.
    pub worker_id: WorkerId,
    /// Its name for people.
    pub display_name: String,
    /// Its metadata.
    pub metadata: Metadata,
    /// The Worker it was forked from, if it was.
    pub forked_from: Option<ForkedFrom>,
    /// Its profile's name.
    pub profile: ProfileName,
    /// Whether the profile was the fallback.
    pub fallback: bool,
    /// What it is for.
    pub intent: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What a list shows about a Worker, besides its meta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The Worker.
    pub worker_id: WorkerId,
    /// Its state.
    pub state: WorkerState,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Entries ever appended.
    pub transcript_len: u64,
    /// Inputs waiting.
    pub pending_inputs: u64,
    /// The cursor of its newest event.
    pub last_cursor: Option<EventCursor>,
    /// The sequence number its next event gets.
    pub next_seq: u64,
}

/// A Worker as a store returns it: enough to rebuild it in memory.
#[derive(Debug, Clone)]
pub struct StoredWorker {
    /// What never changes.
    pub meta: WorkerMeta,
    /// Its summary fields.
    pub status: WorkerStatus,
    /// The newest retained entries, oldest first.
    pub entries: Vec<TranscriptEntry>,
    /// The newest retained events with their sequence numbers, oldest first.
    pub events: Vec<(u64, WorkerEvent)>,
    /// Remembered `client_input_id`s, oldest first.
    pub client_ids: Vec<(InputId, RememberedInput)>,
}

/// What a Worker remembers of an input sent with a `client_input_id`: the
/// acceptance a retry is answered with, and a digest of the input's text,
/// so that the id sent again with another text is refused
/// (`input_id_conflict`) rather than taken for a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedInput {
    /// The first acceptance.
    pub acceptance: InputAcceptance,
    /// [`Digest::of`] the input's text; `None` for ids a store remembered
    /// before it kept digests, which any text retries.
    pub text_digest: Option<u64>,
}

impl RememberedInput {
    /// The digest of an input's text that [`RememberedInput`] keeps.
    pub fn text_digest(text: &str) -> u64 {
        Digest::of(text.as_bytes())
    }

    /// Whether an input with this text retries the remembered one.
    pub fn is_retried_by(&self, text: &str) -> bool {
        self.text_digest
            .is_none_or(|digest| digest == Self::text_digest(text))
    }
}

/// A Worker as a list shows it.
#[derive(Debug, Clone)]
pub struct StoredSummary {
    /// What never changes.
    pub meta: WorkerMeta,
    /// Its summary fields.
    pub status: WorkerStatus,
}

/// How much of a Worker to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadBounds {
    /// Newest entries.
    pub entries: usize,
    /// Newest events.
    pub events: usize,
    /// Newest remembered client ids.
    pub client_ids: usize,
}

/// A store failed. Messages say what failed, never where the store is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store was written by a newer version of this program.
    #[error("the store has schema version {found}; this version knows up to {known}; upgrade yoi")]
    NewerSchema {
        /// The store's version.
        found: i64,
        /// The newest version this program knows.
        known: i64,
    },
    /// The store is damaged or not a store at all.
    #[error("the store is unreadable or damaged: {0}")]
    Corrupt(String),
    /// The store cannot be opened or written (permissions, disk full, ...).
    #[error("the store cannot be used: {0}")]
    Io(String),
    /// Another process has the store open (another `yoi` serving the same
    /// data directory): two writers would interleave one history.
    #[error(
        "the store is in use by another process{}: stop it, or give this one another data directory",
        pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse {
        /// The process holding it, when it said.
        pid: Option<u32>,
    },
    /// Writes are failing (until a retry succeeds, or for good once the
    /// store closed): what was recorded is not durable.
    #[error("the store's writes are failing")]
    Failed,
}

/// Creates `folder` and any missing parent for a store or its backup.
/// Folders created here are the owner's alone (mode 0700 on Unix): a store
/// holds every conversation, and SQLite creates its files readable by
/// everyone the umask allows. Folders that already exist keep their mode.
pub fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)
}

/// Where an embedded Runtime keeps what must outlive it.
///
/// # Contract
///
/// - `record` is called in the Worker's critical section and must not
///   block; changes of one Worker arrive in the order they happened, and a
///   store applies them in that order. The changes of one call are applied
///   atomically (all or none survive a crash).
/// - `durable(ticket)` resolves once everything recorded up to `ticket` is
///   durable, or fails if the store cannot get it there.
/// - Reads (`load`, `search`, ...) may block; the Runtime calls them off the
///   async workers. They see every change that is durable, and may see more.
/// - Retention: a store keeps at most the newest entries, events and client
///   ids it was opened with limits for; older ones are deleted.
/// - Nothing a store returns or reports contains its location.
#[async_trait]
pub trait WorkerStore: Send + Sync + fmt::Debug + 'static {
    /// Whether Workers outlive the process: if not, the Runtime keeps them
    /// all resident and never calls the reads below.
    fn persistent(&self) -> bool;
    /// Queues `changes` of one Worker's critical section.
    fn record(&self, changes: Vec<Change>) -> Ticket;
    /// The ticket of the newest record (durable or not).
    fn recorded(&self) -> Ticket;
    /// Whether `ticket` is durable already.
    fn is_durable(&self, ticket: Ticket) -> bool;
    /// Waits until `ticket` is durable.
    async fn durable(&self, ticket: Ticket) -> Result<(), StoreError>;
    /// One Worker, bounded, or `None`.
    fn load(
        &self,
        worker_id: &WorkerId,
        bounds: LoadBounds,
    ) -> Result<Option<StoredWorker>, StoreError>;
    /// Up to `limit` Workers matching `filter` after `after` in the pass's
    /// order (see `yoi_runtime_api::dto::WorkerCursor`), with their keys;
    /// `None` when an `updated_at` pass is older than the changes of
    /// `updated_at` the store still keeps.
    fn search(
        &self,
        pass: &PassOrder,
        filter: &WorkerFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> Result<Option<Vec<(PageKey, StoredSummary)>>, StoreError>;
    /// How many Workers match `filter`.
    fn count(&self, filter: &WorkerFilter) -> Result<u64, StoreError>;
    /// Workers by state.
    fn counts(&self) -> Result<WorkerCounts, StoreError>;
    /// Workers a crash may have left mid-turn or with queued inputs.
    fn unfinished(&self) -> Result<Vec<WorkerId>, StoreError>;
    /// Stopped Workers, the longest stopped first.
    fn stopped(&self) -> Result<Vec<(WorkerId, Timestamp)>, StoreError>;
    /// The latest `updated_at` of any Worker kept, so that a Runtime
    /// opened after the wall clock stepped back still dates every change
    /// after the ones on disk. The default is none.
    fn latest_updated_at(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(None)
    }
    /// Stops taking changes and returns once everything recorded before is
    /// durable. Blocks. The default does nothing.
    fn close(&self) {}
    /// Whether writes are failing now (the disk is full, the file went
    /// away), so that nothing recorded becomes durable until a retry
    /// succeeds; [`WorkerStore::durable`] then fails at once. The Runtime
    /// reports itself unavailable and takes nothing new that must last
    /// meanwhile. The default is never.
    fn has_failed(&self) -> bool {
        false
    }
    /// Whether a write has been under way for so long that the disk seems
    /// stalled (a hung network volume, a lock another process holds):
    /// nothing recorded meanwhile becomes durable until it ends. The
    /// Runtime reports itself unavailable and takes nothing new that must
    /// last meanwhile, as when [`WorkerStore::has_failed`]. The default is
    /// never.
    fn is_stalled(&self) -> bool {
        false
    }
}
