//! Worker metadata and updates over HTTP: `metadata` on create and
//! `PATCH .../workers/{worker_id}` as a JSON merge patch.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{EMBEDDED, TestApp};
use serde_json::json;

fn patch(uri: &str, content_type: &str, body: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(Method::PATCH)
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn metadata_is_set_at_creation_and_merge_patched() {
    let app = TestApp::new().await;
    let workers = format!("/api/runtimes/{EMBEDDED}/workers");
    let created = app
        .post(
            &workers,
            json!({ "metadata": { "project": "apollo", "team": "a" } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.json["metadata"],
        json!({ "project": "apollo", "team": "a" })
    );
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();
    let uri = format!("{workers}/{worker}");

    for content_type in ["application/merge-patch+json", "application/json"] {
        let reply = app
            .request(patch(
                &uri,
                content_type,
                json!({ "display_name": "Apollo notes", "metadata": { "team": null, "stage": "beta" } }),
            ))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{content_type}: {}",
            reply.text
        );
        assert_eq!(reply.json["display_name"], "Apollo notes");
        assert_eq!(
            reply.json["metadata"],
            json!({ "project": "apollo", "stage": "beta" })
        );
    }
    let listed = app.get(&workers).await;
    let item = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker_id"] == worker.as_str())
        .unwrap();
    assert_eq!(
        item["metadata"],
        json!({ "project": "apollo", "stage": "beta" })
    );

    // Bad input is typed and names the key; other bodies are refused.
    let bad = app
        .request(patch(
            &uri,
            "application/json",
            json!({ "metadata": { "no spaces": "x" } }),
        ))
        .await;
    bad.assert_problem(400, "invalid_request");
    assert!(bad.json["detail"].as_str().unwrap().contains("no spaces"));
    app.request(patch(&uri, "application/json", json!({})))
        .await
        .assert_problem(400, "invalid_request");
    app.request(patch(&uri, "application/json", json!({ "color": "red" })))
        .await
        .assert_problem(400, "invalid_request");
    app.request(patch(&uri, "text/plain", json!({ "display_name": "x" })))
        .await
        .assert_problem(415, "unsupported_media_type");
    let too_many: serde_json::Map<String, serde_json::Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    app.post(&workers, json!({ "metadata": too_many }))
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn a_read_only_runtime_answers_unsupported_and_the_document_has_patch() {
    let app = TestApp::with_local_one("organise").await;
    app.request(patch(
        "/api/runtimes/local-compat/workers/local-one",
        "application/merge-patch+json",
        json!({ "display_name": "x" }),
    ))
    .await
    .assert_problem(501, "unsupported_operation");
    let doc = app.get("/api/openapi.json").await;
    let operation = &doc.json["paths"]["/api/runtimes/{runtime_id}/workers/{worker_id}"]["patch"];
    assert!(
        operation["requestBody"]["content"]["application/merge-patch+json"].is_object(),
        "{operation}"
    );
    assert!(operation["responses"]["415"].is_object());
}

#[tokio::test]
async fn rollback_over_http_keeps_entries_and_refuses_a_busy_worker() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    let base = format!("/api/runtimes/{EMBEDDED}/workers/{worker}");
    for text in ["one", "two"] {
        let reply = app
            .post(
                &format!("{base}/input?wait_ms=10000"),
                json!({ "text": text }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let rolled = app
        .post(&format!("{base}/rollback"), json!({ "turns": 1 }))
        .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.text);
    let transcript = app.get(&format!("{base}/transcript")).await;
    let statuses: Vec<&str> = transcript.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["complete", "complete", "rolled_back", "rolled_back"]
    );
    app.post(&format!("{base}/rollback"), json!({ "turns": 5 }))
        .await
        .assert_problem(400, "invalid_request");
    app.post(&format!("{base}/rollback"), json!({ "turns": "one" }))
        .await
        .assert_problem(400, "invalid_request");

    let slow = app.create_worker(Some("slow")).await;
    let slow_base = format!("/api/runtimes/{EMBEDDED}/workers/{slow}");
    app.post(
        &format!("{slow_base}/input?wait_ms=10000"),
        json!({ "text": "a" }),
    )
    .await;
    app.post(&format!("{slow_base}/input"), json!({ "text": "b" }))
        .await;
    app.post(&format!("{slow_base}/rollback"), json!({ "turns": 1 }))
        .await
        .assert_problem(409, "worker_busy");
    app.wait_idle(&slow).await;
}

#[tokio::test]
async fn fork_over_http_answers_201_with_forked_from() {
    let app = TestApp::new().await;
    let worker = app.create_worker(None).await;
    let base = format!("/api/runtimes/{EMBEDDED}/workers/{worker}");
    let reply = app
        .post(
            &format!("{base}/input?wait_ms=10000"),
            json!({ "text": "hello" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let fork = app
        .post(
            &format!("{base}/fork"),
            json!({ "at": 1, "display_name": "branch", "metadata": { "try": "2" } }),
        )
        .await;
    assert_eq!(fork.status, StatusCode::CREATED, "{}", fork.text);
    assert_eq!(
        fork.json["forked_from"],
        json!({ "worker_id": worker, "transcript_index": 1 })
    );
    assert_eq!(fork.json["transcript_len"], 1);
    assert_eq!(fork.json["metadata"], json!({ "try": "2" }));
    // An ordinary Worker has no forked_from at all.
    let plain = app.get(&base).await;
    assert!(plain.json.get("forked_from").is_none(), "{}", plain.text);
    app.post(&format!("{base}/fork"), json!({ "at": 9 }))
        .await
        .assert_problem(400, "invalid_request");
    app.post(
        "/api/runtimes/backend-internal/workers/w-nope/fork",
        json!({}),
    )
    .await
    .assert_problem(404, "unknown_worker");
}
