use serde::{Deserialize, Serialize};

use crate::dto::{FailureReason, TranscriptEntry, TurnOutcome, WorkerState};
use crate::error::{Operation, Result, RuntimeError};
use crate::id::{EventCursor, InputId};

/// What to do with an input that arrives while a turn is running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BusyPolicy {
    /// Refuse it with `worker_busy`.
    #[default]
    Reject,
    /// Accept it into a bounded queue; it runs after the turns before it.
    Queue,
    /// Cancel the running turn (keeping its partial reply, marked
    /// `cancelled`) and run this input next.
    Interrupt,
}

impl BusyPolicy {
    /// The operation (and so the capability) an input with this policy
    /// needs.
    pub fn operation(self) -> Operation {
        match self {
            Self::Reject => Operation::SendInput,
            Self::Queue => Operation::QueueInput,
            Self::Interrupt => Operation::InterruptInput,
        }
    }
}

/// An input for a Worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InputRequest {
    /// The text; must not be blank (all `char::is_whitespace`), at most the
    /// Runtime's `max_input_bytes`. The schema pattern spells out that
    /// whitespace set so every regex dialect agrees.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "[^\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
        )
    )]
    pub text: String,
    /// A client-chosen id, unique per Worker. Sending the same id again
    /// with the same text returns the first acceptance and records nothing
    /// new, so retries are safe; with another text it is
    /// `input_id_conflict`. The Worker remembers its newest ids (1,024 by
    /// default).
    #[serde(default)]
    pub client_input_id: Option<InputId>,
    /// What to do if a turn is running (default `reject`).
    #[serde(default)]
    pub on_busy: BusyPolicy,
}

impl InputRequest {
    /// An input with this text, no client id and `on_busy: reject`.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            client_input_id: None,
            on_busy: BusyPolicy::Reject,
        }
    }

    /// Sets `on_busy`.
    pub fn on_busy(mut self, policy: BusyPolicy) -> Self {
        self.on_busy = policy;
        self
    }

    /// Sets `client_input_id`.
    pub fn client_input_id(mut self, id: InputId) -> Self {
        self.client_input_id = Some(id);
        self
    }

    /// Checks the text against the rules and `max_bytes`.
    pub fn validate(&self, max_bytes: Option<u64>) -> Result<()> {
        if let Some(max) = max_bytes
            && self.text.len() as u64 > max
        {
            return Err(RuntimeError::PayloadTooLarge {
                what: "input text".to_owned(),
                size: self.text.len() as u64,
                max,
            });
        }
        if self.text.trim().is_empty() {
            return Err(RuntimeError::invalid_request("text must not be blank"));
        }
        Ok(())
    }
}

/// Proof that a Worker recorded an input. Returned as soon as the input is
/// recorded, before its turn ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputAcceptance {
    /// The id the Runtime assigned to the input.
    pub input_id: InputId,
    /// Where the input stands in the transcript.
    pub transcript_index: u64,
    /// The Worker's state right after accepting.
    pub state: WorkerState,
    /// The cursor of the `input_accepted` event; read events after it to
    /// follow the turn.
    pub cursor: EventCursor,
}

/// The answer to an input whose turn ended while the request waited
/// (`POST .../input?wait_ms=N`): the acceptance, and how the turn ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputResult {
    /// The acceptance, as a `202` would have answered it.
    #[serde(flatten)]
    pub acceptance: InputAcceptance,
    /// How this input's turn ended.
    pub outcome: TurnOutcome,
    /// The reply entry (`index`, `text`, `status`); absent when the input
    /// never ran (dropped from the queue) or the Runtime cannot show its
    /// transcript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<TranscriptEntry>,
    /// Why the turn failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
    /// The cursor of the event that ended the turn: read events after it to
    /// go on.
    pub next_cursor: EventCursor,
}
