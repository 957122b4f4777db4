//! The data that crosses the contract.
//!
//! Every DTO is serde-serializable with snake_case field and enum names; the
//! JSON shapes are pinned by snapshot tests. **No DTO has a field for a socket
//! path, session path, store path, URL with credentials, token or provider
//! key**: implementations keep such things to themselves, so a DTO can be
//! handed to any client as it is.

mod event;
mod input;
mod json;
mod metadata;
mod query_string;
mod runtime;
mod search;
mod transcript;
mod worker;

pub use event::{
    EventPage, EventQuery, FailureCode, FailureReason, TurnOutcome, WorkerEvent, WorkerEventKind,
};
pub use input::{BusyPolicy, InputAcceptance, InputRequest, InputResult};
pub use json::{Unwritable, WriteJson};
pub use metadata::{
    MAX_METADATA_KEY_BYTES, MAX_METADATA_PAIRS, MAX_METADATA_VALUE_BYTES, Metadata, MetadataPatch,
    apply_metadata_patch, validate_metadata, validate_metadata_key,
};
pub use query_string::MAX_CURSOR_BYTES;
pub use runtime::{
    Diagnostic, DiagnosticLevel, ImplementationKind, ProfileInfo, ProfileList, RuntimeState,
    RuntimeStatus, RuntimeSummary, WorkerCounts,
};
pub use search::{
    PASS_HORIZON_SECS, PageKey, PagePhase, PassOrder, SortOrder, WorkerCount, WorkerCursor,
    WorkerFilter, WorkerListQuery, WorkerPage, WorkerSort, parse_state, state_name,
    timestamp_nanos,
};
pub use transcript::{EntryRole, EntryStatus, TranscriptEntry, TranscriptPage, TranscriptQuery};
pub use worker::{
    CreateWorkerRequest, ForkRequest, ForkedFrom, MAX_DISPLAY_NAME_BYTES, MAX_DISPLAY_NAME_CHARS,
    MAX_INTENT_BYTES, MAX_INTENT_CHARS, ProfileRef, RollbackRequest, UpdateWorkerRequest,
    WorkerDetail, WorkerState, WorkerSummary, validate_display_name,
};
