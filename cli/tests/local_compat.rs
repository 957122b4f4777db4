//! The read-only local compatibility source over worker record files.

mod common;

use common::{TestApp, record, temp_dir, write_record};
use serde_json::json;

const BASE: &str = "/api/runtimes/local-compat/workers";

#[tokio::test]
async fn lists_shows_and_pages_transcripts() {
    let workspace = temp_dir("compat-list");
    let mut rec = record("alpha", &workspace);
    rec["display_name"] = json!("Alpha");
    let transcript = [
        json!({"role": "user", "text": "hello", "at": "2026-01-02T03:04:05Z"}),
        json!({"role": "assistant", "text": "hi", "at": "2026-01-02T03:04:06Z", "status": "complete"}),
        json!({"role": "user", "text": "more", "at": "2026-01-02T03:04:07Z"}),
    ]
    .iter()
    .map(|l| l.to_string() + "\n")
    .collect::<String>();
    write_record(&workspace, "alpha", &rec, Some(&transcript));
    write_record(&workspace, "beta", &record("beta", &workspace), None);
    let app = TestApp::with(Some(&workspace), None, 1 << 20).await;

    let list = app.get(BASE).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let ids: Vec<&str> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);
    let paged = app.get(&format!("{BASE}?limit=1")).await;
    assert_eq!(paged.json["next_after"], "alpha");
    let next = app.get(&format!("{BASE}?limit=1&after=alpha")).await;
    assert_eq!(next.json["items"][0]["worker_id"], "beta");
    assert_eq!(next.json["next_after"], serde_json::Value::Null);

    let detail = app.get(&format!("{BASE}/alpha")).await;
    assert_eq!(detail.json["display_name"], "Alpha");
    assert_eq!(detail.json["transcript_len"], 3);
    assert_eq!(
        detail.json["profile"],
        json!({"name": "default", "fallback": false})
    );

    let page = app
        .get(&format!("{BASE}/alpha/transcript?start=1&limit=1"))
        .await;
    assert_eq!(page.json["total"], 3);
    assert_eq!(page.json["next_start"], 2);
    assert_eq!(page.json["entries"][0]["text"], "hi");
    assert_eq!(page.json["entries"][0]["index"], 1);

    app.get(&format!("{BASE}/gamma"))
        .await
        .assert_problem(404, "unknown_worker");
    app.get(&format!("{BASE}/alpha/transcript?limit=201"))
        .await
        .assert_problem(400, "limit_too_large");
}

#[tokio::test]
async fn bad_records_are_skipped_with_diagnostics() {
    let workspace = temp_dir("compat-bad");
    let other = temp_dir("compat-other");
    write_record(&workspace, "good", &record("good", &workspace), None);
    write_record(&workspace, "foreign", &record("foreign", &other), None);
    write_record(
        &workspace,
        "misnamed",
        &record("someone-else", &workspace),
        None,
    );
    let mut bad_state = record("weird", &workspace);
    bad_state["state"] = json!("/secret/socket/path");
    write_record(&workspace, "weird", &bad_state, None);
    let dir = workspace.join(".yoi/workers/broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("worker.json"), "{ this is not json").unwrap();
    std::fs::create_dir_all(workspace.join(".yoi/workers/no-record")).unwrap();
    std::fs::create_dir_all(workspace.join(".yoi/workers/bad name")).unwrap();

    let app = TestApp::with(Some(&workspace), None, 1 << 20).await;
    let list = app.get(BASE).await;
    assert_eq!(list.status, 200);
    let ids: Vec<&str> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["good"]);
    for skipped in ["foreign", "misnamed", "weird", "broken", "no-record"] {
        app.get(&format!("{BASE}/{skipped}"))
            .await
            .assert_problem(404, "unknown_worker");
    }

    let diagnostics = app.get("/api/diagnostics").await;
    let local = diagnostics.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["runtime_id"] == "local-compat")
        .unwrap()
        .clone();
    let mut codes: Vec<&str> = local["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [
            "foreign_record",
            "invalid_worker_name",
            "malformed_record",
            "malformed_record",
            "misnamed_record",
            "unreadable_record"
        ]
    );
    // No path of any kind reaches the response.
    let text = diagnostics.text;
    for needle in [
        workspace.to_str().unwrap(),
        other.to_str().unwrap(),
        "/secret/socket/path",
        "worker.json",
        ".yoi",
    ] {
        assert!(!text.contains(needle), "{needle} leaked: {text}");
    }
}

#[tokio::test]
async fn missing_workers_folder_is_an_empty_list_with_a_note() {
    let workspace = temp_dir("compat-empty");
    let app = TestApp::with(Some(&workspace), None, 1 << 20).await;
    let list = app.get(BASE).await;
    assert_eq!(list.json["items"], json!([]));
    let status = app.get("/api/runtimes/local-compat").await;
    assert_eq!(status.json["status"]["state"], "ready");
    let diagnostics = app.get("/api/diagnostics").await;
    assert!(diagnostics.text.contains("no_workers_folder"));
}

#[tokio::test]
async fn malformed_transcript_lines_are_skipped() {
    let workspace = temp_dir("compat-lines");
    let transcript = "{\"role\":\"user\",\"text\":\"one\",\"at\":\"2026-01-02T03:04:05Z\"}\nnot json\n{\"role\":\"user\",\"text\":\"two\",\"at\":\"2026-01-02T03:04:05Z\"}\n";
    write_record(&workspace, "w", &record("w", &workspace), Some(transcript));
    let app = TestApp::with(Some(&workspace), None, 1 << 20).await;
    let page = app.get(&format!("{BASE}/w/transcript")).await;
    let texts: Vec<&str> = page.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two"]);
    assert_eq!(page.json["total"], 2);
}
