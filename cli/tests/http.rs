//! The browser-facing API through `oneshot`: every route's happy path, the
//! JSON shapes as insta snapshots (volatile values redacted by shape), and a
//! scan that planted secrets and paths appear in no response.

mod common;

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{EMBEDDED, LogBuffer, TestApp, record, temp_dir, write_record};
use insta::internals::Content;
use serde_json::{Value, json};
use yoi_runtime_api::Timestamp;

const W: &str = "/api/runtimes/backend-internal/workers";

/// Replaces a timestamp with a placeholder, after checking it is one.
fn timestamp(value: Content, _path: insta::internals::ContentPath<'_>) -> String {
    let text = value.as_str().unwrap_or_default().to_owned();
    assert!(
        Timestamp::parse_rfc3339(&text).is_some(),
        "not a timestamp: {text:?}"
    );
    "[timestamp]".to_owned()
}

/// Ids are time-ordered and random: keep the prefix, check the shape.
fn generated_id(value: Content, _path: insta::internals::ContentPath<'_>) -> String {
    let text = value.as_str().unwrap_or_default().to_owned();
    match text.split_once('-') {
        Some((prefix, rest)) if rest.len() == 18 && (prefix == "w" || prefix == "in") => {
            format!("{prefix}-[generated]")
        }
        // Display names and other text that are not generated ids.
        _ => text,
    }
}

/// Cursors are `<seq>.<epoch>`: keep the sequence number, check the epoch.
fn cursor(value: Content, _path: insta::internals::ContentPath<'_>) -> Content {
    let Some(text) = value.as_str() else {
        // No cursor (local-compat Workers have no event log).
        return value;
    };
    let (seq, epoch) = text.split_once('.').expect("a cursor has an epoch");
    assert!(
        seq.parse::<u64>().is_ok() && epoch.len() == 6,
        "not a cursor: {text:?}"
    );
    Content::from(format!("{seq}.[epoch]"))
}

macro_rules! snapshot {
    ($value:expr) => {
        insta::assert_json_snapshot!($value, {
            ".**.created_at" => insta::dynamic_redaction(timestamp),
            ".**.updated_at" => insta::dynamic_redaction(timestamp),
            ".**.at" => insta::dynamic_redaction(timestamp),
            ".**.worker_id" => insta::dynamic_redaction(generated_id),
            ".**.display_name" => insta::dynamic_redaction(generated_id),
            ".**.input_id" => insta::dynamic_redaction(generated_id),
            ".**.last_cursor" => insta::dynamic_redaction(cursor),
            ".**.cursor" => insta::dynamic_redaction(cursor),
            ".**.next_cursor" => insta::dynamic_redaction(cursor),
        })
    };
}

#[tokio::test]
async fn chat_round_trip_over_every_worker_route() {
    let app = TestApp::new().await;
    let created = app
        .post(W, json!({ "display_name": "Demo", "intent": "try it" }))
        .await;
    assert_eq!(created.status, 201);
    snapshot!(created.json);
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();

    let accepted = app
        .post(
            &format!("{W}/{worker}/input"),
            json!({ "text": "hello there", "client_input_id": "c-1" }),
        )
        .await;
    assert_eq!(accepted.status, 202);
    snapshot!(accepted.json);
    let retry = app
        .post(
            &format!("{W}/{worker}/input"),
            json!({ "text": "hello there", "client_input_id": "c-1" }),
        )
        .await;
    assert_eq!(
        retry.json, accepted.json,
        "a retried client_input_id returns the first acceptance"
    );

    // Long-poll until the turn completed.
    let mut after = accepted.json["cursor"].as_str().unwrap().to_owned();
    loop {
        let page = app
            .get(&format!("{W}/{worker}/events?after={after}&wait_ms=5000"))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let events = page.json["events"].as_array().unwrap();
        assert!(!events.is_empty(), "the long poll waited for an event");
        if events.iter().any(|e| e["kind"] == "turn_completed") {
            break;
        }
        after = page.json["next_cursor"].as_str().unwrap().to_owned();
    }
    app.wait_idle(&worker).await;

    let transcript = app.get(&format!("{W}/{worker}/transcript")).await;
    snapshot!(transcript.json);
    let events = app.get(&format!("{W}/{worker}/events?limit=1000")).await;
    snapshot!(events.json);
    let detail = app.get(&format!("{W}/{worker}")).await;
    snapshot!(detail.json);
    let list = app.get(W).await;
    assert_eq!(list.json["items"][0]["worker_id"], worker.as_str());
    assert_eq!(list.json["next_after"], Value::Null);

    let cancelled = app.post(&format!("{W}/{worker}/cancel"), json!(null)).await;
    assert_eq!(
        (cancelled.status.as_u16(), cancelled.json["state"].as_str()),
        (200, Some("idle"))
    );
    let stopped = app.post(&format!("{W}/{worker}/stop"), json!(null)).await;
    assert_eq!(
        (stopped.status.as_u16(), stopped.json["state"].as_str()),
        (200, Some("stopped"))
    );
    // Cancel and stop need no body at all.
    let bare = Request::post(format!("{W}/{worker}/stop"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.request(bare).await.status, 200);
}

#[tokio::test]
async fn long_poll_returns_empty_after_the_wait() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    let last = app.get(&format!("{W}/{worker}")).await.json["last_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    let page = app
        .get(&format!("{W}/{worker}/events?after={last}&wait_ms=200"))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        page.json,
        json!({ "events": [], "next_cursor": last, "has_more": false })
    );
}

