use serde::{Deserialize, Serialize};

use crate::dto::{ProfileRef, WorkerState};
use crate::id::{EventCursor, InputId, WorkerId};
use crate::timestamp::Timestamp;

/// Why a turn failed, as a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureCode {
    /// The model endpoint refused the credentials (HTTP 401/403).
    Unauthorized,
    /// The model endpoint is rate limiting (HTTP 429).
    RateLimited,
    /// The model endpoint answered with another error status.
    UpstreamError,
    /// The model endpoint sent something that is not the expected format.
    MalformedResponse,
    /// The connection ended before the reply was complete.
    ConnectionLost,
    /// The model endpoint took longer than the profile's timeout.
    Timeout,
    /// The model endpoint could not be reached, or is not configured.
    Unavailable,
    /// The reply passed the profile's byte limit; the turn stopped there.
    ReplyTooLarge,
}

/// Why a turn failed: a code and a message with no credentials or URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureReason {
    /// The stable code.
    pub code: FailureCode,
    /// A message for people.
    pub message: String,
    /// The model provider's HTTP status, when the failure was its answer
    /// (so that a bad model name, 404, reads apart from a bad key, 401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

impl FailureReason {
    /// A reason with this code and message and no provider status.
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http_status: None,
        }
    }
}

/// What happened, with the data of that kind of event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkerEventKind {
    /// The Worker was created.
    WorkerCreated {
        /// Its display name.
        display_name: String,
        /// Its profile.
        profile: ProfileRef,
    },
    /// An input was recorded.
    InputAccepted {
        /// The input.
        input_id: InputId,
        /// Its transcript index.
        transcript_index: u64,
    },
    /// A turn started on an input.
    TurnStarted {
        /// The input the turn answers.
        input_id: InputId,
        /// The transcript index of the reply.
        transcript_index: u64,
    },
    /// A piece of the reply.
    TextDelta {
        /// The input the turn answers.
        input_id: InputId,
        /// The transcript index of the reply.
        transcript_index: u64,
        /// The text to append.
        delta: String,
    },
    /// The reply is complete.
    TurnCompleted {
        /// The input the turn answers.
        input_id: InputId,
        /// The transcript index of the reply.
        transcript_index: u64,
    },
    /// The turn was cancelled; its partial reply is kept.
    TurnCancelled {
        /// The input the turn answers.
        input_id: InputId,
        /// The transcript index of the reply.
        transcript_index: u64,
    },
    /// The turn failed.
    TurnFailed {
        /// The input the turn answers.
        input_id: InputId,
        /// The transcript index of the reply.
        transcript_index: u64,
        /// Why.
        reason: FailureReason,
    },
    /// The Worker was stopped. It is the last event of a Worker.
    WorkerStopped {},
    /// The last turns were rolled back: every entry from `first_index` on is
    /// now `rolled_back`.
    RolledBack {
        /// The first entry taken back.
        first_index: u64,
        /// How many turns were taken back.
        turns: u32,
    },
    /// The Worker's name or metadata changed; these are the new ones.
    WorkerUpdated {
        /// Its display name now.
        display_name: String,
        /// Its metadata now.
        metadata: super::metadata::Metadata,
    },
    /// The Worker changed state.
    StateChanged {
        /// The state before.
        from: WorkerState,
        /// The state after.
        to: WorkerState,
    },
}

/// One event of a Worker's log. In OpenAPI it is a discriminated union on
/// `kind`, one titled schema per kind (`TextDeltaEvent`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEvent {
    /// Its position in the log it was read from.
    pub cursor: EventCursor,
    /// The Worker it is about.
    pub worker_id: WorkerId,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: WorkerEventKind,
}

impl WorkerEventKind {
    /// The input the event concerns, for the kinds that concern one.
    pub fn input_id(&self) -> Option<&InputId> {
        match self {
            Self::InputAccepted { input_id, .. }
            | Self::TurnStarted { input_id, .. }
            | Self::TextDelta { input_id, .. }
            | Self::TurnCompleted { input_id, .. }
            | Self::TurnCancelled { input_id, .. }
            | Self::TurnFailed { input_id, .. } => Some(input_id),
            Self::WorkerCreated { .. }
            | Self::WorkerUpdated { .. }
            | Self::RolledBack { .. }
            | Self::WorkerStopped {}
            | Self::StateChanged { .. } => None,
        }
    }

