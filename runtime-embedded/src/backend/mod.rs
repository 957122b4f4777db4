//! Model backends: what turns a conversation into a streamed reply.

mod echo;
mod openai;
mod silent;
mod sse;

use std::fmt::Debug;
use std::pin::Pin;

use async_trait::async_trait;
use futures_core::Stream;
use yoi_runtime_api::dto::{FailureCode, FailureReason};

pub use echo::{EchoBackend, echo_reply_chunks};
pub use openai::{
    DEFAULT_MAX_REPLY_BYTES, DEFAULT_MAX_TURN, OpenAiBackend, OpenAiConfig, OpenAiConfigError,
};
pub use silent::SilentBackend;

/// Who wrote a message of a [`ChatRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    /// The profile's system prompt.
    System,
    /// An input.
    User,
    /// An earlier reply.
    Assistant,
}

impl ChatRole {
    /// The role's name in OpenAI-compatible APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of the conversation sent to a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: ChatRole,
    /// What it says.
    pub content: String,
}

/// A conversation to continue: the system prompt, then earlier turns, and
/// last the input to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// The messages, oldest first.
    pub messages: Vec<ChatMessage>,
}

/// Why a backend could not produce (all of) a reply. Messages never contain
/// credentials or URLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// The stable failure code.
    pub code: FailureCode,
    /// A message for people.
    pub message: String,
    /// The provider's HTTP status, when it answered with an error.
    pub http_status: Option<u16>,
}

impl BackendError {
    /// A backend error with this code and message.
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http_status: None,
        }
    }

    /// The same error, naming the provider's HTTP status.
    #[must_use]
    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// The reason recorded in the `turn_failed` event.
    pub fn into_reason(self) -> FailureReason {
        FailureReason {
            code: self.code,
            message: self.message,
            http_status: self.http_status,
        }
    }
}

/// A reply being streamed: text deltas in order, ending after the last one.
/// An `Err` item ends the reply as failed.
pub type DeltaStream = Pin<Box<dyn Stream<Item = Result<String, BackendError>> + Send + 'static>>;

/// A model that answers a conversation with a streamed reply.
///
/// Implementations must be cancel-safe: the Worker drops the stream when the
/// turn is cancelled, and that must release the connection.
#[async_trait]
pub trait ModelBackend: Send + Sync + Debug + 'static {
    /// Starts a reply to `request`.
    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, BackendError>;

    /// The kind of backend, shown with the profile (for example `echo`).
    /// Never a URL or model key.
    fn kind(&self) -> &'static str {
        "custom"
    }
}
