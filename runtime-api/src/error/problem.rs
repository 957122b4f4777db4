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
///
/// In OpenAPI it is a discriminated union on `code`, one titled schema per
/// code (`UnknownWorkerProblem`, ...).
#[derive(Debug, Serialize, Deserialize)]
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

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::{PartialSchema, ToSchema};

    use super::{Problem, RuntimeError};
    use crate::openapi::{Named, required_fields, tagged_union};

    fn union(named: &mut Named) -> RefOr<Schema> {
        let text = || {
            RefOr::T(Schema::Object(
                ObjectBuilder::new().schema_type(Type::String).build(),
            ))
        };
        let status = RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(100))
                .maximum(Some(599))
                .build(),
        ));
        let head = required_fields(&[
            (
                "type",
                text(),
                "A URI naming the problem type: `urn:yoi:problem:<code>`.",
            ),
            ("title", text(), "The HTTP reason phrase."),
            (
                "status",
                status,
                "The HTTP status, from the one status table.",
            ),
            ("detail", text(), "What went wrong, for people."),
        ]);
        tagged_union(RuntimeError::schema(), &head, "code", "Problem", named)
    }

    impl PartialSchema for Problem {
        fn schema() -> RefOr<Schema> {
            union(&mut Vec::new())
        }
    }

    impl ToSchema for Problem {
        fn schemas(named: &mut Named) {
            union(named);
            <RuntimeError as ToSchema>::schemas(named);
        }
    }
}
