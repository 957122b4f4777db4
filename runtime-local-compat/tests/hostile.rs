//! Files that try to take the server down: each is refused or bounded, and
//! reported as a diagnostic. Every call must answer well within its
//! deadline; `answers` fails the test if one does not.

mod common;

use std::future::Future;
use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::Duration;

use common::{folder, line, record, workspace, write_worker};
use serde_json::json;
use yoi_runtime_api::dto::{TranscriptQuery, WorkerListQuery};
use yoi_runtime_api::{ErrorCode, Runtime, WorkerId};
use yoi_runtime_local_compat::{LocalCompatLimits, LocalCompatRuntime};

/// Awaits a call that must not hang.
async fn answers<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call answered")
}

fn id(name: &str) -> WorkerId {
    name.parse().unwrap()
}

async fn listed(rt: &LocalCompatRuntime) -> Vec<String> {
    let page = answers(rt.list_workers(WorkerListQuery::default()))
        .await
        .unwrap();
    page.items.iter().map(|w| w.worker_id.to_string()).collect()
}

async fn codes(rt: &LocalCompatRuntime) -> Vec<String> {
    let diagnostics = answers(rt.diagnostics()).await.unwrap();
    diagnostics.into_iter().map(|d| d.code).collect()
}

async fn texts(rt: &LocalCompatRuntime, name: &str) -> Vec<String> {
    let page = answers(rt.transcript(&id(name), TranscriptQuery::default()))
        .await
        .unwrap();
    page.entries.into_iter().map(|e| e.text).collect()
}

fn mkfifo(path: &std::path::Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_transcript_linked_to_dev_zero_is_not_read() {
    let ws = workspace("dev-zero");
    write_worker(&ws, "zero", &record("zero"), None);
    symlink("/dev/zero", folder(&ws, "zero").join("transcript.jsonl")).unwrap();
    let rt = LocalCompatRuntime::new(ws);
    assert!(texts(&rt, "zero").await.is_empty());
    assert_eq!(rt.read_stats().transcript_bytes_scanned, 0);
    assert!(
        codes(&rt)
            .await
            .contains(&"irregular_transcript".to_owned())
    );
}

#[tokio::test]
async fn a_huge_transcript_is_read_only_up_to_its_cap() {
    let ws = workspace("huge");
    let valid = [line("user", "one"), line("assistant", "two")].concat();
    write_worker(&ws, "huge", &record("huge"), Some(valid.as_bytes()));
    // A 2 GiB file: two valid lines, then zeros (sparse, so cheap to make).
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(folder(&ws, "huge").join("transcript.jsonl"))
        .unwrap();
    file.set_len(2 << 30).unwrap();
    let limits = LocalCompatLimits {
        max_transcript_bytes: 4 << 20,
        ..LocalCompatLimits::default()
    };
    let rt = LocalCompatRuntime::with_limits(ws, limits);
    assert_eq!(texts(&rt, "huge").await, ["one", "two"]);
    let scanned = rt.read_stats().transcript_bytes_scanned;
    assert!(scanned <= 4 << 20, "read {scanned} bytes");
    let codes = codes(&rt).await;
    assert!(
        codes.contains(&"oversized_transcript".to_owned()),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"oversized_transcript_lines".to_owned()),
        "{codes:?}"
    );
}

#[tokio::test]
async fn a_fifo_in_place_of_a_record_or_transcript_does_not_hang() {
    let ws = workspace("fifo");
    write_worker(
        &ws,
        "good",
        &record("good"),
        Some(line("user", "hi").as_bytes()),
    );
    std::fs::create_dir_all(folder(&ws, "piped")).unwrap();
    mkfifo(&folder(&ws, "piped").join("worker.json"));
    write_worker(&ws, "piped-transcript", &record("piped-transcript"), None);
    mkfifo(&folder(&ws, "piped-transcript").join("transcript.jsonl"));
    let rt = LocalCompatRuntime::new(ws);
    assert_eq!(listed(&rt).await, ["good", "piped-transcript"]);
    let status = answers(rt.status()).await.unwrap();
    assert_eq!(status.workers.total(), 2);
    let err = answers(rt.worker(&id("piped"))).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownWorker);
    assert!(texts(&rt, "piped-transcript").await.is_empty());
    let codes = codes(&rt).await;
    assert!(codes.contains(&"irregular_record".to_owned()), "{codes:?}");
    assert!(
        codes.contains(&"irregular_transcript".to_owned()),
        "{codes:?}"
    );
}

