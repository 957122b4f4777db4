//! A peer that misbehaves: another contract version, a 500 that is not a
//! problem document, a 100 MB answer, an answer cut mid-JSON, a redirect
//! (never followed), a stall, or refusals that are about this client (its
//! token, its host name, a runtime id the peer does not serve).
//! Each is `runtime_unavailable`, quickly and with bounded memory, and no
//! message names the peer's address.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yoi_runtime_api::{ErrorCode, Runtime, RuntimeError, RuntimeId, WorkerId};
use yoi_runtime_remote::RemoteRuntime;

#[derive(Clone, Copy)]
enum Fault {
    NoVersion,
    Plain500,
    Huge,
    CutShort,
    Redirect,
    Stall,
    /// Every request after the handshake answered with this status and
    /// problem document.
    Problem(u16, &'static str),
}

const VIEW: &str = r#"{"runtime_id":"mock","display_name":"Mock","implementation":"embedded","status":{"state":"ready","workers":{"idle":0,"running":0,"stopping":0,"stopped":0,"failed":0}},"capabilities":{"list_workers":true,"create_worker":true,"send_input":true,"busy_queue":true,"busy_interrupt":true,"stop":true,"cancel":true,"transcript":true,"events_poll":true,"events_subscribe":true,"tools":false,"persistent_store":false,"max_input_bytes":null,"max_transcript_page":null,"max_event_page":null,"max_worker_page":null}}"#;

/// A peer on 127.0.0.1 that answers the handshake properly (except for
/// `NoVersion`) and every other request with `fault`.
async fn peer(fault: Fault) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..n]).to_string();
                let handshake = request.starts_with("GET /api/runtimes/mock HTTP");
                let version = if matches!(fault, Fault::NoVersion) {
                    ""
                } else {
                    "yoi-contract-version: 1\r\n"
                };
                if handshake {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{version}content-length: {}\r\nconnection: close\r\n\r\n{VIEW}",
                        VIEW.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    return;
                }
                match fault {
                    Fault::NoVersion => {}
                    Fault::Plain500 => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\nconnection: close\r\n\r\noops!")
                            .await;
                    }
                    Fault::Huge => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            100 << 20
                        );
                        if socket.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = vec![b' '; 1 << 20];
                        for _ in 0..100 {
                            if socket.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                    Fault::CutShort => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"summary\":{\"runt")
                            .await;
                    }
                    Fault::Redirect => {
                        // Followed, it would reach a closed port instead.
                        let _ = socket
                            .write_all(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                    }
                    Fault::Stall => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Fault::Problem(status, body) => {
                        let answer = format!(
                            "HTTP/1.1 {status} Refused\r\ncontent-type: application/problem+json\r\n{version}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                }
            });
        }
    });
    base
}

fn assert_unavailable(err: &RuntimeError, why: &str, base: &str) {
    assert_eq!(err.code(), ErrorCode::RuntimeUnavailable, "{err}");
    let text = err.to_string();
    assert!(text.contains(why), "{text}");
    assert!(!text.contains(base.trim_start_matches("http://")), "{text}");
}

