//! [`Json`], the JSON answer of every route.
//!
//! `axum::Json` serializes into a 128-byte buffer that grows as it fills:
//! a Worker's detail (about 450 bytes) moved twice before it was sent.
//! This one starts at [`FIRST_BUFFER`], which holds most answers whole.
//! [`WrittenJson`] writes the answers sent most (a Worker's detail, a
//! transcript page) with their hand-written encoders.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use yoi_runtime_api::dto::WriteJson;

use crate::error::ApiError;

/// The buffer an answer is serialized into first.
const FIRST_BUFFER: usize = 1024;

/// `T` as an `application/json` answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(FIRST_BUFFER);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => answer(body),
            // A DTO always serializes; if one did not, say so as a problem.
            Err(err) => ApiError(yoi_runtime_api::RuntimeError::internal(
                "cannot encode the answer",
                err,
            ))
            .into_response(),
        }
    }
}

/// `T` as an `application/json` answer written by its [`WriteJson`]
/// encoder (the same bytes as [`Json`], at less cost): for the answers
/// sent most.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WrittenJson<T>(pub T);

impl<T: WriteJson + Serialize> IntoResponse for WrittenJson<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(FIRST_BUFFER);
        match self.0.write_json(&mut body) {
            Ok(()) => answer(body),
            // serde's refusal, as any other answer would give it.
            Err(_) => Json(self.0).into_response(),
        }
    }
}

/// The answers' content type, checked once at compile time (`from_static`
/// called at run time checks its bytes on every call).
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

fn answer(body: Vec<u8>) -> Response {
    // Built directly: `(headers, Vec<u8>)` first sets the bytes' own
    // `application/octet-stream`, then replaces it.
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use http_body_util::BodyExt;

    /// The two answers have the same status, content type and body; the
    /// status.
    async fn same_answer(ours: Response, theirs: Response) -> StatusCode {
        assert_eq!(ours.status(), theirs.status());
        assert_eq!(
            ours.headers()[header::CONTENT_TYPE],
            theirs.headers()[header::CONTENT_TYPE]
        );
        let status = ours.status();
        let ours = ours.into_body().collect().await.unwrap().to_bytes();
        let theirs = theirs.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(ours, theirs);
        status
    }

    #[tokio::test]
    async fn answers_are_the_same_json_as_axums() {
        let values = [
            serde_json::json!({ "status": "ok" }),
            serde_json::json!({ "text": "é\"\n".repeat(600), "n": [1, 2, 3] }),
        ];
        for value in values {
            same_answer(
                Json(&value).into_response(),
                axum::Json(&value).into_response(),
            )
            .await;
        }
    }

    #[tokio::test]
    async fn written_answers_are_the_serde_answers_even_when_refused() {
        use yoi_runtime_api::Timestamp;
        use yoi_runtime_api::dto::{EntryRole, EntryStatus, TranscriptEntry, TranscriptPage};
        let page = |at| TranscriptPage {
            start: 0,
            limit: 50,
            total: 1,
            next_start: None,
            entries: vec![TranscriptEntry {
                index: 0,
                role: EntryRole::User,
                text: "hi \"there\"\n".to_owned(),
                at,
                status: EntryStatus::Complete,
                input_id: None,
            }],
        };
        // Before the year 0, which RFC 3339 cannot write: both refuse.
        let unwritable = Timestamp::from_unix_nanos(-100_000_000_000_000_000_000).unwrap();
        let written = page(Timestamp::now());
        let status = same_answer(
            WrittenJson(written.clone()).into_response(),
            Json(written).into_response(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let refused = page(unwritable);
        let status = same_answer(
            WrittenJson(refused.clone()).into_response(),
            Json(refused).into_response(),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
