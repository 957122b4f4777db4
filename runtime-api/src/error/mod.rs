//! The one error type of the contract.
//!
//! Every failure a caller can cause or observe is a [`RuntimeError`] variant
//! with a stable [`ErrorCode`]. Codes never change meaning; new variants may
//! be added (the enum is `#[non_exhaustive]`). The error's serde form is its
//! wire form: a JSON object tagged by `code` with the fields that code
//! needs, so a remote client rebuilds the exact error by deserializing it.
//! With the `http` feature each code maps to one HTTP status in
//! `ErrorCode::http_status`, and `Problem` is the RFC 9457 document that
//! carries an error over HTTP.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::{EventCursor, IdError, IdErrorReason, InputId, ProfileName, RuntimeId, WorkerId};

/// A `Result` whose error is [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// An operation of the [`Runtime`](crate::Runtime) trait, named in
/// [`RuntimeError::UnsupportedOperation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// Listing Workers.
    ListWorkers,
    /// Creating a Worker.
    CreateWorker,
    /// Sending input to a Worker.
    SendInput,
    /// Sending input with `on_busy: queue`.
    QueueInput,
    /// Sending input with `on_busy: interrupt`.
    InterruptInput,
    /// Stopping a Worker.
    Stop,
    /// Cancelling a Worker's running turn.
    Cancel,
    /// Deleting a Worker and its data.
    DeleteWorker,
    /// Reading a transcript page.
    Transcript,
    /// Reading an events page.
    Events,
    /// Subscribing to an event stream.
    Subscribe,
    /// Listing the profiles Workers can be created with.
    ListProfiles,
    /// Renaming a Worker or changing its metadata.
    UpdateWorker,
    /// Taking back a Worker's last turns.
    Rollback,
    /// Forking a Worker.
    ForkWorker,
    /// Listing Workers with a filter, sort order or cursor, or counting
    /// them.
    SearchWorkers,
}

