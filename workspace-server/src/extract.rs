//! Extractors whose rejections are [`ApiError`]s, so that every malformed
//! request gets the same problem document as any other error.

use std::marker::PhantomData;
use std::str::FromStr;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header;
use axum::http::request::Parts;
use http_body_util::LengthLimitError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use yoi_runtime_api::dto::{WorkerFilter, WorkerListQuery};
use yoi_runtime_api::{IdError, RuntimeError, RuntimeId, WorkerId};

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON object body. Malformed JSON, a body that is not an object, and
/// missing or unknown fields are `invalid_request`; a content type other than
/// JSON is 415; a body over the limit is `payload_too_large`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers();
        if !is_json(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        ) {
            return Err(RuntimeError::UnsupportedMediaType.into());
        }
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let max = state.max_body_bytes();
        let too_large = |size: Option<u64>| {
            ApiError(RuntimeError::PayloadTooLarge {
                what: "request body".to_owned(),
                size: size.unwrap_or(max as u64 + 1),
                max: max as u64,
            })
        };
        if declared.is_some_and(|size| size > max as u64) {
            return Err(too_large(declared));
        }
        // Read with the limit here rather than by a `DefaultBodyLimit`
        // layer, which would cost every request an extension.
        let bytes = match axum::body::to_bytes(req.into_body(), max).await {
            Ok(bytes) => bytes,
            Err(err) => {
                let err = err.into_inner();
                if err.downcast_ref::<LengthLimitError>().is_some() {
                    return Err(too_large(declared));
                }
                return Err(ApiError::invalid_request(format!(
                    "the body could not be read: {err}"
                )));
            }
        };
        // serde would read a struct from a JSON array too; the API takes
        // objects only.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid_request("the body must be a JSON object"));
        }
        serde_json::from_slice(&bytes).map(Self).map_err(|err| {
            if err.is_data() {
                ApiError::invalid_request(format!("the JSON body does not fit: {err}"))
            } else {
                ApiError::invalid_request("the body is not valid JSON")
            }
        })
    }
}

/// A query string.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(ApiError::from)
    }
}

/// The query of a Worker list: filter, sort, order, cursor and limit, read
/// by the contract's own parser (unknown names are `invalid_request`).
#[derive(Debug)]
pub struct ListQuery(pub WorkerListQuery);

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs = query_pairs(parts);
        let query =
            WorkerListQuery::from_query_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
        Ok(Self(query))
    }
}

/// The query of a Worker count: a filter only.
#[derive(Debug)]
pub struct FilterQuery(pub WorkerFilter);

impl<S: Send + Sync> FromRequestParts<S> for FilterQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs = query_pairs(parts);
        let filter =
            WorkerFilter::from_query_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
        Ok(Self(filter))
    }
}

fn query_pairs(parts: &Parts) -> Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).collect()
}

/// `{runtime_id}` of a path, validated.
#[derive(Debug)]
pub struct RuntimePath(pub RuntimeId);

impl<S: Send + Sync> FromRequestParts<S> for RuntimePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<RuntimeParams>::from_request_parts(parts, state).await?;
        Ok(Self(params.runtime_id.into_id()?))
    }
}

/// `{runtime_id}/workers/{worker_id}` of a path, validated.
#[derive(Debug)]
pub struct WorkerPath(pub RuntimeId, pub WorkerId);

impl<S: Send + Sync> FromRequestParts<S> for WorkerPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The ids are read from the path itself when neither needs
        // percent-decoding: the same text the router's parameters hold, and
        // the only way to them on the routes `routes/direct.rs` answers
        // without the router.
        if let Some(segments) = WorkerSegments::of(parts.uri.path()) {
            return Ok(Self(
                Param(segments.runtime_id.parse()).into_id()?,
                Param(segments.worker_id.parse()).into_id()?,
            ));
        }
        let Path(params) = Path::<WorkerParams>::from_request_parts(parts, state).await?;
        Ok(Self(
            params.runtime_id.into_id()?,
            params.worker_id.into_id()?,
        ))
    }
}

/// The prefix of every route under a Worker:
/// `/api/runtimes/{runtime_id}/workers/{worker_id}`.
const RUNTIMES_PREFIX: &str = "/api/runtimes/";
const WORKERS_SEGMENT: &str = "/workers/";

