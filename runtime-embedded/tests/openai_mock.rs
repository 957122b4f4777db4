//! The OpenAI-compatible backend against a mock server that speaks the real
//! streaming wire format: success, HTTP errors, malformed chunks, dropped
//! connections and timeouts. Each failure ends the turn as `failed` with a
//! typed reason and leaves the Worker idle and usable.

mod mock_openai;

mod common;

use yoi_runtime_api::test_util;

use std::time::Duration;

use mock_openai::{MockServer, Reply};
use secrecy::SecretString;
use yoi_runtime_api::dto::{
    CreateWorkerRequest, EntryRole, EntryStatus, EventQuery, FailureCode, InputRequest,
    TranscriptQuery, WorkerEventKind, WorkerState,
};
use yoi_runtime_api::{ProfileName, Runtime, WorkerId};
use yoi_runtime_embedded::backend::OpenAiConfig;
use yoi_runtime_embedded::{BackendConfig, EmbeddedOptions, EmbeddedRuntime, ProfileConfig};

const SENTINEL_KEY: &str = "sk-SENTINEL-a41f09e7";
const TIMEOUT: Duration = Duration::from_millis(300);

fn runtime(server: &MockServer) -> EmbeddedRuntime {
    runtime_with(server, |_| {})
}

/// The runtime with its profile's backend settings changed by `adjust`.
fn runtime_with(server: &MockServer, adjust: impl FnOnce(&mut OpenAiConfig)) -> EmbeddedRuntime {
    let mut config = OpenAiConfig {
        base_url: server.base_url(),
        model: "test-model".into(),
        api_key: Some(SecretString::from(SENTINEL_KEY)),
        timeout: TIMEOUT,
        ..OpenAiConfig::new("", "")
    };
    adjust(&mut config);
    EmbeddedRuntime::new(EmbeddedOptions {
        profiles: vec![ProfileConfig {
            name: ProfileName::new("remote-llm").unwrap(),
            system_prompt: Some("You are terse.".into()),
            backend: BackendConfig::OpenAi(config),
        }],
        default_profile: ProfileName::new("remote-llm").unwrap(),
        ..EmbeddedOptions::default()
    })
    .unwrap()
}

/// Sends `text`, waits for the turn to end, and returns the last turn's
/// terminal event.
async fn turn(rt: &EmbeddedRuntime, worker: &WorkerId, text: &str) -> WorkerEventKind {
    let accepted = rt
        .send_input(worker, InputRequest::new(text))
        .await
        .unwrap();
    test_util::wait_idle(rt, worker).await;
    let page = rt
        .events(
            worker,
            EventQuery {
                after: Some(accepted.cursor),
                limit: None,
            },
        )
        .await
        .unwrap();
    page.events
        .into_iter()
        .map(|e| e.kind)
        .rfind(|k| {
            matches!(
                k,
                WorkerEventKind::TurnCompleted { .. } | WorkerEventKind::TurnFailed { .. }
            )
        })
        .expect("the turn ended")
}

fn failure_code(kind: &WorkerEventKind) -> FailureCode {
    match kind {
        WorkerEventKind::TurnFailed { reason, .. } => reason.code,
        other => panic!("expected turn_failed, got {other:?}"),
    }
}