#[tokio::test]
async fn the_list_is_rescanned_only_when_the_folder_changes() {
    let ws = workspace("many");
    for n in 0..2_000 {
        let name = format!("w-{n:05}");
        write_worker(&ws, &name, &record(&name), None);
    }
    // A scan right after a change is not trusted (timestamps are coarse);
    // let the folder settle first, as a long-lived workspace has.
    settle(&ws);
    let rt = LocalCompatRuntime::new(ws.clone());
    let first = answers(rt.list_workers(WorkerListQuery {
        after: None,
        limit: Some(10),
        ..WorkerListQuery::default()
    }))
    .await
    .unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(rt.read_stats().folder_scans, 1);
    for _ in 0..5 {
        answers(rt.list_workers(WorkerListQuery {
            after: first.next_after.clone(),
            limit: Some(10),
            ..WorkerListQuery::default()
        }))
        .await
        .unwrap();
        answers(rt.status()).await.unwrap();
    }
    assert_eq!(
        rt.read_stats().folder_scans,
        1,
        "nothing changed, nothing rescanned"
    );
    write_worker(&ws, "w-99999", &record("w-99999"), None);
    let status = answers(rt.status()).await.unwrap();
    assert_eq!(status.workers.total(), 2_001);
    assert_eq!(rt.read_stats().folder_scans, 2);
    // Right after that change the scan is racy: the next call scans again,
    // so a Worker added in the same clock tick is not missed.
    write_worker(&ws, "w-99998", &record("w-99998"), None);
    let status = answers(rt.status()).await.unwrap();
    assert_eq!(status.workers.total(), 2_002);
}

/// Moves the workers folder's mtime into the past.
fn settle(ws: &std::path::Path) {
    let dir = ws.join(".yoi").join("workers");
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::open(&dir)
        .unwrap()
        .set_modified(past)
        .unwrap();
}

#[tokio::test]
async fn bad_lines_are_skipped_one_by_one() {
    let ws = workspace("bad-lines");
    let mut bytes = line("user", "before").into_bytes();
    bytes.extend_from_slice(
        b"{\"role\":\"user\",\"text\":\"\xff\xfe\",\"at\":\"2026-01-02T03:04:05Z\"}\n",
    );
    bytes.extend_from_slice(b"not json at all\n");
    bytes.extend_from_slice(format!("{}\n", "x".repeat(300 * 1024)).as_bytes());
    bytes.extend_from_slice(line("assistant", "after").as_bytes());
    write_worker(&ws, "mixed", &record("mixed"), Some(&bytes));
    let rt = LocalCompatRuntime::new(ws);
    assert_eq!(texts(&rt, "mixed").await, ["before", "after"]);
    let detail = answers(rt.worker(&id("mixed"))).await.unwrap();
    assert_eq!(detail.summary.transcript_len, 2);
    let codes = codes(&rt).await;
    assert!(
        codes.contains(&"malformed_transcript_lines".to_owned()),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"oversized_transcript_lines".to_owned()),
        "{codes:?}"
    );
}

#[tokio::test]
async fn display_names_are_validated_like_the_embedded_runtime() {
    let ws = workspace("names");
    for (name, display) in [
        ("control", json!("bell\u{7}")),
        ("long", json!("n".repeat(300))),
        ("blank", json!("   ")),
        ("fine", json!("Fine name")),
    ] {
        let mut rec = record(name);
        rec["display_name"] = display;
        write_worker(&ws, name, &rec, None);
    }
    let rt = LocalCompatRuntime::new(ws);
    assert_eq!(listed(&rt).await, ["fine"]);
    let codes = codes(&rt).await;
    assert_eq!(
        codes.iter().filter(|c| *c == "invalid_record").count(),
        3,
        "{codes:?}"
    );
}

