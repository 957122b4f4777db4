//! Server-Sent Event frames of followed streams, encoded once and shared.
//!
//! When many clients follow one Worker, every one of them is sent the same
//! bytes for each event. **A frame is encoded once, kept in a small cache
//! bounded in bytes, and handed to every response as the same `Bytes`**,
//! so a thousand followers cost one encoding and one buffer per event, not
//! a thousand; a follower that does not read holds a reference, not a copy.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use yoi_runtime_api::dto::WorkerEvent;
use yoi_runtime_api::{EventCursor, EventStream, Problem, RuntimeError};

/// The name of the in-stream error event: not `error`, which is the name
/// of `EventSource`'s own connection-error event.
pub(crate) const STREAM_ERROR: &str = "stream_error";

/// The most bytes of encoded frames kept for sharing.
const CACHE_BYTES: usize = 16 << 20;

/// Which stream a frame belongs to: one Worker's log, or a Runtime's own.
/// Cursors are unique within a stream only.
pub(crate) type Scope = Arc<str>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    scope: Scope,
    cursor: EventCursor,
}

/// Encoded frames by stream and cursor, oldest dropped first past
/// [`CACHE_BYTES`].
#[derive(Default)]
pub(crate) struct FrameCache {
    inner: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    frames: HashMap<Key, Bytes>,
    order: VecDeque<Key>,
    bytes: usize,
}

impl std::fmt::Debug for FrameCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frames = self.inner.lock().map_or(0, |cache| cache.frames.len());
        f.debug_struct("FrameCache")
            .field("frames", &frames)
            .finish()
    }
}

impl FrameCache {
    /// The frame of `event` in `scope`, encoded now or by an earlier
    /// follower.
    fn frame(&self, scope: &Scope, event: &WorkerEvent) -> Bytes {
        let key = Key {
            scope: scope.clone(),
            cursor: event.cursor.clone(),
        };
        if let Some(frame) = self.lock().frames.get(&key) {
            return frame.clone();
        }
        // Encoded outside the lock; two followers may both encode it once.
        let frame = event_frame(event);
        let mut cache = self.lock();
        if !cache.frames.contains_key(&key) {
            cache.bytes += frame.len();
            cache.order.push_back(key.clone());
            cache.frames.insert(key, frame.clone());
            while cache.bytes > CACHE_BYTES {
                let Some(oldest) = cache.order.pop_front() else {
                    break;
                };
                if let Some(dropped) = cache.frames.remove(&oldest) {
                    cache.bytes -= dropped.len();
                }
            }
        }
        frame
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `id:`, `event:` and one `data:` line (JSON has no raw newlines).
fn event_frame(event: &WorkerEvent) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.cursor,
        event.kind_name()
    ))
}

/// The in-stream error event: a Problem, named so that it does not collide
/// with `EventSource`'s own `error`.
fn error_frame(err: RuntimeError) -> Bytes {
    let data = serde_json::to_string(&Problem::from(err)).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!("event: {STREAM_ERROR}\ndata: {data}\n\n"))
}

/// `stream` as a `text/event-stream` response: first the `retry:` hint,
/// then shared frames, a comment line after `keep_alive` of silence, and
/// the end once `shutdown` resolves.
pub(crate) fn response(
    cache: Arc<FrameCache>,
    scope: Scope,
    stream: EventStream,
    retry: Duration,
    keep_alive: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Response {
    let hint = Bytes::from(format!("retry: {}\n\n", retry.as_millis()));
    struct Follow {
        stream: EventStream,
        cache: Arc<FrameCache>,
        scope: Scope,
        ended: bool,
    }
    let follow = Follow {
        stream,
        cache,
        scope,
        ended: false,
    };
    let frames = futures_util::stream::unfold(follow, move |mut follow| async move {
        if follow.ended {
            return None;
        }
        let frame = tokio::select! {
            item = follow.stream.next() => match item? {
                Ok(event) => follow.cache.frame(&follow.scope, &event),
                Err(err) => {
                    // The stream ends after an error; the client reconnects.
                    follow.ended = true;
                    error_frame(err)
                }
            },
            () = tokio::time::sleep(keep_alive) => Bytes::from_static(b":\n\n"),
        };
        Some((Ok::<_, Infallible>(frame), follow))
    });
    let body = futures_util::stream::once(async move { Ok(hint) })
        .chain(frames)
        .take_until(shutdown);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use yoi_runtime_api::Timestamp;
    use yoi_runtime_api::dto::WorkerEventKind;

    fn event(cursor: &str) -> WorkerEvent {
        WorkerEvent {
            cursor: cursor.parse().unwrap(),
            worker_id: "w-1".parse().unwrap(),
            at: Timestamp::now(),
            kind: WorkerEventKind::WorkerStopped {},
        }
    }

    #[test]
    fn followers_of_one_stream_share_one_encoding() {
        let cache = FrameCache::default();
        let scope: Scope = "w:rt/w-1".into();
        let first = cache.frame(&scope, &event("1.ab"));
        let second = cache.frame(&scope, &event("1.ab"));
        assert_eq!(first.as_ptr(), second.as_ptr(), "the same buffer");
        let text = std::str::from_utf8(&first).unwrap();
        assert!(
            text.starts_with("id: 1.ab\nevent: worker_stopped\ndata: {"),
            "{text}"
        );
        assert!(text.ends_with("}\n\n"));
        // Another stream with the same cursor gets its own frame.
        let other = cache.frame(&"r:rt".into(), &event("1.ab"));
        assert_ne!(first.as_ptr(), other.as_ptr());
    }

    #[test]
    fn an_error_is_a_stream_error_event_carrying_a_problem() {
        let frame = error_frame(RuntimeError::CursorExpired {
            runtime_id: "rt".parse().unwrap(),
            worker_id: None,
            cursor: "9.zz".parse().unwrap(),
        });
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with("event: stream_error\ndata: {"), "{text}");
        let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let problem: Problem = serde_json::from_str(data).unwrap();
        assert_eq!(problem.status, 410);
    }

    #[test]
    fn the_cache_stays_within_its_byte_bound() {
        let cache = FrameCache::default();
        let scope: Scope = "w:rt/w-1".into();
        for seq in 0..200_000 {
            cache.frame(&scope, &event(&format!("{seq}.ab")));
        }
        assert!(cache.lock().bytes <= CACHE_BYTES);
    }
}
