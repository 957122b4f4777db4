//! The Runtime itself: summary, status and the runtime-level stream.

use futures_util::StreamExt;

use crate::dto::{RuntimeState, WorkerEventKind};
use crate::error::ErrorCode;
use crate::runtime::DynRuntime;

use super::support::*;
use super::{Outcome, TURN_TIMEOUT};

/// The summary names the Runtime and its capabilities as `id()` and
/// `capabilities()` do; status names the Runtime and counts at least the
/// Workers it lists.
pub async fn summary_and_status(rt: &DynRuntime) -> Outcome {
    let summary = rt.summary().await.unwrap();
    assert_eq!(&summary.runtime_id, rt.id());
    assert_eq!(summary.capabilities, rt.capabilities());
    assert!(!summary.display_name.is_empty());
    // Twice, to show it does not change.
    assert_eq!(rt.summary().await.unwrap(), summary);
    let status = rt.status().await.unwrap();
    assert_eq!(&status.runtime_id, rt.id());
    assert_ne!(
        status.state,
        RuntimeState::Unavailable,
        "a fresh runtime serves"
    );
    if rt.capabilities().list_workers {
        let page = rt.list_workers(Default::default()).await.unwrap();
        assert!(
            status.workers.total() >= page.items.len() as u64,
            "{status:?} counts fewer Workers than the first page lists"
        );
    }
    Outcome::Passed
}

/// The profile list is in name order with exactly one default, which is
/// the profile a Worker created without one gets; without `list_profiles`
/// it is `unsupported_operation`.
pub async fn profile_list(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    if !caps.list_profiles {
        assert_code(
            rt.profiles().await.map(|_| ()),
            ErrorCode::UnsupportedOperation,
            "profiles without list_profiles",
        );
        return Outcome::Skipped("list_profiles");
    }
    let profiles = rt.profiles().await.unwrap().items;
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "in name order, each once");
    let defaults: Vec<_> = profiles.iter().filter(|p| p.default).collect();
    assert_eq!(defaults.len(), 1, "exactly one default: {profiles:?}");
    assert!(profiles.iter().all(|p| !p.backend.is_empty()));
    if caps.create_worker {
        let worker = create(rt, None).await;
        let detail = rt.worker(&worker).await.unwrap();
        assert_eq!(detail.summary.profile.name, defaults[0].name);
    }
    Outcome::Passed
}

/// The runtime-level stream reports a Worker's creation and stop, with
/// cursors of its own; without `events_subscribe` it is
/// `unsupported_operation`.
pub async fn runtime_stream(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    if !caps.events_subscribe {
        assert_code(
            rt.subscribe_runtime(None).await.map(|_| ()),
            ErrorCode::UnsupportedOperation,
            "subscribe_runtime without events_subscribe",
        );
        return Outcome::Skipped("events_subscribe");
    }
    require!(caps, create_worker, stop);
    // A cursor this stream never issued (from the future, another log or
    // an earlier process) is `cursor_expired`, like a Worker's.
    for foreign in ["999999999", "999999999.zzzz", "1.not-this-log"] {
        assert_code(
            rt.subscribe_runtime(Some(foreign.parse().unwrap()))
                .await
                .map(|_| ()),
            ErrorCode::CursorExpired,
            "a runtime stream cursor never issued",
        );
    }
    let mut stream = rt.subscribe_runtime(None).await.unwrap();
    let worker = create(rt, None).await;
    rt.stop(&worker).await.unwrap();
    let mut kinds = Vec::new();
    let mut cursors = Vec::new();
    while !kinds.contains(&"worker_stopped") {
        let event = tokio::time::timeout(TURN_TIMEOUT, stream.next())
            .await
            .expect("the runtime stream reports the stop")
            .expect("the runtime stream does not end")
            .unwrap();
        if event.worker_id == worker {
            kinds.push(event.kind_name());
            if let WorkerEventKind::WorkerCreated { display_name, .. } = &event.kind {
                assert_eq!(display_name, "conformance");
            }
        }
        cursors.push(event.cursor);
    }
    assert_eq!(kinds.first(), Some(&"worker_created"), "{kinds:?}");
    let mut distinct = cursors.clone();
    distinct.dedup();
    assert_eq!(distinct, cursors, "cursors are distinct");
    // Resuming after the last cursor replays nothing already seen.
    let last = cursors.last().cloned();
    let mut resumed = rt.subscribe_runtime(last).await.unwrap();
    let again = tokio::time::timeout(std::time::Duration::from_millis(100), resumed.next()).await;
    assert!(
        again.is_err(),
        "nothing new after the last cursor: {again:?}"
    );
    Outcome::Passed
}