#[tokio::test]
async fn runtime_routes_and_diagnostics() {
    let app = TestApp::new().await;
    app.create_worker(None).await;
    let runtimes = app.get("/api/runtimes").await;
    snapshot!(runtimes.json);
    let one = app.get(&format!("/api/runtimes/{EMBEDDED}")).await;
    assert_eq!(one.json, runtimes.json["items"][0]);
    snapshot!(app.get("/api/diagnostics").await.json);
    snapshot!(app.get("/api/workers").await.json);
    assert_eq!(app.get("/healthz").await.json, json!({ "status": "ok" }));
}

#[tokio::test]
async fn readyz_answers_whether_to_send_work_without_a_token() {
    let local = common::embedded(EMBEDDED);
    let mut registry = yoi_workspace_server::RuntimeRegistry::new();
    registry
        .register(std::sync::Arc::new(local.clone()))
        .await
        .unwrap();
    let app = TestApp::from_registry(registry, Some("SENTINEL-TOKEN"), 1 << 20);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json, json!({ "status": "ready" }));
    // A Runtime in this process that stops serving makes the server unready.
    local.shutdown().await;
    let unready = app.get("/readyz").await;
    unready.assert_problem(503, "not_ready");
    assert_eq!(
        unready.json["reason"],
        "1 of the Runtimes in this process are unavailable"
    );
    assert!(!unready.text.contains(EMBEDDED), "{}", unready.text);
    // So does shutting down, whatever the Runtimes say.
    let fresh = common::embedded(EMBEDDED);
    let mut registry = yoi_workspace_server::RuntimeRegistry::new();
    registry.register(std::sync::Arc::new(fresh)).await.unwrap();
    let app = TestApp::from_registry(registry, None, 1 << 20);
    assert_eq!(app.get("/readyz").await.status, 200);
    app.state.begin_shutdown();
    let draining = app.get("/readyz").await;
    draining.assert_problem(503, "not_ready");
    assert_eq!(draining.json["reason"], "the server is shutting down");
    // Liveness is another question.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn error_documents_snapshot() {
    let app = TestApp::new().await;
    snapshot!(app.get("/api/runtimes/nowhere").await.json);
    snapshot!(app.get(&format!("{W}/w-404")).await.json);
    snapshot!(app.post(W, json!({ "profile": "nope" })).await.json);
    snapshot!(app.get("/nowhere").await.json);
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let app = TestApp::new().await;
    let doc = app.get("/api/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.json["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut paths: Vec<&str> = doc.json["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/api/diagnostics",
            "/api/openapi.json",
            "/api/runtimes",
            "/api/runtimes/{runtime_id}",
            "/api/runtimes/{runtime_id}/events/stream",
            "/api/runtimes/{runtime_id}/profiles",
            "/api/runtimes/{runtime_id}/workers",
            "/api/runtimes/{runtime_id}/workers/count",
            "/api/runtimes/{runtime_id}/workers/{worker_id}",
            "/api/runtimes/{runtime_id}/workers/{worker_id}/cancel",
            "/api/runtimes/{runtime_id}/workers/{worker_id}/events",
            "/api/runtimes/{runtime_id}/workers/{worker_id}/events/stream",
            "/api/runtimes/{runtime_id}/workers/{worker_id}/fork",
            "/api/runtimes/{runtime_id}/workers/{worker_id}/input",
            "/api/runtimes/{runtime_id}/workers/{worker_id}/rollback",
            "/api/runtimes/{runtime_id}/workers/{worker_id}/stop",
            "/api/runtimes/{runtime_id}/workers/{worker_id}/transcript",
            "/api/session",
            "/api/workers",
            "/healthz",
            "/readyz",
        ]
    );
    let input = &doc.json["paths"]["/api/runtimes/{runtime_id}/workers/{worker_id}/input"]["post"];
    for status in [
        "202", "400", "404", "409", "413", "415", "500", "501", "503",
    ] {
        assert!(
            input["responses"].get(status).is_some(),
            "input lacks {status}"
        );
    }
    // Without a token nothing asks for one.
    assert!(input["responses"].get("401").is_none());
    assert!(input.get("security").is_none());
    // Ids carry their rules into the schema.
    let params = input["parameters"].as_array().unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "worker_id" && p["in"] == "path")
    );
    let components = doc.json["components"]["schemas"].as_object().unwrap();
    assert!(
        components["WorkerId"]["pattern"]
            .as_str()
            .unwrap()
            .contains("A-Za-z0-9")
    );

    // With a token, every /api operation but sign-in declares the bearer and
    // cookie schemes and 401.
    let secured = TestApp::with(None, Some("t0ken"), 1 << 20).await;
    let request = Request::get("/api/openapi.json")
        .header("authorization", "Bearer t0ken")
        .body(Body::empty())
        .unwrap();
    let doc = secured.request(request).await.json;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["session"],
        json!({ "type": "apiKey", "in": "cookie", "name": "yoi_session" })
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (_, operation) in item.as_object().unwrap() {
            let secured_op =
                operation["responses"].get("401").is_some() && operation.get("security").is_some();
            let expected = path.starts_with("/api/") && path != "/api/session";
            assert_eq!(secured_op, expected, "{path}");
        }
    }
}