#[tokio::test]
async fn a_symlinked_worker_folder_is_neither_listed_nor_served() {
    let ws = workspace("symlinked");
    let elsewhere = workspace("elsewhere");
    write_worker(
        &elsewhere,
        "hidden",
        &record("hidden"),
        Some(line("user", "secret").as_bytes()),
    );
    symlink(folder(&elsewhere, "hidden"), folder(&ws, "hidden")).unwrap();
    write_worker(&ws, "plain", &record("plain"), None);
    let rt = LocalCompatRuntime::new(ws);
    assert_eq!(listed(&rt).await, ["plain"]);
    for err in [
        answers(rt.worker(&id("hidden"))).await.unwrap_err(),
        answers(rt.transcript(&id("hidden"), TranscriptQuery::default()))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), ErrorCode::UnknownWorker);
    }
    assert!(codes(&rt).await.contains(&"symlinked_worker".to_owned()));
}

#[tokio::test]
async fn a_transcript_page_reads_only_what_changed() {
    let ws = workspace("incremental");
    let lines: String = (0..1_000).map(|n| line("user", &format!("m{n}"))).collect();
    write_worker(&ws, "long", &record("long"), Some(lines.as_bytes()));
    let rt = LocalCompatRuntime::new(ws.clone());
    let page = answers(rt.transcript(
        &id("long"),
        TranscriptQuery {
            start: Some(990),
            limit: Some(5),
        },
    ))
    .await
    .unwrap();
    assert_eq!(page.total, 1_000);
    assert_eq!(page.entries[0].text, "m990");
    assert_eq!(page.next_start, Some(995));
    let scanned = rt.read_stats().transcript_bytes_scanned;
    assert_eq!(scanned, lines.len() as u64, "indexed once");
    // Another page of the same file reads no more of it.
    answers(rt.transcript(&id("long"), TranscriptQuery::default()))
        .await
        .unwrap();
    assert_eq!(rt.read_stats().transcript_bytes_scanned, scanned);
    // An append is scanned from where the index ended.
    let extra = line("assistant", "appended");
    let path = folder(&ws, "long").join("transcript.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, extra.as_bytes()).unwrap();
    let page = answers(rt.transcript(
        &id("long"),
        TranscriptQuery {
            start: Some(1_000),
            limit: None,
        },
    ))
    .await
    .unwrap();
    assert_eq!(page.total, 1_001);
    assert_eq!(page.entries[0].text, "appended");
    assert_eq!(
        rt.read_stats().transcript_bytes_scanned,
        scanned + extra.len() as u64
    );
    // A replaced file is scanned again from the start.
    std::fs::write(&path, line("user", "fresh")).unwrap();
    assert_eq!(texts(&rt, "long").await, ["fresh"]);
}

#[tokio::test]
async fn a_read_past_its_deadline_answers_runtime_unavailable() {
    let ws = workspace("deadline");
    for n in 0..2_000 {
        let name = format!("w-{n:05}");
        write_worker(&ws, &name, &record(&name), None);
    }
    // A deadline no scan of 2,000 records can meet.
    let limits = LocalCompatLimits {
        read_deadline: Duration::ZERO,
        ..LocalCompatLimits::default()
    };
    let rt = LocalCompatRuntime::with_limits(ws.clone(), limits);
    let err = answers(rt.list_workers(WorkerListQuery::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RuntimeUnavailable);
    assert!(
        err.to_string().contains("did not answer within 0 ms"),
        "{err}"
    );
    assert!(!err.to_string().contains(ws.to_str().unwrap()), "{err}");
    // With the default deadline the same folder answers.
    let rt = LocalCompatRuntime::new(ws);
    assert_eq!(listed(&rt).await.len(), 50);
}