async fn setup() -> (MockServer, EmbeddedRuntime, WorkerId) {
    let server = MockServer::start().await;
    let rt = runtime(&server);
    let worker = rt
        .create_worker(CreateWorkerRequest::default())
        .await
        .unwrap();
    (server, rt, worker.summary.worker_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_reply_and_sends_the_conversation() {
    let (server, rt, worker) = setup().await;
    server.push(Reply::Stream(vec!["Hel", "lo", " there"]));
    let end = turn(&rt, &worker, "hi").await;
    assert!(
        matches!(end, WorkerEventKind::TurnCompleted { .. }),
        "{end:?}"
    );
    server.push(Reply::Stream(vec!["Second"]));
    turn(&rt, &worker, "again").await;

    let page = rt
        .transcript(&worker, TranscriptQuery::default())
        .await
        .unwrap();
    let texts: Vec<(EntryRole, &str)> = page
        .entries
        .iter()
        .map(|e| (e.role, e.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (EntryRole::User, "hi"),
            (EntryRole::Assistant, "Hello there"),
            (EntryRole::User, "again"),
            (EntryRole::Assistant, "Second"),
        ]
    );

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1]
            .head
            .starts_with("POST /v1/chat/completions HTTP/1.1")
    );
    assert!(
        seen[1]
            .head
            .lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("authorization: Bearer {SENTINEL_KEY}")))
    );
    let body: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        serde_json::json!([
            { "role": "system", "content": "You are terse." },
            { "role": "user", "content": "hi" },
            { "role": "assistant", "content": "Hello there" },
            { "role": "user", "content": "again" },
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_fail_the_turn_with_a_typed_reason() {
    let (server, rt, worker) = setup().await;
    for (status, code) in [
        (401, FailureCode::Unauthorized),
        (403, FailureCode::Unauthorized),
        (429, FailureCode::RateLimited),
        (500, FailureCode::UpstreamError),
        (503, FailureCode::UpstreamError),
    ] {
        // Some providers echo the key back; it must not travel further.
        server.push(Reply::Status(
            status,
            format!("{{\"error\":\"bad key {SENTINEL_KEY}\"}}"),
        ));
        let end = turn(&rt, &worker, "hello").await;
        assert_eq!(failure_code(&end), code, "HTTP {status}");
        if let WorkerEventKind::TurnFailed { reason, .. } = &end {
            assert!(reason.message.contains(&status.to_string()));
            assert_eq!(reason.http_status, Some(status));
            // The provider's own words are passed on, the key removed.
            assert!(
                reason.message.contains("bad key <redacted>"),
                "{}",
                reason.message
            );
            assert!(!reason.message.contains(SENTINEL_KEY));
        }
    }
    // Each failure left a failed reply and a notice, and the Worker usable.
    server.push(Reply::Stream(vec!["fine"]));
    let end = turn(&rt, &worker, "still there?").await;
    assert!(matches!(end, WorkerEventKind::TurnCompleted { .. }));
    let page = rt
        .transcript(&worker, TranscriptQuery::default())
        .await
        .unwrap();
    let failed = page
        .entries
        .iter()
        .filter(|e| e.status == EntryStatus::Failed)
        .count();
    let notices = page
        .entries
        .iter()
        .filter(|e| e.role == EntryRole::Notice)
        .count();
    assert_eq!((failed, notices), (5, 5));
    assert_eq!(page.entries.last().unwrap().text, "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_messages_are_passed_on_short_and_clean() {
    let (server, rt, worker) = setup().await;
    let reason = |end: WorkerEventKind| match end {
        WorkerEventKind::TurnFailed { reason, .. } => reason.message,
        other => panic!("not a failure: {other:?}"),
    };
    // A bad model name and a bad key read differently.
    server.push(Reply::Status(
        404,
        r#"{"error":{"message":"The model `nope` does not exist","type":"invalid_request_error"}}"#
            .to_owned(),
    ));
    let message = reason(turn(&rt, &worker, "a").await);
    assert_eq!(
        message,
        "the model endpoint answered HTTP 404: The model `nope` does not exist"
    );
    server.push(Reply::Status(
        401,
        r#"{"error":{"message":"Incorrect API key provided"}}"#.to_owned(),
    ));
    let message = reason(turn(&rt, &worker, "b").await);
    assert!(
        message.ends_with("HTTP 401: Incorrect API key provided"),
        "{message}"
    );
    // Plain text, with control characters and far too long.
    server.push(Reply::Status(
        500,
        format!("line one\r\n\u{1b}[31mred{}", "é".repeat(5_000)),
    ));
    let message = reason(turn(&rt, &worker, "c").await);
    assert!(message.contains("line one [31mred"), "{message}");
    assert!(!message.chars().any(char::is_control), "{message:?}");
    assert!(message.len() < 600, "{} bytes", message.len());
    assert!(message.ends_with('…'), "{message}");
    // Nothing to say: just the status.
    server.push(Reply::Status(502, String::new()));
    let message = reason(turn(&rt, &worker, "d").await);
    assert_eq!(message, "the model endpoint answered HTTP 502");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunk_fails_and_keeps_the_partial_reply() {
    let (server, rt, worker) = setup().await;
    server.push(Reply::Malformed(vec!["Par", "tial"]));
    let end = turn(&rt, &worker, "hello").await;
    assert_eq!(failure_code(&end), FailureCode::MalformedResponse);
    let page = rt
        .transcript(&worker, TranscriptQuery::default())
        .await
        .unwrap();
    assert_eq!(page.entries[1].text, "Partial");
    assert_eq!(page.entries[1].status, EntryStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_connection_lost() {
    let (server, rt, worker) = setup().await;
    server.push(Reply::Drop(vec!["Cut"]));
    let end = turn(&rt, &worker, "hello").await;
    assert_eq!(failure_code(&end), FailureCode::ConnectionLost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_time_out() {
    let (server, rt, worker) = setup().await;
    server.push(Reply::StallBeforeHeaders(TIMEOUT * 4));
    assert_eq!(
        failure_code(&turn(&rt, &worker, "one").await),
        FailureCode::Timeout
    );
    server.push(Reply::StallAfter(vec!["slow"], TIMEOUT * 4));
    assert_eq!(
        failure_code(&turn(&rt, &worker, "two").await),
        FailureCode::Timeout
    );
    assert_eq!(
        rt.worker(&worker).await.unwrap().summary.state,
        WorkerState::Idle
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_unavailable() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rt = EmbeddedRuntime::new(EmbeddedOptions {
        profiles: vec![ProfileConfig {
            name: ProfileName::new("gone").unwrap(),
            system_prompt: None,
            backend: BackendConfig::OpenAi(OpenAiConfig {
                base_url: format!("http://127.0.0.1:{port}/v1"),
                model: "m".into(),
                api_key: None,
                timeout: TIMEOUT,
                ..OpenAiConfig::new("", "")
            }),
        }],
        default_profile: ProfileName::new("gone").unwrap(),
        ..EmbeddedOptions::default()
    })
    .unwrap();
    let worker = test_util::create(&rt, None).await;
    let code = failure_code(&turn(&rt, &worker, "anyone?").await);
    assert!(
        matches!(code, FailureCode::Unavailable | FailureCode::ConnectionLost),
        "{code:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_stream_drops_it() {
    let (server, rt, worker) = setup().await;
    server.push(Reply::StallAfter(vec!["thinking"], Duration::from_secs(5)));
    rt.send_input(&worker, InputRequest::new("long one"))
        .await
        .unwrap();
    // Wait until the first delta arrived.
    for _ in 0..200 {
        let page = rt
            .transcript(&worker, TranscriptQuery::default())
            .await
            .unwrap();
        if page.entries.get(1).is_some_and(|e| !e.text.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let detail = rt.cancel(&worker).await.unwrap();
    assert_eq!(detail.summary.state, WorkerState::Idle);
    let page = rt
        .transcript(&worker, TranscriptQuery::default())
        .await
        .unwrap();
    assert_eq!(page.entries[1].text, "thinking");
    assert_eq!(page.entries[1].status, EntryStatus::Cancelled);
}

async fn setup_with(
    adjust: impl FnOnce(&mut OpenAiConfig),
) -> (MockServer, EmbeddedRuntime, WorkerId) {
    let server = MockServer::start().await;
    let rt = runtime_with(&server, adjust);
    let worker = rt
        .create_worker(CreateWorkerRequest::default())
        .await
        .unwrap();
    (server, rt, worker.summary.worker_id)
}

fn failure(kind: &WorkerEventKind) -> (FailureCode, String) {
    match kind {
        WorkerEventKind::TurnFailed { reason, .. } => (reason.code, reason.message.clone()),
        other => panic!("expected turn_failed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_past_max_reply_bytes_fails_the_turn_and_keeps_only_the_bound() {
    let (server, rt, worker) = setup_with(|c| c.max_reply_bytes = 1000).await;
    // 100 bytes a delta: few events, so the turn's end is on the first page.
    const HUNDRED: &str = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";
    server.push(Reply::Stream(vec![HUNDRED; 20]));
    let (code, message) = failure(&turn(&rt, &worker, "go on and on").await);
    assert_eq!(code, FailureCode::ReplyTooLarge);
    assert!(
        message.contains("max_reply_bytes (1000 bytes)"),
        "{message}"
    );
    let page = rt
        .transcript(&worker, TranscriptQuery::default())
        .await
        .unwrap();
    let reply = page
        .entries
        .iter()
        .find(|e| e.role == EntryRole::Assistant)
        .unwrap();
    assert!(reply.text.len() <= 1000, "{} bytes kept", reply.text.len());
    assert_eq!(reply.status, EntryStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_is_sent_only_when_configured() {
    let (server, rt, worker) = setup_with(|c| c.max_tokens = Some(77)).await;
    server.push(Reply::Stream(vec!["ok"]));
    turn(&rt, &worker, "hi").await;
    let body: serde_json::Value =
        serde_json::from_str(&server.seen.lock().unwrap()[0].body).unwrap();
    assert_eq!(body["max_tokens"], 77);
    let (server, rt, worker) = setup().await;
    server.push(Reply::Stream(vec!["ok"]));
    turn(&rt, &worker, "hi").await;
    let body: serde_json::Value =
        serde_json::from_str(&server.seen.lock().unwrap()[0].body).unwrap();
    assert!(body.get("max_tokens").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_and_overlong_lines_are_malformed_not_stalls() {
    // The chunk timeout is long, so only a clear failure ends these quickly.
    let (server, rt, worker) = setup_with(|c| c.timeout = Duration::from_secs(30)).await;
    server.push(Reply::Raw(
        b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\xfe\"}}]}\n\n".to_vec(),
    ));
    let (code, message) = failure(&turn(&rt, &worker, "a").await);
    assert_eq!(code, FailureCode::MalformedResponse);
    assert!(message.contains("not UTF-8"), "{message}");

    let mut long = b"data: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 3 << 20));
    server.push(Reply::Raw(long));
    let (code, message) = failure(&turn(&rt, &worker, "b").await);
    assert_eq!(code, FailureCode::MalformedResponse);
    assert!(message.contains("longer than"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_kept_alive_by_empty_chunks_ends_at_max_turn() {
    let (server, rt, worker) = setup_with(|c| c.max_turn = Duration::from_millis(800)).await;
    // Every chunk arrives well within the chunk timeout (300 ms).
    server.push(Reply::EmptyChunksEvery(Duration::from_millis(50)));
    let (code, message) = failure(&turn(&rt, &worker, "hi").await);
    assert_eq!(code, FailureCode::Timeout);
    assert!(message.contains("max_turn_ms (800 ms)"), "{message}");
}
