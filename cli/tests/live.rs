//! One real listener on port 0: a chat over HTTP, SSE replay and resume with
//! `Last-Event-ID`, and graceful shutdown closing open streams.

mod common;

use std::time::Duration;

use common::live::{Live, read_sse};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_replays_then_resumes_from_last_event_id() {
    let live = Live::start().await;
    let worker = live
        .post("/api/runtimes/backend-internal/workers", json!({}))
        .await;
    let wid = worker["worker_id"].as_str().unwrap().to_owned();
    let stream_path = format!("/api/runtimes/backend-internal/workers/{wid}/events/stream");

    let response = live
        .client
        .get(live.url(&stream_path))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    live.post(
        &format!("/api/runtimes/backend-internal/workers/{wid}/input"),
        json!({ "text": "over the wire" }),
    )
    .await;
    let first = read_sse(response, |e| {
        e.event.as_deref() == Some("state_changed") && e.data["to"] == "idle"
    })
    .await;
    let kinds: Vec<&str> = first.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        kinds[..4],
        [
            "worker_created",
            "input_accepted",
            "state_changed",
            "turn_started"
        ]
    );
    assert!(kinds.contains(&"turn_completed"));
    for frame in &first {
        assert_eq!(
            frame.id.as_deref(),
            frame.data["cursor"].as_str(),
            "id: is the cursor"
        );
    }
    let text: String = first
        .iter()
        .filter(|e| e.event.as_deref() == Some("text_delta"))
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "echo: over the wire");

    // Reconnect as a browser would, after the third event.
    let resume_at = first[2].id.clone().unwrap();
    let response = resume(&live, &stream_path, &resume_at).await;
    let expected = first.len() - 3;
    let mut seen = 0;
    let resumed = read_sse(response, |_| {
        seen += 1;
        seen == expected
    })
    .await;
    assert_eq!(
        resumed,
        first[3..],
        "resume continues exactly after Last-Event-ID"
    );

    // ?after= works the same, and the stream ends after worker_stopped.
    live.post(
        &format!("/api/runtimes/backend-internal/workers/{wid}/stop"),
        json!(null),
    )
    .await;
    let response = live
        .client
        .get(live.url(&format!("{stream_path}?after={resume_at}")))
        .send()
        .await
        .unwrap();
    let rest = read_sse(response, |_| false).await;
    assert_eq!(rest[..expected], first[3..]);
    let stopped = rest.last().unwrap();
    assert_eq!(stopped.event.as_deref(), Some("worker_stopped"));

    // A browser reconnecting after worker_stopped is told to stop (204),
    // not given an empty stream to reconnect to every few seconds.
    let response = resume(&live, &stream_path, stopped.id.as_deref().unwrap()).await;
    assert_eq!(response.status(), 204);
    // Resuming earlier than the end still replays what is left.
    let response = resume(&live, &stream_path, &resume_at).await;
    assert_eq!(response.status(), 200);
    assert_eq!(read_sse(response, |_| false).await, rest);
}

/// Reconnects to `path` as a browser would, after `cursor`.
async fn resume(live: &Live, path: &str, cursor: &str) -> reqwest::Response {
    live.client
        .get(live.url(path))
        .header("Last-Event-ID", cursor)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_starts_with_a_retry_hint() {
    let live = Live::start().await;
    let worker = live
        .post("/api/runtimes/backend-internal/workers", json!({}))
        .await;
    let wid = worker["worker_id"].as_str().unwrap();
    for path in [
        format!("/api/runtimes/backend-internal/workers/{wid}/events/stream"),
        "/api/runtimes/backend-internal/events/stream".to_owned(),
    ] {
        let mut response = live.client.get(live.url(&path)).send().await.unwrap();
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&chunk);
        assert!(text.starts_with("retry: 3000\n"), "{path}: {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_open_streams() {
    let mut live = Live::start().await;
    let worker = live
        .post("/api/runtimes/backend-internal/workers", json!({}))
        .await;
    let wid = worker["worker_id"].as_str().unwrap();
    let stream = live
        .client
        .get(live.url(&format!(
            "/api/runtimes/backend-internal/workers/{wid}/events/stream"
        )))
        .send()
        .await
        .unwrap();
    let runtime_stream = live
        .client
        .get(live.url("/api/runtimes/backend-internal/events/stream"))
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(read_sse(stream, |_| false));
    let runtime_reader = tokio::spawn(read_sse(runtime_stream, |_| false));
    tokio::time::sleep(Duration::from_millis(100)).await;

    live.stop.take().unwrap().send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), &mut live.server).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "server finished cleanly: {result:?}"
    );
    let frames = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frames[0].event.as_deref(), Some("worker_created"));
    let runtime_frames = tokio::time::timeout(Duration::from_secs(5), runtime_reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(runtime_frames[0].event.as_deref(), Some("worker_created"));
    assert!(
        live.client.get(live.url("/healthz")).send().await.is_err(),
        "no longer listening"
    );
}