impl Operation {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ListWorkers => "list_workers",
            Self::CreateWorker => "create_worker",
            Self::SendInput => "send_input",
            Self::QueueInput => "queue_input",
            Self::InterruptInput => "interrupt_input",
            Self::Stop => "stop",
            Self::Cancel => "cancel",
            Self::DeleteWorker => "delete_worker",
            Self::Transcript => "transcript",
            Self::Events => "events",
            Self::Subscribe => "subscribe",
            Self::ListProfiles => "list_profiles",
            Self::UpdateWorker => "update_worker",
            Self::Rollback => "rollback",
            Self::ForkWorker => "fork_worker",
            Self::SearchWorkers => "search_workers",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a Worker refused an input with [`RuntimeError::WorkerBusy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BusyReason {
    /// A turn is running and the input asked for `on_busy: reject`.
    TurnRunning,
    /// The input asked for `on_busy: queue` and the queue is full.
    QueueFull,
}

/// Every error of the contract, and of the HTTP form of the contract.
///
/// Messages are written for the person calling the API: they name the ids
/// involved and say what to change. No variant carries a path, URL, token or
/// credential; [`RuntimeError::Internal`] keeps its cause in a source that is
/// never part of `Display`, the serialized form or a response.
///
/// The serde form is the wire form: `{"code": "unknown_worker",
/// "runtime_id": "...", "worker_id": "..."}`. Field names on the wire are
/// shared between codes (`field`, `reason`, `requested`, `max`), so a
/// problem document has one flat, documented shape.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RuntimeError {
    /// The request is malformed in a way no other variant describes.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong, for the caller.
        #[serde(rename = "reason")]
        message: String,
    },
    /// An id does not satisfy the id rules.
    #[error("invalid {kind}: {reason}")]
    InvalidId {
        /// Which id, for example `worker_id`.
        #[serde(rename = "field")]
        kind: String,
        /// What is wrong with it.
        reason: IdErrorReason,
    },
    /// No Runtime with this id is registered.
    #[error("unknown runtime '{runtime_id}'")]
    UnknownRuntime {
        /// The id that was asked for.
        runtime_id: RuntimeId,
    },
    /// The Runtime has no Worker with this id.
    #[error("runtime '{runtime_id}' has no worker '{worker_id}'")]
    UnknownWorker {
        /// The Runtime that was asked.
        runtime_id: RuntimeId,
        /// The id that was asked for.
        worker_id: WorkerId,
    },
    /// The Runtime has no profile with this name.
    #[error(
        "runtime '{runtime_id}' has no profile '{profile}'{}",
        known_profiles(known)
    )]
    UnknownProfile {
        /// The Runtime that was asked.
        runtime_id: RuntimeId,
        /// The profile that was asked for.
        profile: ProfileName,
        /// The profiles it has (empty when it did not say).
        #[serde(default)]
        known: Vec<ProfileName>,
    },
    /// The Worker cannot take the input now.
    #[error("worker '{worker_id}' in runtime '{runtime_id}' is busy: {}", busy_message(*reason))]
    WorkerBusy {
        /// The Runtime of the Worker.
        runtime_id: RuntimeId,
        /// The busy Worker.
        worker_id: WorkerId,
        /// Why it is busy.
        reason: BusyReason,
    },
    /// The Worker was stopped and takes no more input.
    #[error("worker '{worker_id}' in runtime '{runtime_id}' is stopped")]
    WorkerStopped {
        /// The Runtime of the Worker.
        runtime_id: RuntimeId,
        /// The stopped Worker.
        worker_id: WorkerId,
    },
    /// The Runtime cannot serve requests right now. Answered with
    /// `Retry-After: 1`.
    #[error("runtime '{runtime_id}' is unavailable: {message}")]
    RuntimeUnavailable {
        /// The unavailable Runtime.
        runtime_id: RuntimeId,
        /// Why, for the caller.
        #[serde(rename = "reason")]
        message: String,
    },
    /// The Runtime does not implement this operation (its capability is off).
    #[error("runtime '{runtime_id}' does not support {operation}")]
    UnsupportedOperation {
        /// The Runtime that was asked.
        runtime_id: RuntimeId,
        /// The operation it does not support.
        operation: Operation,
    },
    /// A requested page size is above the maximum.
    #[error("{field} {requested} is larger than the maximum {max}")]
    LimitTooLarge {
        /// The parameter, for example `limit`.
        field: String,
        /// What was asked for.
        requested: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// The cursor is no longer valid for this log: older than the oldest
    /// event still retained, or never issued by it (for example, from
    /// before a restart, from another log, or not yet).
    #[error(
        "cursor '{cursor}' is not valid for {} (expired or unknown); read again without a cursor",
        log_name(runtime_id, worker_id.as_ref())
    )]
    CursorExpired {
        /// The Runtime whose log was read.
        runtime_id: RuntimeId,
        /// The Worker whose log was read; absent for the Runtime's own
        /// event stream.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker_id: Option<WorkerId>,
        /// The expired cursor.
        cursor: EventCursor,
    },
    /// A payload is larger than allowed.
    #[error("{what} of {size} bytes is larger than the maximum of {max} bytes")]
    PayloadTooLarge {
        /// What was too large, for example `input text`.
        #[serde(rename = "field")]
        what: String,
        /// Its size in bytes.
        #[serde(rename = "requested")]
        size: u64,
        /// The largest size allowed.
        max: u64,
    },
    /// Something failed inside the Runtime. The `source` is for logs only.
    #[error("internal error: {message}")]
    Internal {
        /// A summary for logs. Not sent on the wire: a rebuilt error says
        /// only that the peer failed.
        #[serde(skip_serializing, default = "peer_failed")]
        message: String,
        /// The cause, for logs. Never shown to clients, and redacted in
        /// `Debug` because it may name internal paths.
        #[source]
        #[serde(skip)]
        source: Option<InternalSource>,
    },
    /// The HTTP form needs a credential and the request had none or a wrong
    /// one.
    #[error("a valid bearer token or session is required")]
    Unauthorized,
    /// No route of the HTTP form matches the path.
    #[error("no route matches this path")]
    RouteNotFound,
    /// The route exists but not with this method.
    #[error("this route does not accept this method")]
    MethodNotAllowed,
    /// The body is not in a media type the route accepts.
    #[error(
        "the body must be JSON sent as application/json (a PATCH may also say application/merge-patch+json)"
    )]
    UnsupportedMediaType,
    /// The request's `Host` is not one this server answers for: a defence
    /// against DNS rebinding. Loopback binds answer loopback names only;
    /// other names must be listed in `allowed_hosts`.
    #[error(
        "this server does not answer for the host this request names; use a loopback address or add the name to allowed_hosts"
    )]
    HostNotAllowed,
    /// A bound on what the server holds at once was reached (connections,
    /// live Workers, retained bytes). Answered with `Retry-After`; retry
    /// later or free something.
    #[error("capacity exceeded: {what}; retry later")]
    CapacityExceeded {
        /// What is full, for example `connections`.
        what: String,
    },
    /// A request that changes state came from another site, or a request
    /// authenticated by a session cookie lacked proof that it came from the
    /// console.
    #[error("cross-site request refused: {reason}")]
    CrossSiteRequest {
        /// What was missing or wrong.
        reason: String,
    },
    /// Too many wrong tokens came from the client's address: the token is
    /// not checked again until one attempt is given back. Answered with
    /// `Retry-After`.
    #[error(
        "too many wrong tokens from this address; the token is not checked again for {retry_after_secs} s"
    )]
    TooManyAttempts {
        /// Seconds until the next attempt is checked.
        retry_after_secs: u64,
    },
    /// The server should not be sent work now (`/readyz`): it is shutting
    /// down, or a Runtime it hosts in its own process is unavailable.
    #[error("not ready: {reason}")]
    NotReady {
        /// Why, without naming anything internal.
        reason: String,
    },
    /// An input came with a `client_input_id` the Worker already accepted
    /// for a different text. A retry must repeat the input it retries; a
    /// new input needs a new id. Nothing was recorded.
    #[error(
        "client_input_id '{client_input_id}' was already used for a different input ({input_id}) of worker '{worker_id}' in runtime '{runtime_id}'; send a new input with a new id"
    )]
    InputIdConflict {
        /// The Runtime of the Worker.
        runtime_id: RuntimeId,
        /// The Worker.
        worker_id: WorkerId,
        /// The client's id, sent again.
        client_input_id: InputId,
        /// The input it was first accepted as.
        input_id: InputId,
    },
}

