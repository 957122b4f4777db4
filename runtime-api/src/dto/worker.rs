use serde::{Deserialize, Serialize};

use super::metadata::{Metadata, MetadataPatch, validate_metadata};
use crate::error::{Result, RuntimeError};
use crate::id::{EventCursor, ProfileName, RuntimeId, WorkerId};
use crate::timestamp::Timestamp;

/// The longest `display_name`, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;
/// The longest `intent`, in characters.
pub const MAX_INTENT_CHARS: usize = 4096;
/// The longest `display_name`, in UTF-8 bytes.
pub const MAX_DISPLAY_NAME_BYTES: usize = 1024;
/// The longest `intent`, in UTF-8 bytes: what an intent costs to keep is
/// its bytes, so wide characters count for what they weigh.
pub const MAX_INTENT_BYTES: usize = 8192;

/// Where a Worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkerState {
    /// Waiting for input.
    Idle,
    /// Running a turn.
    Running,
    /// Being stopped; takes no more input.
    Stopping,
    /// Stopped; takes no more input.
    Stopped,
    /// Failed; takes no more input.
    Failed,
}

impl WorkerState {
    /// Whether the Worker takes no more input in this state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Stopping | Self::Stopped | Self::Failed)
    }
}

/// The profile a Worker runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileRef {
    /// The profile's name.
    pub name: ProfileName,
    /// True when no profile was asked for and the Runtime's default was used.
    pub fallback: bool,
}

/// A Worker as it appears in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerSummary {
    /// The Runtime hosting the Worker. Always paired with `worker_id`.
    pub runtime_id: RuntimeId,
    /// The Worker's id within its Runtime.
    pub worker_id: WorkerId,
    /// A name for people.
    pub display_name: String,
    /// The profile it runs with.
    pub profile: ProfileRef,
    /// Where it is in its life.
    pub state: WorkerState,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its state, transcript entries, name or metadata last changed
    /// (text streaming into a reply does not move it; the turn's start and
    /// end do).
    pub updated_at: Timestamp,
    /// How many entries its transcript has had in all.
    pub transcript_len: u64,
    /// Inputs accepted but not yet started.
    pub pending_inputs: u64,
    /// The cursor of its latest event, if it has any.
    pub last_cursor: Option<EventCursor>,
    /// String pairs set by people, to find and group Workers.
    #[serde(default)]
    pub metadata: Metadata,
}

// On the wire the summary's fields and the detail's own are one flat
// object. serde's `flatten` would write it through a map and read it
// through a buffer of every value; the flat forms below (the same JSON, a
// test compares them) cost a plain struct's work, and a Worker's detail is
// answered on most calls. (A comment, not documentation: the OpenAPI
// document takes the type's documentation as its description.)
/// A Worker in full.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "WorkerDetailWire")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerDetail {
    /// Everything the summary says.
    #[serde(flatten)]
    pub summary: WorkerSummary,
    /// What the Worker was created for, if the creator said.
    pub intent: Option<String>,
    /// The Worker this one was forked from, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkedFrom>,
}

/// [`WorkerDetail`] as written: every field, borrowed, in wire order.
#[derive(Serialize)]
struct WorkerDetailRef<'a> {
    runtime_id: &'a RuntimeId,
    worker_id: &'a WorkerId,
    display_name: &'a str,
    profile: &'a ProfileRef,
    state: WorkerState,
    created_at: Timestamp,
    updated_at: Timestamp,
    transcript_len: u64,
    pending_inputs: u64,
    last_cursor: Option<&'a EventCursor>,
    metadata: &'a Metadata,
    intent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forked_from: Option<&'a ForkedFrom>,
}

impl Serialize for WorkerDetail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let summary = &self.summary;
        WorkerDetailRef {
            runtime_id: &summary.runtime_id,
            worker_id: &summary.worker_id,
            display_name: &summary.display_name,
            profile: &summary.profile,
            state: summary.state,
            created_at: summary.created_at,
            updated_at: summary.updated_at,
            transcript_len: summary.transcript_len,
            pending_inputs: summary.pending_inputs,
            last_cursor: summary.last_cursor.as_ref(),
            metadata: &summary.metadata,
            intent: self.intent.as_deref(),
            forked_from: self.forked_from.as_ref(),
        }
        .serialize(serializer)
    }
}

/// [`WorkerDetail`] as read: every field, flat.
#[derive(Deserialize)]
struct WorkerDetailWire {
    runtime_id: RuntimeId,
    worker_id: WorkerId,
    display_name: String,
    profile: ProfileRef,
    state: WorkerState,
    created_at: Timestamp,
    updated_at: Timestamp,
    transcript_len: u64,
    pending_inputs: u64,
    last_cursor: Option<EventCursor>,
    #[serde(default)]
    metadata: Metadata,
    intent: Option<String>,
    #[serde(default)]
    forked_from: Option<ForkedFrom>,
}

