//! Connection limits on a real listener: header timeout, idle keep-alive,
//! header bytes, the connection cap with its `/healthz` reserve, and a
//! shutdown that does not wait for clients that never finish.

mod common;

use std::time::Duration;

use common::process::{Server, create_worker, slow_profile_config, worker_detail};
use common::{Listening, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yoi_runtime_api::test_util::temp_dir;
use yoi_workspace_server::ConnectionLimits;

/// Long enough that only a missing limit makes a test wait for it.
const GENEROUS: Duration = Duration::from_secs(20);

async fn serve(limits: ConnectionLimits) -> Listening {
    Listening::start(TestApp::new().await.state.with_connection_limits(limits)).await
}

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(GENEROUS, stream.read_to_end(&mut received))
        .await
        .expect("the server closed the connection")
        .ok();
    String::from_utf8_lossy(&received).into_owned()
}

/// One request on a fresh connection, `Connection: close`; the answer.
async fn request_on(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_to_close(stream).await
}

#[tokio::test]
async fn a_client_dripping_headers_is_cut_off_after_the_header_timeout() {
    let limits = ConnectionLimits {
        header_timeout: Duration::from_millis(300),
        ..ConnectionLimits::default()
    };
    let server = serve(limits).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // Never finished: the server closes the connection on its own.
    read_to_close(&mut stream).await;

    // An idle keep-alive connection is closed too, after a first request.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let _ = server.stop.send(());
}

/// Reads one response (headers and a `Content-Length` body) from a
/// connection that stays open; its status line.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed the connection mid-response");
            received.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&received);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().unwrap())
                    })
                    .expect("a content-length");
                if received.len() >= end + 4 + length {
                    return text.lines().next().unwrap().to_owned();
                }
            }
        }
    };
    tokio::time::timeout(GENEROUS, read)
        .await
        .expect("a response")
}

