//! How an [`EmbeddedRuntime`](crate::EmbeddedRuntime) is configured.

use yoi_runtime_api::{ProfileName, RuntimeId};

use crate::error::ConfigError;
use crate::log::Budget;
use crate::profile::{ProfileConfig, builtin_name};

/// Bounds on what one runtime may hold and hand out. Every one has a default
/// that keeps an idle Worker small and a busy one bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest input text, in bytes (default 64 KiB).
    pub max_input_bytes: u64,
    /// Inputs that may wait behind a running turn (default 16).
    pub max_queued_inputs: usize,
    /// Transcript entries kept per Worker; older ones are dropped
    /// (default 10,000).
    pub max_transcript_entries: usize,
    /// Events kept per Worker; reading before them is `cursor_expired`
    /// (default 10,000).
    pub max_events_per_worker: usize,
    /// Bytes of transcript text kept in memory per Worker (estimated, with
    /// a fixed 128 bytes per entry); older entries are dropped from memory
    /// past it, the newest always kept (default 32 MiB).
    pub max_transcript_bytes: usize,
    /// Bytes of events kept per Worker (estimated, with a fixed 160 bytes
    /// per event); reading before them is `cursor_expired` (default 8 MiB).
    pub max_event_log_bytes: usize,
    /// Workers that are not stopped, per Runtime; creating one more is
    /// `capacity_exceeded` (default 200,000).
    pub max_live_workers: usize,
    /// Estimated bytes of transcripts and event logs all Workers together
    /// keep in memory; past it, creating, forking and sending input are
    /// `capacity_exceeded` (a persistent store first evicts idle Workers to
    /// make room) (default 512 MiB). Per Worker, `max_transcript_bytes` and
    /// `max_event_log_bytes` apply.
    pub max_retained_bytes: usize,
    /// Runtime-level events kept (default 10,000).
    pub max_runtime_events: usize,
    /// `client_input_id`s remembered per Worker for idempotent retries
    /// (default 1,024, most recent kept).
    pub max_remembered_client_ids: usize,
    /// Earlier transcript entries sent to the model with each turn, newest
    /// kept (default 200). Bounds the cost of starting a turn.
    pub max_context_entries: usize,
    /// Stopped Workers kept readable; beyond this the oldest stopped Worker
    /// is forgotten and becomes `unknown_worker` (default 1,000). Keeps a
    /// long-running process's memory bounded, since the contract has no
    /// delete.
    pub max_stopped_workers: usize,
    /// Stopped Workers older than this (since they stopped) are deleted
    /// with their data (default: no age limit).
    pub max_stopped_age: Option<std::time::Duration>,
    /// Workers kept in memory when the store keeps them too; beyond this,
    /// idle ones are evicted and loaded again on access (default 10,000).
    /// Ignored by the memory store, which keeps every Worker in memory.
    pub max_resident_workers: usize,
    /// The largest transcript page (default 200).
    pub max_transcript_page: u32,
    /// The largest events page (default 1,000).
    pub max_event_page: u32,
    /// The largest Worker list page (default 500).
    pub max_worker_page: u32,
}

impl Limits {
    pub(crate) fn transcript_budget(&self) -> Budget {
        Budget {
            items: self.max_transcript_entries,
            bytes: self.max_transcript_bytes,
        }
    }

    pub(crate) fn event_budget(&self) -> Budget {
        Budget {
            items: self.max_events_per_worker,
            bytes: self.max_event_log_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 64 * 1024,
            max_queued_inputs: 16,
            max_transcript_entries: 10_000,
            max_events_per_worker: 10_000,
            max_transcript_bytes: 32 << 20,
            max_event_log_bytes: 8 << 20,
            max_live_workers: 200_000,
            max_retained_bytes: 512 << 20,
            max_runtime_events: 10_000,
            max_remembered_client_ids: 1_024,
            max_context_entries: 200,
            max_stopped_workers: 1_000,
            max_stopped_age: None,
            max_resident_workers: 10_000,
            max_transcript_page: 200,
            max_event_page: 1_000,
            max_worker_page: 500,
        }
    }
}

/// Everything needed to build an [`EmbeddedRuntime`](crate::EmbeddedRuntime).
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The runtime's id (default `backend-internal`).
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// Profiles besides the builtin `default` (a profile named `default`
    /// replaces the builtin one).
    pub profiles: Vec<ProfileConfig>,
    /// The profile used when a Worker is created without one.
    pub default_profile: ProfileName,
    /// Bounds.
    pub limits: Limits,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            runtime_id: RuntimeId::new("backend-internal")
                .unwrap_or_else(|_| unreachable!("a valid id")),
            display_name: "Backend (embedded)".to_owned(),
            profiles: Vec::new(),
            default_profile: builtin_name(),
            limits: Limits::default(),
        }
    }
}

impl Limits {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: &str| {
            Err(ConfigError::InvalidLimits {
                message: message.to_owned(),
            })
        };
        if self.max_input_bytes == 0
            || self.max_transcript_page == 0
            || self.max_event_page == 0
            || self.max_worker_page == 0
            || self.max_events_per_worker == 0
            || self.max_runtime_events == 0
        {
            return fail("page sizes, max_input_bytes and event retention must be at least 1");
        }
        // A running reply and every queued input must stay in the transcript.
        if self.max_transcript_entries < 2 * (self.max_queued_inputs + 2) {
            return fail("max_transcript_entries must be at least 2 * (max_queued_inputs + 2)");
        }
        Ok(())
    }
}
