//! What a Runtime can do.

use serde::{Deserialize, Serialize};

use crate::error::{Operation, Result, RuntimeError};
use crate::id::RuntimeId;

/// What a Runtime supports: plain flags and limits, checked centrally (by
/// [`Capabilities::check`]) before a call reaches the Runtime.
///
/// `Default` is a Runtime that supports nothing and states no limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Capabilities {
    /// `list_workers` works.
    pub list_workers: bool,
    /// `create_worker` works.
    pub create_worker: bool,
    /// `send_input` works (with `on_busy: reject`).
    pub send_input: bool,
    /// `send_input` accepts `on_busy: queue`.
    pub busy_queue: bool,
    /// `send_input` accepts `on_busy: interrupt`.
    pub busy_interrupt: bool,
    /// `stop` works.
    pub stop: bool,
    /// `cancel` works.
    pub cancel: bool,
    /// `delete_worker` works.
    #[serde(default)]
    pub delete_worker: bool,
    /// `transcript` works.
    pub transcript: bool,
    /// `events` works.
    pub events_poll: bool,
    /// `subscribe` works.
    pub events_subscribe: bool,
    /// `profiles` works.
    #[serde(default)]
    pub list_profiles: bool,
    /// `update_worker` works (rename, metadata).
    #[serde(default)]
    pub update_worker: bool,
    /// `rollback` works.
    #[serde(default)]
    pub rollback: bool,
    /// `fork_worker` works.
    #[serde(default)]
    pub fork_worker: bool,
    /// `list_workers` takes a filter, a sort order and a cursor, and
    /// `count_workers` works.
    #[serde(default)]
    pub search_workers: bool,
    /// Workers can call tools.
    pub tools: bool,
    /// Workers survive a restart of the Runtime.
    pub persistent_store: bool,
    /// The largest input text, in bytes.
    pub max_input_bytes: Option<u64>,
    /// The largest `limit` of a transcript page.
    pub max_transcript_page: Option<u32>,
    /// The largest `limit` of an events page.
    pub max_event_page: Option<u32>,
    /// The largest `limit` of a Worker list page.
    pub max_worker_page: Option<u32>,
}

impl Capabilities {
    /// Whether `operation` is supported.
    pub fn supports(&self, operation: Operation) -> bool {
        match operation {
            Operation::ListWorkers => self.list_workers,
            Operation::CreateWorker => self.create_worker,
            Operation::SendInput => self.send_input,
            Operation::QueueInput => self.send_input && self.busy_queue,
            Operation::InterruptInput => self.send_input && self.busy_interrupt,
            Operation::Stop => self.stop,
            Operation::Cancel => self.cancel,
            Operation::DeleteWorker => self.delete_worker,
            Operation::Transcript => self.transcript,
            Operation::Events => self.events_poll,
            Operation::Subscribe => self.events_subscribe,
            Operation::ListProfiles => self.list_profiles,
            Operation::UpdateWorker => self.update_worker,
            Operation::Rollback => self.rollback,
            Operation::ForkWorker => self.fork_worker,
            Operation::SearchWorkers => self.list_workers && self.search_workers,
        }
    }

    /// `Ok` when `operation` is supported, `unsupported_operation` otherwise.
    pub fn check(&self, runtime_id: &RuntimeId, operation: Operation) -> Result<()> {
        if self.supports(operation) {
            Ok(())
        } else {
            Err(RuntimeError::UnsupportedOperation {
                runtime_id: runtime_id.clone(),
                operation,
            })
        }
    }
}

/// Resolves a page `limit`: `default` when absent, `limit_too_large` above
/// `max`, `invalid_request` when zero.
pub fn resolve_limit(requested: Option<u32>, default: u32, max: u32) -> Result<u32> {
    match requested {
        None => Ok(default.min(max)),
        Some(0) => Err(RuntimeError::invalid_request("limit must be at least 1")),
        Some(n) if n > max => Err(RuntimeError::LimitTooLarge {
            field: "limit".to_owned(),
            requested: u64::from(n),
            max: u64::from(max),
        }),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_supports_nothing() {
        let caps = Capabilities::default();
        let rid = RuntimeId::new("rt").unwrap();
        for op in [
            Operation::ListWorkers,
            Operation::SendInput,
            Operation::Subscribe,
        ] {
            let err = caps.check(&rid, op).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::UnsupportedOperation);
        }
    }

    #[test]
    fn queue_needs_send_input_too() {
        let caps = Capabilities {
            busy_queue: true,
            ..Capabilities::default()
        };
        assert!(!caps.supports(Operation::QueueInput));
        let caps = Capabilities {
            send_input: true,
            ..caps
        };
        assert!(caps.supports(Operation::QueueInput));
        assert!(!caps.supports(Operation::InterruptInput));
    }

    #[test]
    fn limits_resolve() {
        assert_eq!(resolve_limit(None, 50, 200).unwrap(), 50);
        assert_eq!(resolve_limit(Some(200), 50, 200).unwrap(), 200);
        let err = resolve_limit(Some(201), 50, 200).unwrap_err();
        assert_eq!(err.to_string(), "limit 201 is larger than the maximum 200");
        assert_eq!(
            resolve_limit(Some(0), 50, 200).unwrap_err().code(),
            crate::ErrorCode::InvalidRequest
        );
    }
}
