//! Every error a client can trigger: status, `code` and problem+json.

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{EMBEDDED, TestApp, temp_dir};
use serde_json::json;
use std::sync::Arc;
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, Limits};
use yoi_workspace_server::RuntimeRegistry;

const W: &str = "/api/runtimes/backend-internal/workers";

/// The server over one embedded Runtime with these limits.
async fn app_with_limits(limits: Limits) -> TestApp {
    let runtime = EmbeddedRuntime::new(EmbeddedOptions {
        limits,
        ..EmbeddedOptions::default()
    })
    .unwrap();
    let mut registry = RuntimeRegistry::new();
    registry.register(Arc::new(runtime)).await.unwrap();
    TestApp::from_registry(registry, None, 1 << 20)
}

#[tokio::test]
async fn malformed_json_is_invalid_request() {
    let app = TestApp::new().await;
    let request = Request::post(W)
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    app.request(request)
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_invalid_request() {
    let app = TestApp::new().await;
    for body in ["[null, null]", "null", "\"text\"", "7", ""] {
        let request = Request::post(W)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        app.request(request)
            .await
            .assert_problem(400, "invalid_request");
    }
    // A JSON-suffixed media type is JSON too.
    let request = Request::post(W)
        .header(
            "content-type",
            "application/merge-patch+json; charset=utf-8",
        )
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(app.request(request).await.status, 201);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestApp::new().await;
    let request = Request::post(W)
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    app.request(request)
        .await
        .assert_problem(415, "unsupported_media_type");
    let request = Request::post(W).body(Body::from("{}")).unwrap();
    app.request(request)
        .await
        .assert_problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn missing_and_unknown_fields_are_invalid_request() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    let input = format!("{W}/{worker}/input");
    app.post(&input, json!({ "on_busy": "queue" }))
        .await
        .assert_problem(400, "invalid_request");
    app.post(&input, json!({ "text": "hi", "socket_path": "/tmp/x" }))
        .await
        .assert_problem(400, "invalid_request");
    app.post(&input, json!({ "text": "hi", "on_busy": "sometimes" }))
        .await
        .assert_problem(400, "invalid_request");
    app.post(&input, json!({ "text": 5 }))
        .await
        .assert_problem(400, "invalid_request");
    app.post(W, json!({ "display_name": 7 }))
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn bad_ids_in_paths_and_bodies_are_invalid_id() {
    let app = TestApp::new().await;
    let reply = app.get("/api/runtimes/bad%20id").await;
    reply.assert_problem(400, "invalid_id");
    assert_eq!(reply.json["field"], "runtime_id");
    let reply = app.get(&format!("{W}/..")).await;
    reply.assert_problem(400, "invalid_id");
    assert_eq!(reply.json["field"], "worker_id");
    let long = "a".repeat(129);
    app.get(&format!("{W}/{long}"))
        .await
        .assert_problem(400, "invalid_id");
    // Percent-encoded bytes that are not UTF-8 name the parameter.
    let reply = app.get(&format!("{W}/%FF/transcript")).await;
    reply.assert_problem(400, "invalid_request");
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(detail.contains("worker_id"), "{detail}");
    let reply = app.get("/api/runtimes/%C3%28/workers").await;
    reply.assert_problem(400, "invalid_request");
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(detail.contains("runtime_id"), "{detail}");
    app.post(W, json!({ "profile": "../etc" }))
        .await
        .assert_problem(400, "invalid_request");
    let worker = app.create_worker(None).await;
    app.post(
        &format!("{W}/{worker}/input"),
        json!({ "text": "hi", "client_input_id": "a b" }),
    )
    .await
    .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn bad_query_values_are_invalid_request() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    app.get(&format!("{W}/{worker}/transcript?limit=lots"))
        .await
        .assert_problem(400, "invalid_request");
    app.get(&format!("{W}/{worker}/transcript?start=-1"))
        .await
        .assert_problem(400, "invalid_request");
    app.get(&format!("{W}/{worker}/events?after=%2F.."))
        .await
        .assert_problem(400, "invalid_request");
    app.get(&format!(
        "{W}/{worker}/transcript?start=9223372036854775808"
    ))
    .await
    .assert_problem(400, "invalid_request");
    app.get(&format!("{W}?limit=0"))
        .await
        .assert_problem(400, "invalid_request");
}

/// A misspelt parameter would otherwise be ignored: `events?wait=5000`
/// answering at once instead of waiting, a page from the start instead of
/// after a cursor. Every route that takes query parameters refuses a name
/// it does not know and says which it takes.
#[tokio::test]
async fn unknown_query_parameters_are_invalid_request_on_every_route() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    for (path, known) in [
        (format!("{W}/{worker}/transcript?begin=1"), "start"),
        (format!("{W}/{worker}/events?wait=5000"), "wait_ms"),
        (format!("{W}/{worker}/events/stream?cursor=1"), "after"),
        (
            format!("/api/runtimes/{EMBEDDED}/events/stream?cursor=1"),
            "after",
        ),
        (format!("{W}?bogus=1"), "limit"),
        (format!("{W}/count?limit=1"), "state"),
        ("/api/workers?bogus=1".to_owned(), "limit"),
    ] {
        let reply = app.get(&path).await;
        reply.assert_problem(400, "invalid_request");
        let detail = reply.json["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(known), "{path}: {detail}");
        assert!(
            !detail.contains("Failed to deserialize"),
            "{path}: {detail}"
        );
    }
    app.post(
        &format!("{W}/{worker}/input?wait=1000"),
        json!({"text": "hi"}),
    )
    .await
    .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn unknown_route_and_wrong_method() {
    let app = TestApp::new().await;
    app.get("/nope")
        .await
        .assert_problem(404, "route_not_found");
    app.get("/api/nope")
        .await
        .assert_problem(404, "route_not_found");
    let reply = app.send(Method::DELETE, "/api/runtimes", None).await;
    reply.assert_problem(405, "method_not_allowed");
    let reply = app
        .send(Method::PUT, &format!("{W}/w-1/input"), Some(json!({})))
        .await;
    reply.assert_problem(405, "method_not_allowed");
}

#[tokio::test]
async fn a_wrong_method_is_answered_only_after_the_token_check() {
    let app = TestApp::with(None, Some("t0k"), 1 << 20).await;
    let reply = app.send(Method::DELETE, "/api/runtimes", None).await;
    reply.assert_problem(401, "unauthorized");
    assert!(reply.headers.get("allow").is_none(), "{:?}", reply.headers);
    let request = Request::builder()
        .method(Method::DELETE)
        .uri("/api/runtimes")
        .header("authorization", "Bearer t0k")
        .body(Body::empty())
        .unwrap();
    app.request(request)
        .await
        .assert_problem(405, "method_not_allowed");
}

#[tokio::test]
async fn the_served_app_answers_a_wrong_method_and_names_the_contract_like_the_router() {
    // `serve` runs the application without the router `app` wraps it in.
    let server =
        common::Listening::start(TestApp::with(None, Some("t0k"), 1 << 20).await.state).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/runtimes", server.base());
    let unauthorized = client.delete(&url).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let headers = unauthorized.headers();
    assert!(headers.get("allow").is_none(), "{headers:?}");
    assert_eq!(headers["yoi-contract-version"], "1");
    let wrong_method = client.delete(&url).bearer_auth("t0k").send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET,HEAD");
    assert_eq!(wrong_method.headers()["yoi-contract-version"], "1");
    let health = client
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.headers()["yoi-contract-version"], "1");
    let _ = server.stop.send(());
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = TestApp::with(None, None, 1024).await;
    let worker = app.create_worker(None).await;
    let reply = app
        .post(
            &format!("{W}/{worker}/input"),
            json!({ "text": "x".repeat(4096) }),
        )
        .await;
    reply.assert_problem(413, "payload_too_large");
    assert_eq!(reply.json["max"], 1024);
}

#[tokio::test]
async fn oversized_streamed_body_without_a_length_is_413_and_a_declared_one_is_refused_unread() {
    let app = TestApp::with(None, None, 1024).await;
    let worker = app.create_worker(None).await;
    // Chunks with no Content-Length: the limit stops the read.
    let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512]));
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{W}/{worker}/input"))
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let reply = app.request(request).await;
    reply.assert_problem(413, "payload_too_large");
    assert_eq!(reply.json["max"], 1024);
    // A declared length over the limit is refused before any byte is read.
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{W}/{worker}/input"))
        .header("content-type", "application/json")
        .header("content-length", "5000")
        .body(Body::from_stream(futures_util::stream::pending::<
            Result<Vec<u8>, std::io::Error>,
        >()))
        .unwrap();
    let reply = app.request(request).await;
    reply.assert_problem(413, "payload_too_large");
    assert_eq!(reply.json["requested"], 5000);
}