fn log_name(runtime_id: &RuntimeId, worker_id: Option<&WorkerId>) -> String {
    match worker_id {
        Some(worker_id) => format!("the events of worker '{worker_id}' in runtime '{runtime_id}'"),
        None => format!("the event stream of runtime '{runtime_id}'"),
    }
}

fn peer_failed() -> String {
    "the remote runtime failed to handle the request".to_owned()
}

/// The cause of an [`RuntimeError::Internal`]. Its `Display` is the cause's,
/// for logs; its `Debug` is redacted, so `{:?}` of an error never prints an
/// internal path or detail.
pub struct InternalSource(Box<dyn std::error::Error + Send + Sync>);

impl InternalSource {
    /// The wrapped cause.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync> {
        self.0
    }
}

impl fmt::Debug for InternalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InternalSource(<redacted>)")
    }
}

impl fmt::Display for InternalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for InternalSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

fn busy_message(reason: BusyReason) -> &'static str {
    match reason {
        BusyReason::TurnRunning => {
            "a turn is running; retry later or send with on_busy 'queue' or 'interrupt'"
        }
        BusyReason::QueueFull => "its input queue is full; retry after a turn completes",
    }
}

impl From<IdError> for RuntimeError {
    fn from(err: IdError) -> Self {
        Self::InvalidId {
            kind: err.kind.to_owned(),
            reason: err.reason,
        }
    }
}

