//! One real listener on port 0: a chat over HTTP, SSE replay and resume with
//! `Last-Event-ID`, and graceful shutdown closing open streams.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::TestApp;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct Live {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    client: reqwest::Client,
}

impl Live {
    async fn start() -> Self {
        let app = TestApp::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(yoi_workspace_server::serve(
            listener,
            app.state,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            server,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }
}

/// One parsed Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: Value,
}

/// Reads SSE frames from a response until `stop` says so or it ends.
async fn read_sse(response: reqwest::Response, mut stop: impl FnMut(&Sse) -> bool) -> Vec<Sse> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut frames = Vec::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(10), body.next()).await {
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut sse = Sse {
                id: None,
                event: None,
                data: Value::Null,
            };
            let mut is_comment = true;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    sse.id = Some(v.trim().to_owned());
                    is_comment = false;
                } else if let Some(v) = line.strip_prefix("event:") {
                    sse.event = Some(v.trim().to_owned());
                    is_comment = false;
                } else if let Some(v) = line.strip_prefix("data:") {
                    sse.data = serde_json::from_str(v.trim()).unwrap();
                    is_comment = false;
                }
            }
            if is_comment {
                continue;
            }
            let done = stop(&sse);
            frames.push(sse);
            if done {
                return frames;
            }
        }
    }
    frames
}

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
    let response = live
        .client
        .get(live.url(&stream_path))
        .header("Last-Event-ID", &resume_at)
        .send()
        .await
        .unwrap();
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
    assert_eq!(
        rest.last().unwrap().event.as_deref(),
        Some("worker_stopped")
    );
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