impl From<WorkerDetailWire> for WorkerDetail {
    fn from(wire: WorkerDetailWire) -> Self {
        Self {
            summary: WorkerSummary {
                runtime_id: wire.runtime_id,
                worker_id: wire.worker_id,
                display_name: wire.display_name,
                profile: wire.profile,
                state: wire.state,
                created_at: wire.created_at,
                updated_at: wire.updated_at,
                transcript_len: wire.transcript_len,
                pending_inputs: wire.pending_inputs,
                last_cursor: wire.last_cursor,
                metadata: wire.metadata,
            },
            intent: wire.intent,
            forked_from: wire.forked_from,
        }
    }
}

/// Where a fork came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForkedFrom {
    /// The Worker forked (in the same Runtime).
    pub worker_id: WorkerId,
    /// The source's transcript length at the fork: its entries before this
    /// index were copied.
    pub transcript_index: u64,
}

/// `POST .../workers/{worker_id}/fork`: a new Worker with the same profile
/// and a copy of the transcript's completed entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// Copy the entries before this transcript index (default: all).
    #[serde(default)]
    pub at: Option<u64>,
    /// The fork's name (default: its id).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The fork's metadata (default: none).
    #[serde(default)]
    pub metadata: Metadata,
}

impl ForkRequest {
    /// Checks the name and metadata.
    pub fn validate(&self) -> Result<()> {
        if let Some(name) = &self.display_name {
            validate_display_name(name)?;
        }
        validate_metadata(&self.metadata)
    }
}

/// A request to create a Worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWorkerRequest {
    /// A name for people (1 to 256 characters, not blank, no control
    /// characters); defaults to the Worker id.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 256,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub display_name: Option<String>,
    /// The profile to run with; the Runtime's default when absent. A name the
    /// Runtime does not know is `unknown_profile`, never a silent fallback.
    #[serde(default)]
    pub profile: Option<ProfileName>,
    /// What the Worker is for (at most 4096 characters).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub intent: Option<String>,
    /// String pairs to find the Worker by: at most 16, keys 1 to 64 bytes
    /// of `[A-Za-z0-9._-]`, values at most 512 bytes.
    #[serde(default)]
    pub metadata: Metadata,
}

impl CreateWorkerRequest {
    /// Checks the free-text fields. Runtimes call this before creating.
    pub fn validate(&self) -> Result<()> {
        if let Some(name) = &self.display_name {
            validate_display_name(name)?;
        }
        if let Some(intent) = &self.intent {
            check_text("intent", intent, MAX_INTENT_CHARS, MAX_INTENT_BYTES)?;
        }
        validate_metadata(&self.metadata)
    }
}

/// A change to a Worker: `PATCH .../workers/{worker_id}`, a JSON merge
/// patch. At least one field must be present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkerRequest {
    /// A new name for people (the same rules as at creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Keys to set (a string) or remove (`null`); others are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataPatch>,
}

impl UpdateWorkerRequest {
    /// Checks what can be checked without the Worker.
    pub fn validate(&self) -> Result<()> {
        if self.display_name.is_none() && self.metadata.is_none() {
            return Err(RuntimeError::invalid_request(
                "an update needs display_name or metadata",
            ));
        }
        if let Some(name) = &self.display_name {
            validate_display_name(name)?;
        }
        Ok(())
    }
}

/// Checks a display name: 1 to [`MAX_DISPLAY_NAME_CHARS`] characters, not
/// blank, no control characters. Every Runtime applies the same rule, also
/// to names it reads from elsewhere.
pub fn validate_display_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(RuntimeError::invalid_request(
            "display_name must not be blank",
        ));
    }
    check_text(
        "display_name",
        name,
        MAX_DISPLAY_NAME_CHARS,
        MAX_DISPLAY_NAME_BYTES,
    )?;
    if name.chars().any(char::is_control) {
        return Err(RuntimeError::invalid_request(
            "display_name must not contain control characters",
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, max_chars: usize, max_bytes: usize) -> Result<()> {
    if value.len() > max_bytes || value.chars().count() > max_chars {
        return Err(RuntimeError::invalid_request(format!(
            "{field} must be at most {max_chars} characters and {max_bytes} bytes of UTF-8 \
             (it has {} characters, {} bytes)",
            value.chars().count(),
            value.len()
        )));
    }
    Ok(())
}

/// `POST .../workers/{worker_id}/rollback`: take back the last turns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// How many of the last completed turns to take back (at least 1).
    pub turns: u32,
}
