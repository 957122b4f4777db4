//! Worker lifecycle: create, list, profiles, stop and cancel, unknown ids, unsupported operations.

use std::time::Duration;

use crate::dto::{
    BusyPolicy, CreateWorkerRequest, EntryStatus, EventQuery, InputRequest, TranscriptQuery,
    WorkerEventKind, WorkerListQuery, WorkerState,
};
use crate::error::{ErrorCode, Operation, RuntimeError};
use crate::id::{EventCursor, ProfileName, WorkerId};
use crate::runtime::DynRuntime;

use super::support::*;
use super::{Outcome, SLOW_PROFILE};

/// Created Workers show up in the list and in detail with their runtime id.
pub async fn create_list_detail(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(caps, create_worker, list_workers);
    let detail = rt
        .create_worker(CreateWorkerRequest {
            display_name: Some("Conformance worker".into()),
            intent: Some("check the contract".into()),
            ..CreateWorkerRequest::default()
        })
        .await
        .unwrap();
    let summary = &detail.summary;
    assert_eq!(&summary.runtime_id, rt.id());
    assert_eq!(summary.display_name, "Conformance worker");
    assert_eq!(summary.state, WorkerState::Idle);
    assert_eq!(summary.transcript_len, 0);
    assert_eq!(detail.intent.as_deref(), Some("check the contract"));
    assert_eq!(rt.worker(&summary.worker_id).await.unwrap(), detail);

    let second = create(rt, None).await;
    assert_ne!(second, summary.worker_id, "worker ids are unique");

    // Page through the whole list one at a time: both appear exactly once.
    let seen: Vec<WorkerId> = list_one_by_one(rt)
        .await
        .into_iter()
        .map(|w| w.worker_id)
        .collect();
    assert!(seen.contains(&summary.worker_id) && seen.contains(&second));
    Outcome::Passed
}

/// No profile means the default, flagged as a fallback; an unknown profile
/// is an error, never a silent fallback.
pub async fn fallback_profile(rt: &DynRuntime) -> Outcome {
    require!(caps(rt), create_worker);
    let fallback = rt
        .create_worker(CreateWorkerRequest::default())
        .await
        .unwrap();
    assert!(fallback.summary.profile.fallback);
    let named = rt
        .create_worker(CreateWorkerRequest {
            profile: Some(fallback.summary.profile.name.clone()),
            ..CreateWorkerRequest::default()
        })
        .await
        .unwrap();
    assert!(!named.summary.profile.fallback);
    assert_eq!(named.summary.profile.name, fallback.summary.profile.name);
    let unknown = rt
        .create_worker(CreateWorkerRequest {
            profile: Some(ProfileName::new("no-such-profile").unwrap()),
            ..CreateWorkerRequest::default()
        })
        .await;
    assert_code(unknown, ErrorCode::UnknownProfile, "unknown profile");
    Outcome::Passed
}

/// Cancel and stop end the turn, are idempotent and emit nothing when
/// repeated; input after stop is `worker_stopped`.
pub async fn stop_cancel_idempotent(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(caps, create_worker, send_input, cancel, stop, busy_queue);
    let worker = create(rt, Some(SLOW_PROFILE)).await;
    send(rt, &worker, "to cancel", BusyPolicy::Reject).await;
    wait_running(rt, &worker).await;
    send(rt, &worker, "queued", BusyPolicy::Queue).await;
    let cancelled = rt.cancel(&worker).await.unwrap();
    assert_eq!(cancelled.summary.state, WorkerState::Idle);
    assert_eq!(cancelled.summary.pending_inputs, 0);
    let again = rt.cancel(&worker).await.unwrap();
    assert_eq!(
        again.summary.last_cursor, cancelled.summary.last_cursor,
        "repeat cancel is silent"
    );

    // Still usable after cancel.
    send(rt, &worker, "after cancel", BusyPolicy::Reject).await;
    wait_running(rt, &worker).await;
    let stopped = rt.stop(&worker).await.unwrap();
    assert_eq!(stopped.summary.state, WorkerState::Stopped);
    let again = rt.stop(&worker).await.unwrap();
    assert_eq!(
        again.summary.last_cursor, stopped.summary.last_cursor,
        "repeat stop is silent"
    );
    assert_eq!(again.summary.state, WorkerState::Stopped);
    assert_code(
        rt.send_input(&worker, InputRequest::new("too late")).await,
        ErrorCode::WorkerStopped,
        "input after stop",
    );
    // Give a cancelled turn a moment to misbehave, then check nothing moved.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        rt.worker(&worker).await.unwrap().summary.last_cursor,
        stopped.summary.last_cursor
    );
    if caps.transcript {
        let entries = all_entries(rt, &worker).await;
        assert_eq!(
            user_texts(&entries),
            ["to cancel", "queued", "after cancel"]
        );
        assert!(
            entries.iter().all(|e| e.status != EntryStatus::Partial),
            "nothing is left partial: {entries:?}"
        );
    }
    if caps.events_poll {
        let events = all_events(rt, &worker).await;
        let stops = events
            .iter()
            .filter(|e| matches!(e.kind, WorkerEventKind::WorkerStopped {}))
            .count();
        assert_eq!(stops, 1);
        assert_eq!(events.last().unwrap().kind_name(), "worker_stopped");
    }
    Outcome::Passed
}

