//! Every response that is not a success: a [`RuntimeError`] rendered as the
//! contract's `application/problem+json` document, with the status from the
//! contract's one table.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use yoi_runtime_api::{PROBLEM_JSON, Problem, RuntimeError};

/// A failure of the HTTP API. A thin wrapper, so that the contract's error
/// can be an axum response; every code and status comes from the contract.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub RuntimeError);

impl ApiError {
    /// The status, from the contract's table.
    pub fn status(&self) -> StatusCode {
        self.0.code().http_status()
    }

    /// An `invalid_request` error.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self(RuntimeError::invalid_request(message))
    }

    /// The problem document for this error.
    pub fn into_problem(self) -> Problem {
        Problem::from(self.0)
    }
}

impl From<yoi_runtime_api::IdError> for ApiError {
    fn from(err: yoi_runtime_api::IdError) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.0.code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details go to the log; the body stays generic.
            let source = std::error::Error::source(&self.0).map(ToString::to_string);
            tracing::error!(code = %code, error = %self, source = source.as_deref(), "request failed");
        } else if status.is_server_error() {
            // 501 and 503 are answers, not faults of this server; the
            // request line already says the status.
            tracing::debug!(code = %code, error = %self, "request failed");
        }
        let unauthorized = matches!(self.0, RuntimeError::Unauthorized);
        let retry_after = match self.0 {
            // A Runtime that is down, or a remote host found unreachable,
            // is tried again each second (runtime-remote's `reach.rs`).
            RuntimeError::CapacityExceeded { .. } | RuntimeError::RuntimeUnavailable { .. } => {
                Some(1)
            }
            RuntimeError::TooManyAttempts { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        let mut response = (status, axum::Json(self.into_problem())).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<QueryRejection> for ApiError {
    /// `query string: <what serde says>`, without axum's own preamble
    /// (which would say "query string" twice).
    fn from(rejection: QueryRejection) -> Self {
        let reason = match &rejection {
            QueryRejection::FailedToDeserializeQueryString(inner) => {
                std::error::Error::source(inner).map(ToString::to_string)
            }
            _ => None,
        }
        .unwrap_or_else(|| rejection.body_text());
        Self::invalid_request(format!("query string: {reason}"))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::invalid_request(format!("bad path: {}", rejection.body_text()))
    }
}
