use serde::{Deserialize, Serialize};

use crate::id::InputId;
use crate::timestamp::Timestamp;

/// Who wrote a transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryRole {
    /// An input.
    User,
    /// A reply from the model.
    Assistant,
    /// A system prompt.
    System,
    /// A note from the Runtime, such as why a turn failed.
    Notice,
}

/// Whether a transcript entry is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryStatus {
    /// Final.
    Complete,
    /// Being written: a reply in progress, or an input waiting in the queue.
    Partial,
    /// Cut short by cancel, stop or interrupt (an input dropped from the
    /// queue is `cancelled` too).
    Cancelled,
    /// Cut short by an error.
    Failed,
    /// Taken back by a rollback: kept, never sent to the model again.
    RolledBack,
}

/// One entry of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptEntry {
    /// Its position, from 0.
    pub index: u64,
    /// Who wrote it.
    pub role: EntryRole,
    /// Its text so far.
    pub text: String,
    /// When it was created.
    pub at: Timestamp,
    /// Whether it is final.
    pub status: EntryStatus,
    /// The input it belongs to (the input itself, or the reply to it).
    pub input_id: Option<InputId>,
}

/// Which part of a transcript to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptQuery {
    /// The first index to read (default 0).
    #[serde(default)]
    pub start: Option<u64>,
    /// At most this many entries (default 50, at most the Runtime's
    /// `max_transcript_page`).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptPage {
    /// The index of the first entry on the page. Larger than the requested
    /// start when older entries are no longer retained.
    pub start: u64,
    /// The limit that was applied.
    pub limit: u32,
    /// How many entries the transcript has had in all.
    pub total: u64,
    /// Where the next page starts; absent when this page reaches the end.
    pub next_start: Option<u64>,
    /// The entries, in index order.
    pub entries: Vec<TranscriptEntry>,
}
