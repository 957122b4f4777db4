//! How an [`EmbeddedRuntime`](crate::EmbeddedRuntime) is configured.

use yoi_runtime_api::{ProfileName, RuntimeId};

use crate::error::ConfigError;
use crate::log::Budget;
use crate::profile::{ProfileConfig, builtin_name};

/// Bounds on what one runtime may hold and hand out. Every one has a default
/// that keeps an idle Worker small and a busy one bounded. Opening a runtime
/// refuses a bound of 0 that would refuse everything it bounds (all but
/// `max_stopped_workers`, `max_context_entries` and `max_queued_inputs`), and
/// a `max_transcript_entries` too small for a running reply and every queued
/// input.
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
        // Each of these at 0 would refuse every request it bounds (or, for
        // the remembered ids, every retry's recognition).
        let at_least_one = [
            ("max_input_bytes", self.max_input_bytes as usize),
            ("max_transcript_page", self.max_transcript_page as usize),
            ("max_event_page", self.max_event_page as usize),
            ("max_worker_page", self.max_worker_page as usize),
            ("max_events_per_worker", self.max_events_per_worker),
            ("max_runtime_events", self.max_runtime_events),
            ("max_live_workers", self.max_live_workers),
            ("max_retained_bytes", self.max_retained_bytes),
            ("max_resident_workers", self.max_resident_workers),
            ("max_remembered_client_ids", self.max_remembered_client_ids),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return fail(&format!("{name} must be at least 1"));
        }
        // A running reply and every queued input must stay in the transcript.
        if self.max_transcript_entries < 2 * (self.max_queued_inputs + 2) {
            return fail("max_transcript_entries must be at least 2 * (max_queued_inputs + 2)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(limits: Limits) -> String {
        limits.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_defaults_are_valid() {
        Limits::default().validate().unwrap();
    }

    #[test]
    fn a_zero_limit_is_refused_by_name() {
        type Set = fn(&mut Limits);
        let zeroes: [(&str, Set); 10] = [
            ("max_input_bytes", |l| l.max_input_bytes = 0),
            ("max_transcript_page", |l| l.max_transcript_page = 0),
            ("max_event_page", |l| l.max_event_page = 0),
            ("max_worker_page", |l| l.max_worker_page = 0),
            ("max_events_per_worker", |l| l.max_events_per_worker = 0),
            ("max_runtime_events", |l| l.max_runtime_events = 0),
            ("max_live_workers", |l| l.max_live_workers = 0),
            ("max_retained_bytes", |l| l.max_retained_bytes = 0),
            ("max_resident_workers", |l| l.max_resident_workers = 0),
            ("max_remembered_client_ids", |l| {
                l.max_remembered_client_ids = 0
            }),
        ];
        for (name, set) in zeroes {
            let mut limits = Limits::default();
            set(&mut limits);
            assert_eq!(
                refusal(limits),
                format!("invalid limits: {name} must be at least 1")
            );
        }
        // Those that may be 0: nothing stopped kept, no context sent.
        Limits {
            max_stopped_workers: 0,
            max_context_entries: 0,
            ..Limits::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn the_transcript_holds_a_running_reply_and_every_queued_input() {
        let mut limits = Limits {
            max_queued_inputs: 16,
            max_transcript_entries: 35,
            ..Limits::default()
        };
        assert!(refusal(limits).contains("max_transcript_entries"));
        limits.max_transcript_entries = 36;
        limits.validate().unwrap();
    }
}
