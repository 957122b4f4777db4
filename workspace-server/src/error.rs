//! One error type for every response that is not a success, rendered as
//! `application/problem+json` (RFC 9457) from one status table.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use yoi_runtime_api::{
    ErrorBody, EventCursor, Operation, ProfileName, RuntimeError, RuntimeId, WorkerId,
};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every failure the HTTP API reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A failure from the contract, with its own code.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// `/api` needs a bearer token and the request had none or a wrong one.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// No route matches the path.
    #[error("no route matches this path")]
    RouteNotFound,
    /// The route exists but not with this method.
    #[error("this route does not accept this method")]
    MethodNotAllowed,
    /// The body is not `application/json`.
    #[error("the body must be sent as application/json")]
    UnsupportedMediaType,
}

/// The codes the server adds to the contract's [`ErrorCode`]s.
const UNAUTHORIZED: &str = "unauthorized";
const ROUTE_NOT_FOUND: &str = "route_not_found";
const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";

impl ApiError {
    /// The status table: the contract's codes map through
    /// [`yoi_runtime_api::ErrorCode::http_status`], the server's own codes are listed here.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Runtime(err) => err.code().http_status(),
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Runtime(err) => err.code().as_str(),
            Self::Unauthorized => UNAUTHORIZED,
            Self::RouteNotFound => ROUTE_NOT_FOUND,
            Self::MethodNotAllowed => METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (body, detail) = match self {
            Self::Runtime(err) => (err.to_body(), err.public_message()),
            other => (ErrorBody::default(), other.to_string()),
        };
        Problem {
            kind: format!("urn:yoi:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: self.code(),
            runtime_id: body.runtime_id,
            worker_id: body.worker_id,
            profile: body.profile,
            field: body.field,
            reason: body.reason,
            operation: body.operation,
            requested: body.requested,
            max: body.max,
            cursor: body.cursor,
        }
    }

    /// An `invalid_request` error.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::Runtime(RuntimeError::invalid_request(message))
    }
}

/// An RFC 9457 problem document, extended with the contract's error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:yoi:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// The stable error code.
    #[schema(value_type = String)]
    pub code: &'static str,
    /// The Runtime concerned, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub runtime_id: Option<RuntimeId>,
    /// The Worker concerned, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub worker_id: Option<WorkerId>,
    /// The profile concerned (`unknown_profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub profile: Option<ProfileName>,
    /// The offending field (`invalid_id`, `limit_too_large`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A machine-readable detail (see `ErrorBody::reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The unsupported operation (`unsupported_operation`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// What was asked for (`limit_too_large`, `payload_too_large`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<u64>,
    /// The largest value allowed (`limit_too_large`, `payload_too_large`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// The expired cursor (`cursor_expired`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cursor: Option<EventCursor>,
}

impl Problem {
    /// The contract's error body this problem carries, for clients that
    /// rebuild the exact [`RuntimeError`] with [`RuntimeError::from_body`].
    /// `None` for the server's own codes.
    pub fn error_body(&self) -> Option<ErrorBody> {
        Some(ErrorBody {
            code: self.code.parse().ok()?,
            message: self.detail.clone(),
            runtime_id: self.runtime_id.clone(),
            worker_id: self.worker_id.clone(),
            profile: self.profile.clone(),
            field: self.field.clone(),
            reason: self.reason.clone(),
            operation: self.operation,
            requested: self.requested,
            max: self.max,
            cursor: self.cursor.clone(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details go to the log; the body stays generic.
            let source = std::error::Error::source(&self).map(ToString::to_string);
            tracing::error!(code = self.code(), error = %self, source = source.as_deref(), "request failed");
        } else if status.is_server_error() {
            // 501 and 503 are answers, not faults of this server.
            tracing::warn!(code = self.code(), error = %self, "request failed");
        }
        let problem = self.problem();
        let mut response = (status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid_request(format!("bad query string: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::invalid_request(format!("bad path: {}", rejection.body_text()))
    }
}