impl RuntimeError {
    /// An [`RuntimeError::InvalidRequest`] with this message.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
        }
    }

    /// The `unsupported_operation` error for `operation` on `runtime_id`.
    pub fn unsupported(runtime_id: RuntimeId, operation: Operation) -> Self {
        Self::UnsupportedOperation {
            runtime_id,
            operation,
        }
    }

    /// An [`RuntimeError::Internal`] with a safe message and a cause for logs.
    pub fn internal(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            message: message.into(),
            source: Some(InternalSource(source.into())),
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            Self::InvalidId { .. } => ErrorCode::InvalidId,
            Self::UnknownRuntime { .. } => ErrorCode::UnknownRuntime,
            Self::UnknownWorker { .. } => ErrorCode::UnknownWorker,
            Self::UnknownProfile { .. } => ErrorCode::UnknownProfile,
            Self::WorkerBusy { .. } => ErrorCode::WorkerBusy,
            Self::WorkerStopped { .. } => ErrorCode::WorkerStopped,
            Self::RuntimeUnavailable { .. } => ErrorCode::RuntimeUnavailable,
            Self::UnsupportedOperation { .. } => ErrorCode::UnsupportedOperation,
            Self::LimitTooLarge { .. } => ErrorCode::LimitTooLarge,
            Self::CursorExpired { .. } => ErrorCode::CursorExpired,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::Internal { .. } => ErrorCode::Internal,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::RouteNotFound => ErrorCode::RouteNotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::HostNotAllowed => ErrorCode::HostNotAllowed,
            Self::CapacityExceeded { .. } => ErrorCode::CapacityExceeded,
            Self::CrossSiteRequest { .. } => ErrorCode::CrossSiteRequest,
            Self::TooManyAttempts { .. } => ErrorCode::TooManyAttempts,
            Self::NotReady { .. } => ErrorCode::NotReady,
            Self::InputIdConflict { .. } => ErrorCode::InputIdConflict,
        }
    }

    /// The Runtime this error concerns, where there is one.
    pub fn runtime_id(&self) -> Option<&RuntimeId> {
        match self {
            Self::UnknownRuntime { runtime_id }
            | Self::UnknownWorker { runtime_id, .. }
            | Self::UnknownProfile { runtime_id, .. }
            | Self::WorkerBusy { runtime_id, .. }
            | Self::WorkerStopped { runtime_id, .. }
            | Self::RuntimeUnavailable { runtime_id, .. }
            | Self::UnsupportedOperation { runtime_id, .. }
            | Self::CursorExpired { runtime_id, .. }
            | Self::InputIdConflict { runtime_id, .. } => Some(runtime_id),
            _ => None,
        }
    }

    /// The Worker this error concerns, where there is one.
    pub fn worker_id(&self) -> Option<&WorkerId> {
        match self {
            Self::UnknownWorker { worker_id, .. }
            | Self::WorkerBusy { worker_id, .. }
            | Self::WorkerStopped { worker_id, .. }
            | Self::InputIdConflict { worker_id, .. } => Some(worker_id),
            Self::CursorExpired { worker_id, .. } => worker_id.as_ref(),
            _ => None,
        }
    }

    /// A message that is safe to show to any client. It is the `Display`
    /// text, except for [`RuntimeError::Internal`], whose details stay in logs.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal { .. } => "the runtime failed to handle the request".to_owned(),
            other => other.to_string(),
        }
    }
}