fn mock() -> RuntimeId {
    RuntimeId::new("mock").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_contract_version_is_refused() {
    let base = peer(Fault::NoVersion).await;
    let err = RemoteRuntime::connect(&base, mock(), None)
        .await
        .unwrap_err();
    assert_unavailable(&err, "contract version none", &base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_are_runtime_unavailable_with_bounded_memory() {
    let worker = WorkerId::new("w").unwrap();
    for (fault, why) in [
        (Fault::Plain500, "answered HTTP 500"),
        (Fault::Huge, "more than 16 MiB"),
        (Fault::CutShort, "ended mid-answer"),
        (Fault::Redirect, "answered HTTP 307"),
    ] {
        let base = peer(fault).await;
        let remote = RemoteRuntime::connect(&base, mock(), None).await.unwrap();
        let err = remote.worker(&worker).await.unwrap_err();
        assert_unavailable(&err, why, &base);
    }
}

/// Passed on, the peer's `401` would tell a browser that its own sign-in
/// failed, and its `404 unknown_runtime` that a listed Runtime does not
/// exist. Refusals of the caller's request itself pass through as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_this_client_are_runtime_unavailable_and_the_callers_pass_through() {
    let worker = WorkerId::new("w").unwrap();
    for (fault, why) in [
        (
            Fault::Problem(
                401,
                r#"{"type":"urn:yoi:problem:unauthorized","title":"Unauthorized","status":401,"detail":"a valid bearer token or session is required","code":"unauthorized"}"#,
            ),
            "refuses our token",
        ),
        (
            Fault::Problem(
                404,
                r#"{"type":"urn:yoi:problem:unknown_runtime","title":"Not Found","status":404,"detail":"unknown runtime 'mock'","code":"unknown_runtime","runtime_id":"mock"}"#,
            ),
            "must be the host's --id",
        ),
        (
            Fault::Problem(
                403,
                r#"{"type":"urn:yoi:problem:host_not_allowed","title":"Forbidden","status":403,"detail":"no","code":"host_not_allowed"}"#,
            ),
            "allowed_hosts",
        ),
        (
            Fault::Problem(
                404,
                r#"{"type":"urn:yoi:problem:route_not_found","title":"Not Found","status":404,"detail":"no route matches this path","code":"route_not_found"}"#,
            ),
            "does not answer like a runtime host",
        ),
    ] {
        let base = peer(fault).await;
        let remote = RemoteRuntime::connect(&base, mock(), None).await.unwrap();
        assert_unavailable(&remote.worker(&worker).await.unwrap_err(), why, &base);
        let Err(err) = remote.subscribe(&worker, None).await else {
            panic!("{why}: a refused subscription");
        };
        assert_unavailable(&err, why, &base);
    }
    let base = peer(Fault::Problem(
        404,
        r#"{"type":"urn:yoi:problem:unknown_worker","title":"Not Found","status":404,"detail":"runtime 'mock' has no worker 'w'","code":"unknown_worker","runtime_id":"mock","worker_id":"w"}"#,
    ))
    .await;
    let remote = RemoteRuntime::connect(&base, mock(), None).await.unwrap();
    let err = remote.worker(&worker).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownWorker, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_peer_answers_within_the_deadline() {
    let base = peer(Fault::Stall).await;
    let remote = RemoteRuntime::connect(&base, mock(), None)
        .await
        .unwrap()
        .with_deadline(Duration::from_millis(300));
    let started = Instant::now();
    let err = remote
        .worker(&WorkerId::new("w").unwrap())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_unavailable(&err, "did not answer in time", &base);
}

/// A peer that drops the first attempt of every request after the
/// handshake, answers the second, and records each `POST` and `PATCH`
/// body it gets.
async fn flaky_peer(bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (attempts, bodies) = (attempts.clone(), bodies.clone());
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..n]).to_string();
                let (status, body) = if request.starts_with("GET /api/runtimes/mock HTTP") {
                    ("200 OK", VIEW.to_owned())
                } else {
                    if request.starts_with("POST") || request.starts_with("PATCH") {
                        let body = request.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
                        bodies.lock().unwrap().push(body);
                    }
                    // Odd attempts are dropped without a word.
                    if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 2 == 0 {
                        return;
                    }
                    if request.starts_with("POST") {
                        ("202 Accepted", r#"{"input_id":"in-1","transcript_index":0,"state":"running","cursor":"1.aaaaaa"}"#.to_owned())
                    } else {
                        ("404 Not Found", r#"{"type":"urn:yoi:problem:unknown_worker","title":"Not Found","status":404,"detail":"runtime 'mock' has no worker 'w'","code":"unknown_worker","runtime_id":"mock","worker_id":"w"}"#.to_owned())
                    }
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nyoi-contract-version: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_inputs_are_retried_once_recorded_and_renames_are_not() {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = flaky_peer(bodies.clone()).await;
    let remote = RemoteRuntime::connect(&base, mock(), None).await.unwrap();
    let worker = WorkerId::new("w").unwrap();
    // The first attempt is dropped; the retry gets the peer's real answer.
    let err = remote.worker(&worker).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownWorker, "{err}");
    let accepted = remote
        .send_input(&worker, yoi_runtime_api::dto::InputRequest::new("hi"))
        .await
        .unwrap();
    assert_eq!(accepted.input_id.as_str(), "in-1");
    // Both attempts carried the same generated client_input_id.
    let bodies_handle = bodies.clone();
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0], bodies[1]);
    assert!(
        bodies[0].contains("\"client_input_id\":\"rc-"),
        "{}",
        bodies[0]
    );
    // A rename is not repeated: a repeat could undo a rename another
    // client made in between. Its dropped attempt is the answer.
    let rename = yoi_runtime_api::dto::UpdateWorkerRequest {
        display_name: Some("renamed".to_owned()),
        metadata: None,
    };
    let err = remote.update_worker(&worker, rename).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RuntimeUnavailable, "{err}");
    let renames = remote_bodies(&bodies_handle, "renamed");
    assert_eq!(renames, 1, "the rename was sent {renames} times");
}

/// How many recorded bodies contain `needle`.
fn remote_bodies(bodies: &std::sync::Mutex<Vec<String>>, needle: &str) -> usize {
    bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.contains(needle))
        .count()
}