#[tokio::test]
async fn oversized_input_text_is_413() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    let reply = app
        .post(
            &format!("{W}/{worker}/input"),
            json!({ "text": "x".repeat(65537) }),
        )
        .await;
    reply.assert_problem(413, "payload_too_large");
    assert_eq!(reply.json["max"], 65536);
}

#[tokio::test]
async fn blank_input_is_invalid_request() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    app.post(&format!("{W}/{worker}/input"), json!({ "text": "   " }))
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn unknown_runtime_and_unknown_worker_are_404() {
    let app = TestApp::new().await;
    let reply = app.get("/api/runtimes/nowhere/workers/w-1").await;
    reply.assert_problem(404, "unknown_runtime");
    assert_eq!(reply.json["runtime_id"], "nowhere");
    let reply = app.get(&format!("{W}/w-9999999999")).await;
    reply.assert_problem(404, "unknown_worker");
    assert_eq!(reply.json["runtime_id"], EMBEDDED);
    assert_eq!(reply.json["worker_id"], "w-9999999999");
}

#[tokio::test]
async fn unknown_profile_is_422() {
    let app = TestApp::new().await;
    let reply = app.post(W, json!({ "profile": "no-such" })).await;
    reply.assert_problem(422, "unknown_profile");
    assert_eq!(reply.json["profile"], "no-such");
}