/// A Worker the Runtime does not host is `unknown_worker` everywhere.
pub async fn unknown_worker(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    let missing = WorkerId::new("conformance-no-such-worker").unwrap();
    let err = rt.worker(&missing).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownWorker);
    assert_eq!(err.runtime_id(), Some(rt.id()));
    assert_eq!(err.worker_id(), Some(&missing));
    if caps.send_input {
        assert_code(
            rt.send_input(&missing, InputRequest::new("hi")).await,
            ErrorCode::UnknownWorker,
            "send to missing",
        );
    }
    if caps.transcript {
        assert_code(
            rt.transcript(&missing, TranscriptQuery::default()).await,
            ErrorCode::UnknownWorker,
            "transcript of missing",
        );
    }
    if caps.events_poll {
        assert_code(
            rt.events(&missing, EventQuery::default()).await,
            ErrorCode::UnknownWorker,
            "events of missing",
        );
    }
    if caps.stop {
        assert_code(
            rt.stop(&missing).await,
            ErrorCode::UnknownWorker,
            "stop missing",
        );
    }
    if caps.cancel {
        assert_code(
            rt.cancel(&missing).await,
            ErrorCode::UnknownWorker,
            "cancel missing",
        );
    }
    if caps.events_subscribe {
        let result = rt.subscribe(&missing, None).await.map(|_| ());
        assert_code(result, ErrorCode::UnknownWorker, "subscribe to missing");
    }
    Outcome::Passed
}

/// Ids that break the rules cannot be built, and convert to `invalid_id`;
/// a cursor the Runtime never issued is `cursor_expired`.
pub async fn invalid_ids(rt: &DynRuntime) -> Outcome {
    for bad in ["", "../x", "a b", "a/b", "line\nbreak", ".."] {
        let err = RuntimeError::from(WorkerId::new(bad).unwrap_err());
        assert_eq!(err.code(), ErrorCode::InvalidId, "{bad:?}");
    }
    // A cursor the Runtime never issued is refused with a typed error.
    if caps(rt).events_poll && caps(rt).create_worker {
        let worker = create(rt, None).await;
        let bogus = EventCursor::new("not-a-cursor-of-this-runtime").unwrap();
        let err = rt
            .events(
                &worker,
                EventQuery {
                    after: Some(bogus),
                    limit: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::CursorExpired, "{err}");
    }
    Outcome::Passed
}

/// Every operation whose capability is off returns `unsupported_operation`.
pub async fn unsupported_operations(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    let some_worker = WorkerId::new("conformance-unsupported").unwrap();
    let check = |op: Operation, result: Result<(), RuntimeError>| {
        if !caps.supports(op) {
            let err = result.unwrap_err();
            assert_eq!(err.code(), ErrorCode::UnsupportedOperation, "{op}: {err}");
        }
    };
    check(
        Operation::ListWorkers,
        rt.list_workers(WorkerListQuery::default())
            .await
            .map(|_| ()),
    );
    check(Operation::Cancel, rt.cancel(&some_worker).await.map(|_| ()));
    check(Operation::Stop, rt.stop(&some_worker).await.map(|_| ()));
    check(
        Operation::DeleteWorker,
        rt.delete_worker(&some_worker).await,
    );
    check(
        Operation::SendInput,
        rt.send_input(&some_worker, InputRequest::new("x"))
            .await
            .map(|_| ()),
    );
    check(
        Operation::Events,
        rt.events(&some_worker, EventQuery::default())
            .await
            .map(|_| ()),
    );
    check(
        Operation::Subscribe,
        rt.subscribe(&some_worker, None).await.map(|_| ()),
    );
    if !caps.create_worker {
        let result = rt.create_worker(CreateWorkerRequest::default()).await;
        assert_code(result, ErrorCode::UnsupportedOperation, "create");
    }
    Outcome::Passed
}

/// Delete stops the Worker (its stream ends after `worker_stopped`) and
/// forgets it: every later call naming it is `unknown_worker`, its cursors
/// included, and the list and counts no longer have it.
pub async fn delete_worker(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(caps, create_worker, send_input, delete_worker, list_workers);
    let worker = create(rt, Some(SLOW_PROFILE)).await;
    let accepted = send(rt, &worker, "about to be deleted", BusyPolicy::Reject).await;
    let before = rt.status().await.unwrap().workers.total();
    let stream = if caps.events_subscribe {
        Some(rt.subscribe(&worker, None).await.unwrap())
    } else {
        None
    };
    rt.delete_worker(&worker).await.unwrap();
    if let Some(stream) = stream {
        use futures_util::StreamExt;
        let events: Vec<_> = tokio::time::timeout(super::TURN_TIMEOUT, stream.collect::<Vec<_>>())
            .await
            .expect("the stream ends once the Worker is deleted");
        let last = events.last().unwrap().as_ref().unwrap();
        assert_eq!(last.kind_name(), "worker_stopped");
    }
    assert_code(
        rt.worker(&worker).await,
        ErrorCode::UnknownWorker,
        "detail after delete",
    );
    assert_code(
        rt.send_input(&worker, InputRequest::new("x")).await,
        ErrorCode::UnknownWorker,
        "input after delete",
    );
    if caps.events_poll {
        let query = EventQuery {
            after: Some(accepted.cursor.clone()),
            limit: None,
        };
        assert_code(
            rt.events(&worker, query).await,
            ErrorCode::UnknownWorker,
            "events after delete",
        );
    }
    if caps.transcript {
        assert_code(
            rt.transcript(&worker, TranscriptQuery::default()).await,
            ErrorCode::UnknownWorker,
            "transcript after delete",
        );
    }
    assert_code(
        rt.delete_worker(&worker).await,
        ErrorCode::UnknownWorker,
        "second delete",
    );
    let listed = list_one_by_one(rt).await;
    assert!(
        listed.iter().all(|w| w.worker_id != worker),
        "deleted Workers are not listed"
    );
    assert_eq!(rt.status().await.unwrap().workers.total(), before - 1);
    Outcome::Passed
}