macro_rules! error_codes {
    ($($(#[$meta:meta])* $variant:ident => $code:literal, $status:literal;)+) => {
        /// The stable, snake_case code of every [`RuntimeError`] variant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$meta])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }

            /// The HTTP status for this code: the one table every server uses.
            #[cfg(feature = "http")]
            pub fn http_status(self) -> http::StatusCode {
                match self {
                    $(ErrorCode::$variant => {
                        // The literals are valid status codes; checked by a test.
                        http::StatusCode::from_u16($status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
                    })+
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = UnknownErrorCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok(ErrorCode::$variant),)+
                    _ => Err(UnknownErrorCode),
                }
            }
        }
    };
}

error_codes! {
    /// [`RuntimeError::InvalidRequest`]: 400.
    InvalidRequest => "invalid_request", 400;
    /// [`RuntimeError::InvalidId`]: 400.
    InvalidId => "invalid_id", 400;
    /// [`RuntimeError::UnknownRuntime`]: 404.
    UnknownRuntime => "unknown_runtime", 404;
    /// [`RuntimeError::UnknownWorker`]: 404.
    UnknownWorker => "unknown_worker", 404;
    /// [`RuntimeError::UnknownProfile`]: 422.
    UnknownProfile => "unknown_profile", 422;
    /// [`RuntimeError::WorkerBusy`]: 409.
    WorkerBusy => "worker_busy", 409;
    /// [`RuntimeError::WorkerStopped`]: 409.
    WorkerStopped => "worker_stopped", 409;
    /// [`RuntimeError::RuntimeUnavailable`]: 503.
    RuntimeUnavailable => "runtime_unavailable", 503;
    /// [`RuntimeError::UnsupportedOperation`]: 501.
    UnsupportedOperation => "unsupported_operation", 501;
    /// [`RuntimeError::LimitTooLarge`]: 400.
    LimitTooLarge => "limit_too_large", 400;
    /// [`RuntimeError::CursorExpired`]: 410.
    CursorExpired => "cursor_expired", 410;
    /// [`RuntimeError::PayloadTooLarge`]: 413.
    PayloadTooLarge => "payload_too_large", 413;
    /// [`RuntimeError::Internal`]: 500.
    #[default]
    Internal => "internal", 500;
    /// [`RuntimeError::Unauthorized`]: 401.
    Unauthorized => "unauthorized", 401;
    /// [`RuntimeError::RouteNotFound`]: 404.
    RouteNotFound => "route_not_found", 404;
    /// [`RuntimeError::MethodNotAllowed`]: 405.
    MethodNotAllowed => "method_not_allowed", 405;
    /// [`RuntimeError::UnsupportedMediaType`]: 415.
    UnsupportedMediaType => "unsupported_media_type", 415;
    /// [`RuntimeError::HostNotAllowed`]: 403.
    HostNotAllowed => "host_not_allowed", 403;
    /// [`RuntimeError::CapacityExceeded`]: 503.
    CapacityExceeded => "capacity_exceeded", 503;
    /// [`RuntimeError::CrossSiteRequest`]: 403.
    CrossSiteRequest => "cross_site_request", 403;
    /// [`RuntimeError::TooManyAttempts`]: 429.
    TooManyAttempts => "too_many_attempts", 429;
    /// [`RuntimeError::NotReady`]: 503.
    NotReady => "not_ready", 503;
    /// [`RuntimeError::InputIdConflict`]: 409.
    InputIdConflict => "input_id_conflict", 409;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known [`ErrorCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code")]
pub struct UnknownErrorCode;

#[cfg(feature = "http")]
mod problem;
#[cfg(feature = "http")]
pub use problem::{PROBLEM_JSON, Problem};

#[cfg(test)]
mod tests;

/// `; it has: a, b` for [`RuntimeError::UnknownProfile`], or nothing.
fn known_profiles(known: &[ProfileName]) -> String {
    if known.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = known.iter().map(ProfileName::as_str).collect();
    format!("; it has: {}", names.join(", "))
}
