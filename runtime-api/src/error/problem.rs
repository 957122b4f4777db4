//! The RFC 9457 problem document that carries a [`RuntimeError`] over HTTP.

use serde::{Deserialize, Serialize};

use super::RuntimeError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An `application/problem+json` document (RFC 9457): the standard members,
/// and the error's own wire form flattened beside them (`code` and the
/// fields that code needs).
///
/// A server answers with `Problem::from(error)` and the status
/// [`Problem::status`]; a client rebuilds the exact error with
/// [`Problem::into_error`].
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the problem type: `urn:yoi:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP reason phrase.
    pub title: String,
    /// The HTTP status, from the one status table.
    pub status: u16,
    /// What went wrong, for people; never includes internal details.
    pub detail: String,
    /// The error: `code` and the fields it needs.
    #[serde(flatten)]
    pub error: RuntimeError,
}

impl Problem {
    /// The error this document carries.
    pub fn into_error(self) -> RuntimeError {
        self.error
    }

    /// The HTTP status of the document.
    pub fn status(&self) -> http::StatusCode {
        self.error.code().http_status()
    }
}

impl From<RuntimeError> for Problem {
    fn from(error: RuntimeError) -> Self {
        let status = error.code().http_status();
        Self {
            kind: format!("urn:yoi:problem:{}", error.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: error.public_message(),
            error,
        }
    }
}
