//! One request per turn: `POST .../input?wait_ms=N` answers with the turn's
//! outcome, and `Accept: text/event-stream` streams the turn.

mod common;

use std::path::Path;

use common::live::{Live, read_sse};
use common::{EMBEDDED, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yoi::config::{FileConfig, Overrides};
use yoi_runtime_api::{RuntimeId, WorkerId, test_util};

const W: &str = "/api/runtimes/backend-internal/workers";

async fn create(app: &TestApp, profile: Option<&str>) -> String {
    app.create_worker(profile).await
}

fn input(
    app: &TestApp,
    worker: &str,
    query: &str,
    body: Value,
) -> impl Future<Output = common::Reply> + use<> {
    let app = TestApp {
        state: app.state.clone(),
    };
    let uri = format!("{W}/{worker}/input{query}");
    async move { app.post(&uri, body).await }
}

async fn wait_running(app: &TestApp, worker: &str) {
    wait_for(app, worker, "running", |s| {
        s.state == yoi_runtime_api::dto::WorkerState::Running
    })
    .await;
}

async fn wait_for(
    app: &TestApp,
    worker: &str,
    what: &str,
    done: impl Fn(&yoi_runtime_api::dto::WorkerSummary) -> bool,
) {
    let entry = app
        .state
        .registry()
        .get(&RuntimeId::new(EMBEDDED).unwrap())
        .unwrap();
    let worker: WorkerId = worker.parse().unwrap();
    test_util::wait_for(entry.runtime(), &worker, what, done).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_answers_the_completed_turn() {
    let app = TestApp::new().await;
    let worker = create(&app, None).await;
    let reply = input(&app, &worker, "?wait_ms=10000", json!({ "text": "hi" })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = &reply.json;
    assert_eq!(body["outcome"], "completed");
    assert!(body["input_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(body["reply"]["text"], "echo: hi");
    assert_eq!(body["reply"]["status"], "complete");
    assert_eq!(
        body["reply"]["index"],
        body["transcript_index"].as_u64().unwrap() + 1
    );
    assert!(body.get("failure").is_none());
    // next_cursor is the turn's last event: reading after it goes on from
    // there, without the turn's events again.
    let next = body["next_cursor"].as_str().unwrap();
    let events = app.get(&format!("{W}/{worker}/events?after={next}")).await;
    assert!(
        events.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "turn_completed" && e["kind"] != "text_delta"),
        "{}",
        events.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_times_out_with_the_plain_acceptance() {
    let app = TestApp::new().await;
    let worker = create(&app, Some("slow")).await;
    let reply = input(&app, &worker, "?wait_ms=50", json!({ "text": "slow one" })).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let keys: Vec<&String> = reply.json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["cursor", "input_id", "state", "transcript_index"]);
    // Without wait_ms nothing changed either.
    app.wait_idle(&worker).await;
    let plain = input(&app, &worker, "", json!({ "text": "again" })).await;
    assert_eq!(plain.status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_answers_a_concurrent_cancel_and_an_interrupt() {
    let app = TestApp::new().await;
    let worker = create(&app, Some("slow")).await;
    let waiting = tokio::spawn(input(
        &app,
        &worker,
        "?wait_ms=20000",
        json!({ "text": "long" }),
    ));
    wait_running(&app, &worker).await;
    app.post(&format!("{W}/{worker}/cancel"), json!({})).await;
    let reply = waiting.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["outcome"], "cancelled");
    assert_eq!(reply.json["reply"]["status"], "cancelled");

    let waiting = tokio::spawn(input(
        &app,
        &worker,
        "?wait_ms=20000",
        json!({ "text": "first" }),
    ));
    wait_running(&app, &worker).await;
    let interrupt = input(
        &app,
        &worker,
        "?wait_ms=20000",
        json!({ "text": "second", "on_busy": "interrupt" }),
    )
    .await;
    let first = waiting.await.unwrap();
    assert_eq!(first.json["outcome"], "cancelled", "{}", first.text);
    assert_eq!(interrupt.json["outcome"], "completed", "{}", interrupt.text);
    assert_eq!(interrupt.json["reply"]["text"], "echo: second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_input_waits_for_its_own_turn() {
    let app = TestApp::new().await;
    let worker = create(&app, Some("slow")).await;
    let first = input(&app, &worker, "", json!({ "text": "first" })).await;
    assert_eq!(first.status, 202);
    let second = input(
        &app,
        &worker,
        "?wait_ms=20000",
        json!({ "text": "second", "on_busy": "queue" }),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json["outcome"], "completed");
    assert_eq!(second.json["reply"]["text"], "echo: second");

    // A queued input dropped by cancel ends too, without a reply.
    let _running = input(&app, &worker, "", json!({ "text": "third" })).await;
    let dropped = tokio::spawn(input(
        &app,
        &worker,
        "?wait_ms=20000",
        json!({ "text": "fourth", "on_busy": "queue" }),
    ));
    wait_for(&app, &worker, "holding a queued input", |s| {
        s.pending_inputs == 1
    })
    .await;
    app.post(&format!("{W}/{worker}/cancel"), json!({})).await;
    let dropped = dropped.await.unwrap();
    assert_eq!(dropped.status, 200, "{}", dropped.text);
    assert_eq!(dropped.json["outcome"], "cancelled");
    assert!(dropped.json.get("reply").is_none(), "{}", dropped.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_turn_ended_answers_the_same_outcome() {
    let app = TestApp::new().await;
    let worker = create(&app, None).await;
    let body = json!({ "text": "once", "client_input_id": "retry-1" });
    let first = input(&app, &worker, "?wait_ms=10000", body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = input(&app, &worker, "?wait_ms=10000", body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json, first.json);
    let transcript = app.get(&format!("{W}/{worker}/transcript")).await;
    assert_eq!(transcript.json["total"], 2, "recorded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_bounds_are_unchanged() {
    let app = TestApp::new().await;
    let worker = create(&app, Some("slow")).await;
    input(&app, &worker, "?wait_ms=30001", json!({ "text": "x" }))
        .await
        .assert_problem(400, "limit_too_large");
    input(&app, &worker, "?wait_ms=abc", json!({ "text": "x" }))
        .await
        .assert_problem(400, "invalid_request");
    input(
        &app,
        &worker,
        "?wait_ms=10&colour=red",
        json!({ "text": "x" }),
    )
    .await
    .assert_problem(400, "invalid_request");
    let running = input(&app, &worker, "", json!({ "text": "x" })).await;
    assert_eq!(running.status, 202);
    input(&app, &worker, "?wait_ms=1000", json!({ "text": "busy" }))
        .await
        .assert_problem(409, "worker_busy");
    input(&app, "nobody", "?wait_ms=1000", json!({ "text": "x" }))
        .await
        .assert_problem(404, "unknown_worker");
}

/// A model endpoint on 127.0.0.1 that answers every request with 500.
async fn failing_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let body = r#"{"error":{"message":"the model is on fire"}}"#;
                let response = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_answers_a_failed_turn_with_its_reason() {
    let base_url = failing_provider().await;
    let file = FileConfig::parse(
        Path::new("test.toml"),
        &format!(
            "[[profiles]]\nname = \"broken\"\nbackend = \"openai\"\nbase_url = \"{base_url}\"\nmodel = \"m\"\ntimeout_ms = 5000\n"
        ),
    )
    .unwrap();
    let config = file.resolve(Overrides::default(), |_| None).unwrap();
    let app = TestApp {
        state: yoi::build_state(config).await.unwrap(),
    };
    let worker = create(&app, Some("broken")).await;
    let reply = input(&app, &worker, "?wait_ms=10000", json!({ "text": "hi" })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["outcome"], "failed");
    assert_eq!(reply.json["failure"]["code"], "upstream_error");
    assert_eq!(reply.json["reply"]["status"], "failed");
}

async fn stream_input(live: &Live, worker: &str, text: &str) -> reqwest::Response {
    let response = live
        .client
        .post(live.url(&format!("{W}/{worker}/input")))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(json!({ "text": text }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_sends_the_turn_once_in_order_and_ends() {
    let app = TestApp::new().await;
    let live = Live::serve(app.state.clone()).await;
    let worker = create(&app, None).await;
    let frames = read_sse(stream_input(&live, &worker, "stream me").await, |_| false).await;
    let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_deref().unwrap()).collect();
    assert_eq!(kinds[0], "accepted");
    assert_eq!(kinds[1], "turn_started");
    assert_eq!(
        *kinds.last().unwrap(),
        "turn_completed",
        "ends after the turn"
    );
    let input_id = frames[0].data["input_id"].as_str().unwrap();
    assert_eq!(frames[0].id.as_deref(), frames[0].data["cursor"].as_str());
    let text: String = frames
        .iter()
        .filter(|f| f.event.as_deref() == Some("text_delta"))
        .map(|f| f.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "echo: stream me");
    // Exactly the turn's events of the ordinary log, in order, once.
    let log = app
        .get(&format!(
            "{W}/{worker}/events?after={}",
            frames[0].id.as_deref().unwrap()
        ))
        .await;
    let expected: Vec<Value> = log.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["input_id"] == input_id)
        .cloned()
        .collect();
    let streamed: Vec<Value> = frames[1..].iter().map(|f| f.data.clone()).collect();
    assert_eq!(streamed, expected);
    for frame in &frames[1..] {
        assert_eq!(
            frame.id.as_deref(),
            frame.data["cursor"].as_str(),
            "id: is the cursor"
        );
    }

    // A client that dropped resumes with the ordinary stream.
    let resume_at = frames[2].id.clone().unwrap();
    let response = live
        .client
        .get(live.url(&format!("{W}/{worker}/events/stream")))
        .header("Last-Event-ID", &resume_at)
        .send()
        .await
        .unwrap();
    let resumed = read_sse(response, |f| f.event.as_deref() == Some("turn_completed")).await;
    let resumed_turn: Vec<Value> = resumed
        .iter()
        .filter(|f| f.data["input_id"] == input_id)
        .map(|f| f.data.clone())
        .collect();
    assert_eq!(resumed_turn, streamed[2..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_does_not_cancel_the_turn() {
    let app = TestApp::new().await;
    let live = Live::serve(app.state.clone()).await;
    let worker = create(&app, Some("slow")).await;
    let response = stream_input(&live, &worker, "keep going").await;
    let first = read_sse(response, |_| true).await;
    assert_eq!(first[0].event.as_deref(), Some("accepted"));
    // The response is dropped here, mid-turn.
    app.wait_idle(&worker).await;
    let transcript = app.get(&format!("{W}/{worker}/transcript")).await;
    assert_eq!(transcript.json["entries"][1]["text"], "echo: keep going");
    assert_eq!(transcript.json["entries"][1]["status"], "complete");
    // Refusals before acceptance are problem documents, not streams.
    let busy_worker = create(&app, Some("slow")).await;
    input(&app, &busy_worker, "", json!({ "text": "x" })).await;
    let refused = live
        .client
        .post(live.url(&format!("{W}/{busy_worker}/input")))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(json!({ "text": "y" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
}
