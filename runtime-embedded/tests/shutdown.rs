//! `EmbeddedRuntime::shutdown`: running turns end failed, their tasks are
//! waited for, and the Runtime refuses new input.

mod common;

use std::time::Duration;

use yoi_runtime_api::conformance::SLOW_PROFILE;
use yoi_runtime_api::dto::{
    BusyPolicy, EntryRole, EntryStatus, InputRequest, RuntimeState, WorkerEventKind, WorkerState,
};
use yoi_runtime_api::test_util;
use yoi_runtime_api::{ErrorCode, Runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_running_turns_and_waits_for_their_tasks() {
    let rt = common::runtime_with_slow_profile();
    let busy = test_util::create(&rt, Some(SLOW_PROFILE)).await;
    let idle = test_util::create(&rt, None).await;
    test_util::send(&rt, &busy, "long one", BusyPolicy::Reject).await;
    test_util::send(&rt, &busy, "queued behind", BusyPolicy::Queue).await;
    test_util::wait_running(&rt, &busy).await;

    tokio::time::timeout(Duration::from_secs(5), rt.shutdown())
        .await
        .expect("shutdown waits only for the turn tasks, which end at once");

    let detail = rt.worker(&busy).await.unwrap().summary;
    assert_eq!(detail.state, WorkerState::Idle);
    assert_eq!(detail.pending_inputs, 1, "queued inputs stay queued");
    let events = test_util::all_events(&rt, &busy).await;
    let failed = events
        .iter()
        .find_map(|e| match &e.kind {
            WorkerEventKind::TurnFailed { reason, .. } => Some(reason.message.clone()),
            _ => None,
        })
        .expect("the running turn ended failed");
    assert!(failed.contains("shut down"), "{failed}");
    let failed_at = events
        .iter()
        .position(|e| e.kind_name() == "turn_failed")
        .unwrap();
    assert!(
        events[failed_at..]
            .iter()
            .all(|e| !matches!(e.kind, WorkerEventKind::TextDelta { .. })),
        "nothing is written after the turn failed"
    );
    let entries = test_util::all_entries(&rt, &busy).await;
    assert_eq!(entries[1].role, EntryRole::Assistant);
    assert_eq!(entries[1].status, EntryStatus::Failed);

    // New input is refused on every Worker; reads go on.
    for worker in [&busy, &idle] {
        let err = rt
            .send_input(worker, InputRequest::new("after shutdown"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::RuntimeUnavailable);
    }
    assert_eq!(rt.status().await.unwrap().state, RuntimeState::Unavailable);
    // Idempotent.
    rt.shutdown().await;
}