#[tokio::test]
async fn busy_and_stopped_are_409() {
    let app = TestApp::new().await;
    let worker = app.create_worker(Some("slow")).await;
    let input = format!("{W}/{worker}/input");
    assert_eq!(app.post(&input, json!({ "text": "one" })).await.status, 202);
    let reply = app.post(&input, json!({ "text": "two" })).await;
    reply.assert_problem(409, "worker_busy");
    assert_eq!(reply.json["reason"], "turn_running");
    assert_eq!(
        app.post(&format!("{W}/{worker}/stop"), json!(null))
            .await
            .status,
        200
    );
    app.post(&input, json!({ "text": "three" }))
        .await
        .assert_problem(409, "worker_stopped");
}

#[tokio::test]
async fn limits_over_the_maximum_are_limit_too_large() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    let reply = app.get(&format!("{W}/{worker}/transcript?limit=201")).await;
    reply.assert_problem(400, "limit_too_large");
    assert_eq!(
        (reply.json["requested"].as_u64(), reply.json["max"].as_u64()),
        (Some(201), Some(200))
    );
    app.get(&format!("{W}/{worker}/events?limit=1001"))
        .await
        .assert_problem(400, "limit_too_large");
    let reply = app.get(&format!("{W}/{worker}/events?wait_ms=30001")).await;
    reply.assert_problem(400, "limit_too_large");
    assert_eq!(reply.json["field"], "wait_ms");
    app.get("/api/workers?limit=501")
        .await
        .assert_problem(400, "limit_too_large");
}

#[tokio::test]
async fn expired_and_foreign_cursors() {
    // An embedded runtime that keeps only 20 events per Worker.
    let app = app_with_limits(Limits {
        max_events_per_worker: 20,
        ..Limits::default()
    })
    .await;
    let worker = app.create_worker(None).await;
    // Never issued by this log (as after a restart): expired too.
    for cursor in ["999", "000", "x"] {
        app.get(&format!("{W}/{worker}/events?after={cursor}"))
            .await
            .assert_problem(410, "cursor_expired");
    }
    for n in 0..5 {
        app.post(
            &format!("{W}/{worker}/input"),
            json!({ "text": format!("m {n}"), "on_busy": "queue" }),
        )
        .await;
    }
    app.wait_idle(&worker).await;
    let reply = app.get(&format!("{W}/{worker}/events?after=1")).await;
    reply.assert_problem(410, "cursor_expired");
    assert_eq!(reply.json["cursor"], "1");
    let reply = app
        .get(&format!("{W}/{worker}/events/stream?after=1"))
        .await;
    reply.assert_problem(410, "cursor_expired");
}