/// Values that must never reach a client.
struct Sentinels {
    key: &'static str,
    token: &'static str,
    socket: String,
    session: String,
    workspace: String,
}

fn plant(workspace: &Path) -> Sentinels {
    let sentinels = Sentinels {
        key: "sk-SENTINEL-KEY-91c3",
        token: "SENTINEL-TOKEN-77ab",
        socket: workspace.join("SENTINEL-SOCKET.sock").display().to_string(),
        session: workspace.join("SENTINEL-SESSION").display().to_string(),
        workspace: workspace.display().to_string(),
    };
    let mut rec = record("planted", workspace);
    rec["socket_path"] = json!(sentinels.socket);
    rec["session_path"] = json!(sentinels.session);
    write_record(
        workspace,
        "planted",
        &rec,
        Some("{\"role\":\"user\",\"text\":\"hi\",\"at\":\"2026-01-02T03:04:05Z\"}\n"),
    );
    // A record whose bad field holds a path, to tempt the error message.
    let mut bad = record("tempting", workspace);
    bad["state"] = json!(sentinels.socket);
    write_record(workspace, "tempting", &bad, None);
    sentinels
}

#[tokio::test]
async fn planted_secrets_and_paths_never_reach_a_response() {
    // Capture every log line at info level and above from this test.
    let (logs, _guard) = LogBuffer::capture();
    let workspace = temp_dir("SENTINEL-WORKSPACE");
    let sentinels = plant(&workspace);
    let config = yoi::config::FileConfig::parse(
        Path::new("test.toml"),
        r#"
        [[profiles]]
        name = "remote"
        backend = "openai"
        base_url = "http://127.0.0.1:9/v1"
        model = "m"
        api_key_env = "TEST_KEY"
        timeout_ms = 500
        "#,
    )
    .unwrap();
    let server = config
        .resolve(
            yoi::config::Overrides {
                workspace: Some(workspace.clone()),
                token: Some(secrecy::SecretString::from(sentinels.token)),
                ..Default::default()
            },
            |var| (var == "TEST_KEY").then(|| sentinels.key.to_owned()),
        )
        .unwrap();
    let app = TestApp {
        state: yoi::build_state(server).await.unwrap(),
    };
    assert!(!format!("{:?}", app.state).contains("SENTINEL"));

    let authed = |method: &str, uri: &str, body: Option<Value>| {
        let builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", sentinels.token));
        match body {
            Some(b) => builder
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        }
    };
    let created = app
        .request(authed("POST", W, Some(json!({ "profile": "remote" }))))
        .await;
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();
    // A turn against the unreachable provider fails; its reason is shown.
    app.request(authed(
        "POST",
        &format!("{W}/{worker}/input"),
        Some(json!({ "text": "hi" })),
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.request(authed("POST", &format!("{W}/{worker}/stop"), None))
        .await;

    let mut replies = Vec::new();
    for uri in [
        "/api/runtimes".to_owned(),
        "/api/runtimes/backend-internal".to_owned(),
        "/api/runtimes/local-compat".to_owned(),
        "/api/diagnostics".to_owned(),
        "/api/workers".to_owned(),
        "/api/openapi.json".to_owned(),
        format!("{W}/{worker}"),
        format!("{W}/{worker}/transcript"),
        format!("{W}/{worker}/events"),
        format!("{W}/{worker}/events/stream"),
        "/api/runtimes/local-compat/workers".to_owned(),
        "/api/runtimes/local-compat/workers/planted".to_owned(),
        "/api/runtimes/local-compat/workers/planted/transcript".to_owned(),
        "/api/runtimes/local-compat/workers/tempting".to_owned(),
        "/api/runtimes/local-compat/workers/planted/input".to_owned(),
        "/api/runtimes/backend-internal/profiles".to_owned(),
    ] {
        replies.push(app.request(authed("GET", &uri, None)).await);
    }
    replies.push(
        app.request(authed(
            "POST",
            "/api/runtimes/local-compat/workers/planted/input",
            Some(json!({"text": "x"})),
        ))
        .await,
    );
    replies.push(app.get("/api/runtimes").await); // unauthorized
    replies.push(
        app.request(authed(
            "GET",
            "/api/runtimes/local-compat/workers?limit=7&QUERYMARK=1",
            None,
        ))
        .await,
    );
    let transcript = &replies[7];
    assert!(
        transcript.text.contains("The turn failed"),
        "{}",
        transcript.text
    );

    let logged = logs.text();
    // The 501 of local-compat's input is one request line, not also a WARN
    // and an ERROR line: it is an answer, not a fault.
    let lines_501 = logged.lines().filter(|l| l.contains("status=501")).count();
    assert_eq!(lines_501, 1, "the capture works, one line: {logged}");
    assert!(
        !logged
            .lines()
            .any(|l| (l.contains("WARN") || l.contains("ERROR")) && l.contains("request failed")),
        "{logged}"
    );
    // A failed turn is logged at warn, with its (cleaned) reason.
    assert!(
        logged.lines().any(|l| l.contains("WARN")
            && l.contains("a turn failed")
            && l.contains("Unavailable")),
        "{logged}"
    );
    // One info line per request: method, the matched route (not the
    // path's ids, not the query), status and latency.
    let line = logged
        .lines()
        .find(|l| {
            l.contains("INFO")
                && l.contains(
                    r#"route="/api/runtimes/{runtime_id}/workers/{worker_id}/transcript""#,
                )
        })
        .unwrap_or_else(|| panic!("no request line for the transcript: {logged}"));
    assert!(line.contains("method=GET"), "{line}");
    assert!(line.contains("status=200"), "{line}");
    assert!(line.contains("latency_us="), "{line}");
    for needle in ["planted", "QUERYMARK", "limit=7"] {
        assert!(!logged.contains(needle), "{needle} in the log: {logged}");
    }
    for needle in [
        sentinels.key,
        sentinels.token,
        &sentinels.socket,
        &sentinels.session,
        "SENTINEL",
    ] {
        assert!(
            !logged.contains(needle),
            "{needle} leaked in the log: {logged}"
        );
    }

    for reply in &replies {
        let headers = format!("{:?}", reply.headers);
        for needle in [
            sentinels.key,
            sentinels.token,
            &sentinels.socket,
            &sentinels.session,
            &sentinels.workspace,
            "SENTINEL",
        ] {
            assert!(
                !reply.text.contains(needle),
                "{needle} leaked in body: {}",
                reply.text
            );
            assert!(
                !headers.contains(needle),
                "{needle} leaked in headers: {headers}"
            );
        }
    }
}

#[tokio::test]
async fn list_and_local_compat_responses_snapshot() {
    let workspace = temp_dir("snapshot-compat");
    let mut rec = record("archivist", &workspace);
    rec["display_name"] = json!("Archivist");
    write_record(
        &workspace,
        "archivist",
        &rec,
        Some("{\"role\":\"user\",\"text\":\"hello\",\"at\":\"2026-01-02T03:04:05Z\"}\n"),
    );
    let app = TestApp::with(Some(&workspace), None, 1 << 20).await;
    app.create_worker(None).await;
    snapshot!(app.get(W).await.json);
    snapshot!(app.get("/api/runtimes/local-compat").await.json);
    snapshot!(app.get("/api/runtimes/local-compat/workers").await.json);
    snapshot!(
        app.get("/api/runtimes/local-compat/workers/archivist")
            .await
            .json
    );
    snapshot!(
        app.get("/api/runtimes/local-compat/workers/archivist/transcript")
            .await
            .json
    );
}

#[tokio::test]
async fn cors_only_when_configured() {
    let origin = "http://localhost:5173";
    let with_origin = |method: &str, uri: &str, origin: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .unwrap()
    };
    // Not configured: no CORS headers at all.
    let plain = TestApp::new().await;
    let reply = plain
        .request(with_origin("GET", "/api/runtimes", origin))
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers.get("access-control-allow-origin").is_none());

    let mut app = TestApp::new().await;
    app.state = app
        .state
        .with_cors_allowed_origins(vec![origin.parse().unwrap()]);
    let preflight = app.request(with_origin("OPTIONS", W, origin)).await;
    assert!(preflight.status.is_success(), "{}", preflight.status);
    assert_eq!(preflight.headers["access-control-allow-origin"], origin);
    let methods = preflight.headers["access-control-allow-methods"]
        .to_str()
        .unwrap();
    // Every method the API takes, as configuration.md says.
    for method in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = preflight.headers["access-control-allow-headers"]
        .to_str()
        .unwrap();
    for header in [
        "content-type",
        "authorization",
        "last-event-id",
        "x-yoi-csrf",
    ] {
        assert!(headers.contains(header), "{headers}");
    }
    let reply = app
        .request(with_origin("GET", "/api/runtimes", origin))
        .await;
    assert_eq!(reply.headers["access-control-allow-origin"], origin);
    let other = app
        .request(with_origin("GET", "/api/runtimes", "http://evil.example"))
        .await;
    assert!(other.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn delete_removes_a_worker_and_local_compat_refuses_it() {
    let app = TestApp::with_local_one("delete").await;
    let worker = app.create_worker(None).await;
    let reply = app
        .post(&format!("{W}/{worker}/input"), json!({ "text": "hi" }))
        .await;
    let cursor = reply.json["cursor"].as_str().unwrap().to_owned();
    let deleted = app
        .send(Method::DELETE, &format!("{W}/{worker}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(deleted.text.is_empty());
    app.get(&format!("{W}/{worker}"))
        .await
        .assert_problem(404, "unknown_worker");
    app.get(&format!("{W}/{worker}/events?after={cursor}"))
        .await
        .assert_problem(404, "unknown_worker");
    app.send(Method::DELETE, &format!("{W}/{worker}"), None)
        .await
        .assert_problem(404, "unknown_worker");
    let local = app
        .send(
            Method::DELETE,
            "/api/runtimes/local-compat/workers/local-one",
            None,
        )
        .await;
    local.assert_problem(501, "unsupported_operation");
    assert_eq!(local.json["operation"], "delete_worker");
}
