//! Helpers shared by the cases.

use std::time::Duration;

use crate::capabilities::Capabilities;
use crate::dto::{
    BusyPolicy, CreateWorkerRequest, EntryRole, EventQuery, InputRequest, TranscriptEntry,
    TranscriptQuery, WorkerEvent, WorkerState,
};
use crate::error::{ErrorCode, RuntimeError};
use crate::id::{ProfileName, WorkerId};
use crate::runtime::DynRuntime;

use super::TURN_TIMEOUT;

pub(super) fn assert_code<T: std::fmt::Debug>(
    result: Result<T, RuntimeError>,
    code: ErrorCode,
    what: &str,
) {
    match result {
        Err(err) => assert_eq!(err.code(), code, "{what}: got {err}"),
        Ok(value) => panic!("{what}: expected {code}, got Ok({value:?})"),
    }
}

pub(super) async fn create(rt: &DynRuntime, profile: Option<&str>) -> WorkerId {
    let request = CreateWorkerRequest {
        display_name: Some("conformance".into()),
        profile: profile.map(|p| ProfileName::new(p).unwrap()),
        intent: None,
    };
    rt.create_worker(request).await.unwrap().summary.worker_id
}

pub(super) async fn send(
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
pub(super) async fn wait_idle(rt: &DynRuntime, worker: &WorkerId) {
    let deadline = tokio::time::Instant::now() + TURN_TIMEOUT;
    loop {
        let detail = rt.worker(worker).await.unwrap();
        if detail.summary.state == WorkerState::Idle && detail.summary.pending_inputs == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker {worker} did not become idle: {detail:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the Worker is running a turn.
pub(super) async fn wait_running(rt: &DynRuntime, worker: &WorkerId) {
    let deadline = tokio::time::Instant::now() + TURN_TIMEOUT;
    while rt.worker(worker).await.unwrap().summary.state != WorkerState::Running {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker {worker} never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(super) async fn all_events(rt: &DynRuntime, worker: &WorkerId) -> Vec<WorkerEvent> {
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

pub(super) async fn all_entries(rt: &DynRuntime, worker: &WorkerId) -> Vec<TranscriptEntry> {
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

pub(super) fn user_texts(entries: &[TranscriptEntry]) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| e.role == EntryRole::User)
        .map(|e| e.text.as_str())
        .collect()
}

pub(super) fn caps(rt: &DynRuntime) -> Capabilities {
    rt.capabilities()
}
