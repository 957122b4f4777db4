//! The two routes the server answers without axum's router (a Worker's
//! detail and a transcript page, `routes/direct.rs`) answer and log as the
//! router does. A request whose id has a percent-encoded character goes to
//! the router, which decodes it to the same id, so each request is sent
//! both ways and the two compared: status, headers in order, body, and the
//! request log line; and through `serve`, the bytes on the wire.

mod common;

use std::sync::Mutex;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{EMBEDDED, TestApp};
use yoi_workspace_server::state::DEFAULT_MAX_BODY_BYTES;
use yoi_workspace_server::{AnsweredRequest, RequestLog};

const TOKEN: &str = "direct-routes-token";

/// The request log, as method, route and status.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl RequestLog for Lines {
    fn answered(&self, request: &AnsweredRequest<'_>) {
        self.0.lock().unwrap().push(format!(
            "{} {} {}",
            request.method, request.route, request.status
        ));
    }
}

/// `path` with the first character of its Runtime's id percent-encoded.
fn through_the_router(path: &str) -> String {
    let prefix = "/api/runtimes/";
    let rest = path.strip_prefix(prefix).unwrap();
    let first = rest.as_bytes()[0];
    format!("{prefix}%{first:02X}{}", &rest[1..])
}

/// A JSON POST with the token.
async fn post(app: &TestApp, path: &str, body: &'static str) -> common::Reply {
    app.request(
        Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// Creates a Worker on the embedded Runtime; its id.
async fn create_worker(app: &TestApp) -> String {
    let created = post(app, &format!("/api/runtimes/{EMBEDDED}/workers"), "{}").await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["worker_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn answers_and_log_lines_are_the_routers() {
    let lines: &'static Lines = Box::leak(Box::default());
    let mut app = TestApp::with(None, Some(TOKEN), DEFAULT_MAX_BODY_BYTES).await;
    app.state = app.state.clone().with_request_log(lines);
    let worker = create_worker(&app).await;
    let sent = post(
        &app,
        &format!("/api/runtimes/{EMBEDDED}/workers/{worker}/input?wait_ms=10000"),
        r#"{"text": "hello"}"#,
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.text);

    let detail = format!("/api/runtimes/{EMBEDDED}/workers/{worker}");
    let transcript = format!("{detail}/transcript");
    let bearer = format!("Bearer {TOKEN}");
    let cases: Vec<(String, Option<&str>)> = vec![
        (detail.clone(), Some(&bearer)),
        (transcript.clone(), Some(&bearer)),
        (format!("{transcript}?limit=1"), Some(&bearer)),
        (format!("{transcript}?limit=0"), Some(&bearer)),
        (format!("{transcript}?cursor=not-a-cursor"), Some(&bearer)),
        (format!("{transcript}?unknown=1"), Some(&bearer)),
        // A Worker that does not exist, an id that is not one, and a
        // Runtime that does not exist.
        (
            format!("/api/runtimes/{EMBEDDED}/workers/w-00000000000000000000"),
            Some(&bearer),
        ),
        (
            format!("/api/runtimes/{EMBEDDED}/workers/NOT-AN-ID!/transcript"),
            Some(&bearer),
        ),
        (
            format!("/api/runtimes/nowhere/workers/{worker}"),
            Some(&bearer),
        ),
        // No token, and a wrong one.
        (detail.clone(), None),
        (transcript.clone(), Some("Bearer wrong")),
    ];
    for (path, authorization) in &cases {
        let send = |path: String| {
            let mut request = Request::builder().method(Method::GET).uri(path);
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, *value);
            }
            app.request(request.body(Body::empty()).unwrap())
        };
        let direct = send(path.clone()).await;
        let routed = send(through_the_router(path)).await;
        assert_eq!(direct.status, routed.status, "{path}: {}", direct.text);
        let headers = |reply: &common::Reply| {
            reply
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
                .collect::<Vec<_>>()
        };
        assert_eq!(headers(&direct), headers(&routed), "{path}");
        assert_eq!(direct.text, routed.text, "{path}");
    }
    let lines = lines.0.lock().unwrap().clone();
    // The create and the input, then each case twice.
    assert_eq!(lines.len(), 2 + 2 * cases.len(), "{lines:#?}");
    for pair in lines[2..].chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    // The cases that reached a route logged its template, not the path.
    assert_eq!(
        lines[2],
        "GET /api/runtimes/{runtime_id}/workers/{worker_id} 200"
    );
    assert_eq!(
        lines[4],
        "GET /api/runtimes/{runtime_id}/workers/{worker_id}/transcript 200"
    );
}

/// What `serve` sends for a GET of `path` on one connection: the status
/// line, the headers in order but `date`, and the body.
async fn raw_answer(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut connection = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
         Connection: close\r\n\r\n"
    );
    connection.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    connection.read_to_string(&mut answer).await.unwrap();
    answer
        .split("\r\n")
        .filter(|line| !line.starts_with("date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[tokio::test]
async fn served_answers_are_the_routers_byte_for_byte() {
    let app = TestApp::with(None, Some(TOKEN), DEFAULT_MAX_BODY_BYTES).await;
    let worker = create_worker(&app).await;
    let server = common::Listening::start(app.state.clone()).await;
    let detail = format!("/api/runtimes/{EMBEDDED}/workers/{worker}");
    for path in [
        detail.clone(),
        format!("{detail}/transcript"),
        format!("{detail}/transcript?limit=0"),
    ] {
        let direct = raw_answer(server.addr, &path).await;
        assert!(direct.starts_with("HTTP/1.1 "), "{direct}");
        assert!(direct.contains("\r\ncontent-length: "), "{direct}");
        assert_eq!(
            direct,
            raw_answer(server.addr, &through_the_router(&path)).await,
            "{path}"
        );
    }
    drop(server.stop);
    server.server.await.unwrap().unwrap();
}