#[tokio::test]
async fn each_request_on_a_keep_alive_connection_restarts_the_header_timeout() {
    let timeout = Duration::from_millis(600);
    let limits = ConnectionLimits {
        header_timeout: timeout,
        ..ConnectionLimits::default()
    };
    let server = serve(limits).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Four requests a third of the timeout apart: together they outlast the
    // first deadline, but none waits for its head longer than the timeout.
    for _ in 0..4 {
        tokio::time::sleep(timeout / 3).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let status = read_response(&mut stream).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    // Then idle: closed after one timeout.
    let idle = tokio::time::Instant::now();
    read_to_close(&mut stream).await;
    assert!(idle.elapsed() >= timeout / 2, "{:?}", idle.elapsed());
    let _ = server.stop.send(());
}

#[tokio::test]
async fn headers_past_the_byte_cap_are_refused_without_buffering_them() {
    let limits = ConnectionLimits {
        max_header_bytes: 16 * 1024,
        ..ConnectionLimits::default()
    };
    let server = serve(limits).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..2_000 {
        request.push_str(&format!("x-filler-{i}: {}\r\n", "a".repeat(40)));
    }
    request.push_str("\r\n");
    // The server may close before everything is written.
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_to_close(&mut stream).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // Normal requests still work.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        request_on(&mut stream, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let _ = server.stop.send(());
}

#[tokio::test]
async fn at_the_connection_cap_healthz_still_answers_from_the_reserve() {
    let limits = ConnectionLimits {
        max_connections: 2,
        reserve_connections: 2,
        header_timeout: GENEROUS,
        ..ConnectionLimits::default()
    };
    let server = serve(limits).await;
    // Two idle connections take the whole cap. A request on each proves
    // they were admitted before the next connections arrive.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 12];
        stream.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"HTTP/1.1 200");
        held.push(stream);
    }
    // A reserve connection answers /healthz, and nothing else.
    let mut health = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        request_on(&mut health, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut api = TcpStream::connect(server.addr).await.unwrap();
    let answer = request_on(&mut api, "/api/runtimes").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("capacity_exceeded"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );

    // With the reserve held too, a further connection is closed at once.
    let mut reserve_held = Vec::new();
    for _ in 0..2 {
        let stream = TcpStream::connect(server.addr).await.unwrap();
        reserve_held.push(stream);
    }
    // Admission happens in accept order; a request on the last held one
    // would be served, so only the one after it is refused.
    let mut refused = TcpStream::connect(server.addr).await.unwrap();
    let _ = refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    assert_eq!(read_to_close(&mut refused).await, "");

    // Freeing a connection makes room again.
    drop(held);
    drop(reserve_held);
    let mut attempts = 0;
    let mut stream = loop {
        attempts += 1;
        assert!(attempts < 500, "no room after connections were freed");
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let answer = request_on(&mut stream, "/api/runtimes").await;
        if answer.starts_with("HTTP/1.1 200") {
            break stream;
        }
        // The server notices closed connections as it reads them.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = stream.shutdown().await;
    let _ = server.stop.send(());
}

#[tokio::test]
async fn shutdown_closes_what_is_left_after_the_grace_period() {
    let limits = ConnectionLimits {
        shutdown_grace: Duration::from_millis(300),
        header_timeout: GENEROUS,
        ..ConnectionLimits::default()
    };
    let server = serve(limits).await;
    // A client that never finishes its headers, and one that never reads
    // what it asked for.
    let mut dripping = TcpStream::connect(server.addr).await.unwrap();
    dripping
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut sse = TcpStream::connect(server.addr).await.unwrap();
    sse.write_all(
        b"GET /api/runtimes/backend-internal/events/stream HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buffer = [0u8; 12];
    sse.read_exact(&mut buffer).await.unwrap();
    assert_eq!(&buffer, b"HTTP/1.1 200");

    let _ = server.stop.send(());
    tokio::time::timeout(GENEROUS, server.server)
        .await
        .expect("serve returned although clients hold connections")
        .unwrap()
        .unwrap();
    read_to_close(&mut dripping).await;
    read_to_close(&mut sse).await;
}

/// A config file in `dir` with the slow echo profile and `limits` (one
/// line of `[limits]`), headers allowed a minute.
fn config_with_limits(dir: &std::path::Path, limits: &str) -> std::path::PathBuf {
    let config = dir.join("limits.toml");
    let profile = std::fs::read_to_string(slow_profile_config(dir, 10)).unwrap();
    std::fs::write(
        &config,
        format!("{profile}[limits]\n{limits}\nheader_timeout_ms = 60000\n"),
    )
    .unwrap();
    config
}

/// A connection whose request is in flight: its handler waits for the
/// 99 body bytes that never come.
async fn partial_request(server: &Server) -> TcpStream {
    let addr = server.base.trim_start_matches("http://");
    let mut held = TcpStream::connect(addr).await.unwrap();
    held.write_all(
        b"POST /api/runtimes/backend-internal/workers HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_while_a_client_holds_a_partial_request() {
    let dir = temp_dir("limits-sigterm");
    let config = config_with_limits(&dir, "shutdown_grace_ms = 300");
    let server = Server::start(&["--memory", "--config", config.to_str().unwrap()]).await;
    let _held = partial_request(&server).await;
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_stops_at_once_and_loses_nothing_answered() {
    let dir = temp_dir("limits-second-signal");
    let config = config_with_limits(&dir, "shutdown_grace_ms = 60000");
    let data = dir.join("data");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let server = Server::start(&args).await;
    let client = reqwest::Client::new();
    let worker = create_worker(&client, &server.base, serde_json::json!({})).await;
    // A client holding a partial request keeps the graceful shutdown
    // waiting for its whole (one minute) grace period.
    let _held = partial_request(&server).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    server.signal_terminate();
    // The listener closes when the graceful shutdown begins.
    let closed = async {
        while TcpStream::connect(&addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the first SIGTERM starts the shutdown");
    server.signal_terminate();
    let status = tokio::task::spawn_blocking(move || server.wait_for_exit(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    // What was answered is there after a restart.
    let server = Server::start(&args).await;
    let detail = worker_detail(&client, &server.base, &worker).await;
    assert_eq!(detail["worker_id"], worker.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_stops_reading_is_cut_off_after_the_write_timeout() {
    let limits = ConnectionLimits {
        write_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    };
    // A Worker log that keeps everything this test streams, so the
    // follower never falls out of it (which would end its stream): only
    // the write deadline can end this connection.
    let runtime =
        yoi_runtime_embedded::EmbeddedRuntime::new(yoi_runtime_embedded::EmbeddedOptions {
            limits: yoi_runtime_embedded::Limits {
                max_event_log_bytes: 256 << 20,
                max_events_per_worker: 1_000_000,
                max_retained_bytes: 1 << 30,
                ..yoi_runtime_embedded::Limits::default()
            },
            ..yoi_runtime_embedded::EmbeddedOptions::default()
        })
        .unwrap();
    let mut registry = yoi_workspace_server::RuntimeRegistry::new();
    registry
        .register(std::sync::Arc::new(runtime))
        .await
        .unwrap();
    let state = TestApp::from_registry(registry, None, 1 << 20)
        .state
        .with_connection_limits(limits);
    let server = Listening::start(state).await;
    let base = format!(
        "http://{}/api/runtimes/backend-internal/workers",
        server.addr
    );
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(&base)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let worker = created["worker_id"].as_str().unwrap().to_owned();

    // A follower with a tiny receive window that never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut follower = socket.connect(server.addr).await.unwrap();
    follower
        .write_all(
            format!(
                "GET /api/runtimes/backend-internal/workers/{worker}/events/stream HTTP/1.1\r\n\
                 Host: localhost\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();

    // Replies stream for two seconds while the follower reads nothing:
    // far more than the socket buffers on both sides hold (megabytes), so
    // a write stays pending, which is all a server can see of a client
    // that does not read.
    let text = "x".repeat(60_000);
    let mut produced = 0usize;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let reply = client
            .post(format!("{base}/{worker}/input?wait_ms=10000"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "text": text }).to_string())
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success(), "{}", reply.status());
        produced += 2 * text.len();
    }
    // Reading to the end finishes only because the server closed the
    // connection: the stream does not end by itself while the Worker
    // lives.
    let mut received = Vec::new();
    tokio::time::timeout(GENEROUS, follower.read_to_end(&mut received))
        .await
        .expect("the server cut off the follower that did not read")
        .ok();
    assert!(
        received.len() < produced,
        "received {} of at least {produced} bytes",
        received.len()
    );
    let head = String::from_utf8_lossy(&received[..12.min(received.len())]).into_owned();
    assert_eq!(head, "HTTP/1.1 200");
}