    /// How the turn this event ends ended, if it ends one.
    pub fn turn_outcome(&self) -> Option<TurnOutcome> {
        match self {
            Self::TurnCompleted { .. } => Some(TurnOutcome::Completed),
            Self::TurnFailed { .. } => Some(TurnOutcome::Failed),
            Self::TurnCancelled { .. } => Some(TurnOutcome::Cancelled),
            _ => None,
        }
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TurnOutcome {
    /// The reply is complete.
    Completed,
    /// The turn failed; see the failure reason.
    Failed,
    /// The turn was cancelled or interrupted (its partial reply is kept),
    /// or the input was dropped from the queue before it ran.
    Cancelled,
}

impl WorkerEvent {
    /// The event's kind as its wire name, for example `text_delta`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            WorkerEventKind::WorkerCreated { .. } => "worker_created",
            WorkerEventKind::WorkerUpdated { .. } => "worker_updated",
            WorkerEventKind::RolledBack { .. } => "rolled_back",
            WorkerEventKind::InputAccepted { .. } => "input_accepted",
            WorkerEventKind::TurnStarted { .. } => "turn_started",
            WorkerEventKind::TextDelta { .. } => "text_delta",
            WorkerEventKind::TurnCompleted { .. } => "turn_completed",
            WorkerEventKind::TurnCancelled { .. } => "turn_cancelled",
            WorkerEventKind::TurnFailed { .. } => "turn_failed",
            WorkerEventKind::WorkerStopped {} => "worker_stopped",
            WorkerEventKind::StateChanged { .. } => "state_changed",
        }
    }
}

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventQuery {
    /// Read events after this cursor; from the oldest retained when absent.
    #[serde(default)]
    pub after: Option<EventCursor>,
    /// At most this many (default 100, at most the Runtime's
    /// `max_event_page`).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// The events, oldest first.
    pub events: Vec<WorkerEvent>,
    /// Pass as `after` to read on; the request's cursor when the page is
    /// empty.
    pub next_cursor: Option<EventCursor>,
    /// Whether more events follow this page already.
    pub has_more: bool,
}

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    use utoipa::{PartialSchema, ToSchema};

    use super::{WorkerEvent, WorkerEventKind};
    use crate::Timestamp;
    use crate::id::{EventCursor, WorkerId};
    use crate::openapi::{Named, required_fields, tagged_union};

    fn union(named: &mut Named) -> RefOr<Schema> {
        let head = required_fields(&[
            (
                "cursor",
                utoipa::openapi::Ref::from_schema_name(EventCursor::name()).into(),
                "Its position in the log it was read from.",
            ),
            (
                "worker_id",
                utoipa::openapi::Ref::from_schema_name(WorkerId::name()).into(),
                "The Worker it is about.",
            ),
            (
                "at",
                utoipa::openapi::Ref::from_schema_name(Timestamp::name()).into(),
                "When it happened.",
            ),
        ]);
        tagged_union(WorkerEventKind::schema(), &head, "kind", "Event", named)
    }

    impl PartialSchema for WorkerEvent {
        fn schema() -> RefOr<Schema> {
            union(&mut Vec::new())
        }
    }

    impl ToSchema for WorkerEvent {
        fn schemas(named: &mut Named) {
            union(named);
            named.push((EventCursor::name().into(), EventCursor::schema()));
            named.push((WorkerId::name().into(), WorkerId::schema()));
            named.push((Timestamp::name().into(), Timestamp::schema()));
            <WorkerEventKind as ToSchema>::schemas(named);
        }
    }

    #[cfg(test)]
    mod tests {
        use utoipa::{PartialSchema, ToSchema};

        use super::WorkerEvent;

        #[test]
        fn worker_events_are_a_discriminated_union_of_titled_variants() {
            let schema = serde_json::to_value(WorkerEvent::schema()).unwrap();
            assert_eq!(schema["discriminator"]["propertyName"], "kind");
            assert_eq!(
                schema["discriminator"]["mapping"]["text_delta"],
                "#/components/schemas/TextDeltaEvent"
            );
            let mut named = Vec::new();
            WorkerEvent::schemas(&mut named);
            let delta = &named.iter().find(|(n, _)| n == "TextDeltaEvent").unwrap().1;
            let delta = serde_json::to_value(delta).unwrap();
            assert_eq!(delta["title"], "TextDeltaEvent");
            for field in ["cursor", "worker_id", "at", "kind", "delta"] {
                assert!(
                    delta["required"]
                        .as_array()
                        .unwrap()
                        .contains(&field.into()),
                    "{field}: {delta}"
                );
            }
            assert!(named.iter().any(|(n, _)| n == "EventCursor"));
        }
    }
}