/// A path under `/api/runtimes/{runtime_id}/workers/{worker_id}`, split:
/// the two segments as the router's parameters would hold them, and what
/// follows them (empty, or starting with `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkerSegments<'a> {
    pub(crate) runtime_id: &'a str,
    pub(crate) worker_id: &'a str,
    pub(crate) rest: &'a str,
}

impl<'a> WorkerSegments<'a> {
    /// `None` unless both segments are non-empty and hold no `%` (a
    /// percent-encoded segment is left to the router, which decodes it).
    pub(crate) fn of(path: &'a str) -> Option<Self> {
        let rest = path.strip_prefix(RUNTIMES_PREFIX)?;
        let runtime_end = plain_segment(rest.as_bytes())?;
        let (runtime_id, rest) = rest.split_at(runtime_end);
        let rest = rest.strip_prefix(WORKERS_SEGMENT)?;
        let worker_end = plain_segment(rest.as_bytes())?;
        let (worker_id, rest) = rest.split_at(worker_end);
        Some(Self {
            runtime_id,
            worker_id,
            rest,
        })
    }
}

/// The length of the path segment `bytes` starts with (up to a `/` or the
/// end), when it is not empty and holds no `%`. One pass over bytes that
/// are only ASCII where it stops, so the length is a `char` boundary: a
/// `str` search (`find`, `contains`) costs several times as much on a
/// segment this short, and each request reads two segments twice.
fn plain_segment(bytes: &[u8]) -> Option<usize> {
    let mut len = 0;
    while let Some(&byte) = bytes.get(len) {
        match byte {
            b'/' => break,
            b'%' => return None,
            _ => len += 1,
        }
    }
    (len > 0).then_some(len)
}

// The parameters are read in place from the router's (axum's `Path`
// borrows them, where `RawPathParams` copies the list), and each id from
// its borrowed text (no copy up to 23 bytes).
#[derive(Deserialize)]
struct RuntimeParams {
    runtime_id: Param<RuntimeId>,
}

#[derive(Deserialize)]
struct WorkerParams {
    runtime_id: Param<RuntimeId>,
    worker_id: Param<WorkerId>,
}

/// A path parameter parsed as an id, its error kept rather than failing
/// the path: a bad id is the id's own typed error (`invalid_id`, naming the
/// field), not a path that does not deserialize.
struct Param<T>(Result<T, IdError>);

impl<T> Param<T> {
    fn into_id(self) -> Result<T, ApiError> {
        self.0.map_err(|err| ApiError(RuntimeError::from(err)))
    }
}

impl<'de, T: FromStr<Err = IdError>> Deserialize<'de> for Param<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text<T>(PhantomData<T>);

        impl<T: FromStr<Err = IdError>> serde::de::Visitor<'_> for Text<T> {
            type Value = Param<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a path segment")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Param<T>, E> {
                Ok(Param(value.parse()))
            }
        }

        deserializer.deserialize_str(Text(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Option<(&str, &str, &str)> {
        WorkerSegments::of(path).map(|s| (s.runtime_id, s.worker_id, s.rest))
    }

    #[test]
    fn a_workers_path_splits_into_its_two_ids_and_the_rest() {
        assert_eq!(
            segments("/api/runtimes/rt/workers/w"),
            Some(("rt", "w", ""))
        );
        assert_eq!(
            segments("/api/runtimes/rt/workers/w/transcript"),
            Some(("rt", "w", "/transcript"))
        );
        assert_eq!(
            segments("/api/runtimes/rt/workers/w/"),
            Some(("rt", "w", "/"))
        );
        // Not ASCII: the split falls on the `/`, a character boundary.
        assert_eq!(
            segments("/api/runtimes/ü/workers/é🦀/x"),
            Some(("ü", "é🦀", "/x"))
        );
    }

    #[test]
    fn an_empty_or_percent_encoded_segment_or_another_shape_is_none() {
        for path in [
            "/api/runtimes//workers/w",
            "/api/runtimes/rt/workers/",
            "/api/runtimes/rt/workers",
            "/api/runtimes/rt",
            "/api/runtimes/",
            "/api/runtimes/r%74/workers/w",
            "/api/runtimes/rt/workers/w%41",
            "/api/runtimes/rt/workers/%41/transcript",
            "/api/runtimes/rt/other/w",
            "/api/workers/w",
            "/healthz",
            "",
        ] {
            assert_eq!(segments(path), None, "{path}");
        }
    }
}