#[tokio::test]
async fn unsupported_operations_are_501() {
    let workspace = temp_dir("unsupported");
    common::write_record(
        &workspace,
        "solo",
        &common::record("solo", &workspace),
        None,
    );
    let app = TestApp::with(Some(&workspace), None, 1 << 20).await;
    let base = "/api/runtimes/local-compat/workers";
    let reply = app
        .post(&format!("{base}/solo/input"), json!({ "text": "hi" }))
        .await;
    reply.assert_problem(501, "unsupported_operation");
    assert_eq!(reply.json["operation"], "send_input");
    app.post(&format!("{base}/solo/stop"), json!(null))
        .await
        .assert_problem(501, "unsupported_operation");
    app.post(&format!("{base}/solo/cancel"), json!(null))
        .await
        .assert_problem(501, "unsupported_operation");
    app.post(base, json!({}))
        .await
        .assert_problem(501, "unsupported_operation");
    app.get(&format!("{base}/solo/events"))
        .await
        .assert_problem(501, "unsupported_operation");
    app.get(&format!("{base}/solo/events/stream"))
        .await
        .assert_problem(501, "unsupported_operation");
    app.get("/api/runtimes/local-compat/events/stream")
        .await
        .assert_problem(501, "unsupported_operation");
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let app = TestApp::with(None, Some("s3cret-token"), 1 << 20).await;
    let reply = app.get("/api/runtimes").await;
    reply.assert_problem(401, "unauthorized");
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    let wrong = Request::get("/api/runtimes")
        .header("authorization", "Bearer nope")
        .body(Body::empty())
        .unwrap();
    app.request(wrong).await.assert_problem(401, "unauthorized");
    // The scheme is case-insensitive; the token is not.
    for header in [
        "Bearer s3cret-token",
        "bearer s3cret-token",
        "BEARER s3cret-token",
    ] {
        let right = Request::get("/api/runtimes")
            .header("authorization", header)
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.request(right).await.status, 200, "{header}");
    }
    let case = Request::get("/api/runtimes")
        .header("authorization", "Bearer S3CRET-TOKEN")
        .body(Body::empty())
        .unwrap();
    app.request(case).await.assert_problem(401, "unauthorized");
    // Health stays open for probes.
    assert_eq!(app.get("/healthz").await.status, 200);
    app.get("/api/openapi.json")
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn bad_last_event_id_is_invalid_request() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    let request = Request::get(format!("{W}/{worker}/events/stream"))
        .header("last-event-id", "../../x")
        .body(Body::empty())
        .unwrap();
    app.request(request)
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn profiles_are_listed_by_name_with_the_default_and_no_endpoint() {
    let config = yoi::config::FileConfig::parse(
        std::path::Path::new("test.toml"),
        r#"
        default_profile = "remote"
        [[profiles]]
        name = "remote"
        backend = "openai"
        base_url = "http://127.0.0.1:9/v1"
        model = "PLANTED-MODEL"
        "#,
    )
    .unwrap();
    let workspace = temp_dir("profiles");
    let server = config
        .resolve(
            yoi::config::Overrides {
                workspace: Some(workspace),
                ..Default::default()
            },
            |_| None,
        )
        .unwrap();
    let app = TestApp {
        state: yoi::build_state(server).await.unwrap(),
    };
    let listed = app.get("/api/runtimes/backend-internal/profiles").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.json,
        json!({ "items": [
            { "name": "default", "backend": "echo", "default": false },
            { "name": "remote", "backend": "openai", "default": true },
        ]})
    );
    assert!(!listed.text.contains("127.0.0.1") && !listed.text.contains("PLANTED"));
    app.get("/api/runtimes/local-compat/profiles")
        .await
        .assert_problem(501, "unsupported_operation");
    app.get("/api/runtimes/nope/profiles")
        .await
        .assert_problem(404, "unknown_runtime");
}

#[tokio::test]
async fn live_workers_are_capped_with_capacity_exceeded_and_retry_after() {
    let app = app_with_limits(Limits {
        max_live_workers: 2,
        ..Limits::default()
    })
    .await;
    let first = app.create_worker(None).await;
    app.create_worker(None).await;
    let refused = app.post(W, json!({})).await;
    refused.assert_problem(503, "capacity_exceeded");
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("2 live workers")
    );
    // A stopped Worker does not count.
    let stopped = app
        .send(Method::POST, &format!("{W}/{first}/stop"), None)
        .await;
    assert_eq!(stopped.status, 200, "{}", stopped.text);
    app.create_worker(None).await;
}

#[tokio::test]
async fn names_and_intents_are_bounded_in_bytes_as_well_as_characters() {
    let app = TestApp::new().await;
    // 4,096 characters, but 16 KiB: too heavy for an intent.
    let emoji = "\u{1F600}".repeat(4096);
    let reply = app.post(W, json!({ "intent": emoji })).await;
    reply.assert_problem(400, "invalid_request");
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap()
            .contains("8192 bytes")
    );
    // The same count of ASCII characters is fine.
    let ok = app
        .post(
            W,
            json!({ "intent": "i".repeat(4096), "display_name": "n".repeat(256) }),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}
