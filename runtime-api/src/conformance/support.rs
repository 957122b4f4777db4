//! Helpers for the tests of Runtime implementations, shared by the
//! conformance cases and exported (feature `test-util`) as
//! `yoi_runtime_api::test_util`, so no crate keeps its own copy.
//!
//! Waiting is driven by the Runtime's own events where it has them: a
//! helper subscribes from the Worker's last cursor and re-reads the Worker
//! after each event, so nothing sleeps in a loop unless the Runtime cannot
//! be subscribed to.

use std::time::Duration;

use futures_util::StreamExt;

use crate::capabilities::Capabilities;
use crate::dto::{
    BusyPolicy, CreateWorkerRequest, EntryRole, EventQuery, InputRequest, TranscriptEntry,
    TranscriptQuery, WorkerEvent, WorkerListQuery, WorkerState, WorkerSummary,
};
use crate::error::{ErrorCode, RuntimeError};
use crate::id::{ProfileName, WorkerId};
use crate::runtime::DynRuntime;

use super::TURN_TIMEOUT;

/// Asserts that `result` failed with `code`.
pub fn assert_code<T: std::fmt::Debug>(
    result: Result<T, RuntimeError>,
    code: ErrorCode,
    what: &str,
) {
    match result {
        Err(err) => assert_eq!(err.code(), code, "{what}: got {err}"),
        Ok(value) => panic!("{what}: expected {code}, got Ok({value:?})"),
    }
}

/// Creates a Worker with `profile` (the default when `None`); returns its id.
pub async fn create(rt: &DynRuntime, profile: Option<&str>) -> WorkerId {
    let request = CreateWorkerRequest {
        display_name: Some("conformance".into()),
        profile: profile.map(|p| ProfileName::new(p).unwrap()),
        ..CreateWorkerRequest::default()
    };
    rt.create_worker(request).await.unwrap().summary.worker_id
}

/// Sends `text` with `policy`; panics when it is refused.
pub async fn send(
    rt: &DynRuntime,
    worker: &WorkerId,
    text: &str,
    policy: BusyPolicy,
) -> crate::dto::InputAcceptance {
    rt.send_input(worker, InputRequest::new(text).on_busy(policy))
        .await
        .unwrap_or_else(|err| panic!("send_input({text:?}, {policy:?}) failed: {err}"))
}

/// Waits until the Worker is idle with nothing queued.
pub async fn wait_idle(rt: &DynRuntime, worker: &WorkerId) {
    wait_for(rt, worker, "idle with nothing queued", |s| {
        s.state == WorkerState::Idle && s.pending_inputs == 0
    })
    .await;
}

/// Waits until the Worker is running a turn.
pub async fn wait_running(rt: &DynRuntime, worker: &WorkerId) {
    wait_for(rt, worker, "running", |s| s.state == WorkerState::Running).await;
}

/// Waits until the Worker's summary satisfies `done`, re-reading it after
/// each of its events (or every 10 ms when the Runtime cannot be
/// subscribed to). Panics after [`TURN_TIMEOUT`].
pub async fn wait_for(
    rt: &DynRuntime,
    worker: &WorkerId,
    what: &str,
    done: impl Fn(&WorkerSummary) -> bool,
) {
    let deadline = tokio::time::Instant::now() + TURN_TIMEOUT;
    let first = rt.worker(worker).await.unwrap().summary;
    if done(&first) {
        return;
    }
    // Subscribed after the read, from the cursor it saw: an event in
    // between is replayed, so no change is missed.
    let mut events = if rt.capabilities().events_subscribe {
        rt.subscribe(worker, first.last_cursor.clone()).await.ok()
    } else {
        None
    };
    loop {
        let summary = rt.worker(worker).await.unwrap().summary;
        if done(&summary) {
            return;
        }
        let woke = match events.as_mut() {
            Some(stream) => tokio::time::timeout_at(deadline, stream.next())
                .await
                .map(|item| item.is_some()),
            None => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(true)
            }
        };
        match woke {
            Ok(true) => {}
            // The stream ended (the Worker stopped): check once more.
            Ok(false) => events = None,
            Err(_) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker {worker} did not become {what}: {summary:?}"
        );
    }
}

/// Every retained event of a Worker, page by page.
pub async fn all_events(rt: &DynRuntime, worker: &WorkerId) -> Vec<WorkerEvent> {
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let page = rt
            .events(
                worker,
                EventQuery {
                    after: after.clone(),
                    limit: None,
                },
            )
            .await
            .unwrap();
        events.extend(page.events);
        after = page.next_cursor;
        if !page.has_more {
            return events;
        }
    }
}

/// Every Worker, listed one per page, checking that the list is sorted by
/// id with no Worker twice.
pub async fn list_one_by_one(rt: &DynRuntime) -> Vec<WorkerSummary> {
    let mut seen: Vec<WorkerSummary> = Vec::new();
    let mut after = None;
    loop {
        let page = rt
            .list_workers(WorkerListQuery {
                after: after.clone(),
                limit: Some(1),
                ..WorkerListQuery::default()
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 1, "a page of 1 has at most 1 Worker");
        seen.extend(page.items);
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let ids: Vec<&WorkerId> = seen.iter().map(|s| &s.worker_id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids, "list is sorted by id without duplicates");
    seen
}

/// A fresh, empty folder under the system temp dir, unique to this process
/// and call.
pub fn temp_dir(label: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "yoi-test-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every retained transcript entry of a Worker, page by page.
pub async fn all_entries(rt: &DynRuntime, worker: &WorkerId) -> Vec<TranscriptEntry> {
    let mut entries = Vec::new();
    let mut start = Some(0);
    while let Some(s) = start {
        let page = rt
            .transcript(
                worker,
                TranscriptQuery {
                    start: Some(s),
                    limit: None,
                },
            )
            .await
            .unwrap();
        entries.extend(page.entries);
        start = page.next_start;
    }
    entries
}

/// The texts of the user entries, in order.
pub fn user_texts(entries: &[TranscriptEntry]) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| e.role == EntryRole::User)
        .map(|e| e.text.as_str())
        .collect()
}

/// The Runtime's capabilities.
pub fn caps(rt: &DynRuntime) -> Capabilities {
    rt.capabilities()
}
