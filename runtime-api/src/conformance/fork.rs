//! Fork: a new Worker from a copy of another's completed entries.

use crate::dto::{BusyPolicy, EntryStatus, ForkRequest, Metadata, WorkerEventKind, WorkerState};
use crate::error::ErrorCode;
use crate::runtime::DynRuntime;

use super::Outcome;
use super::support::*;

/// A fork gets the source's profile and its completed entries before `at`
/// (re-indexed from 0), a fresh event log starting with `worker_created`,
/// its own name and metadata, and `forked_from`; the source is unchanged
/// and both go on independently. `at` past the end is `invalid_request`.
/// Without `fork_worker` it is `unsupported_operation`.
pub async fn fork_worker(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    if !caps.fork_worker {
        let any = crate::id::WorkerId::new("w-nope").unwrap();
        assert_code(
            rt.fork_worker(&any, ForkRequest::default())
                .await
                .map(|_| ()),
            ErrorCode::UnsupportedOperation,
            "fork without the capability",
        );
        return Outcome::Skipped("fork_worker");
    }
    require!(caps, create_worker, send_input, transcript);
    let source = create(rt, None).await;
    for text in ["one", "two"] {
        send(rt, &source, text, BusyPolicy::Reject).await;
        wait_idle(rt, &source).await;
    }
    let source_entries = all_entries(rt, &source).await;
    let source_detail = rt.worker(&source).await.unwrap();

    let metadata: Metadata = [("branch".to_owned(), "b".to_owned())].into();
    let fork = rt
        .fork_worker(
            &source,
            ForkRequest {
                at: Some(2),
                display_name: Some("the fork".into()),
                metadata: metadata.clone(),
            },
        )
        .await
        .unwrap();
    assert_ne!(fork.summary.worker_id, source);
    assert_eq!(fork.summary.display_name, "the fork");
    assert_eq!(fork.summary.metadata, metadata);
    assert_eq!(
        fork.summary.profile.name,
        source_detail.summary.profile.name
    );
    assert_eq!(fork.summary.state, WorkerState::Idle);
    let forked_from = fork.forked_from.clone().expect("forked_from");
    assert_eq!(
        (forked_from.worker_id, forked_from.transcript_index),
        (source.clone(), 2)
    );
    let copied = all_entries(rt, &fork.summary.worker_id).await;
    let texts: Vec<&str> = copied.iter().map(|e| e.text.as_str()).collect();
    let expected: Vec<&str> = source_entries[..2]
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(texts, expected);
    assert!(copied.iter().enumerate().all(|(i, e)| e.index == i as u64));
    assert!(copied.iter().all(|e| e.status == EntryStatus::Complete));
    if caps.events_poll {
        let events = all_events(rt, &fork.summary.worker_id).await;
        assert!(matches!(
            events[0].kind,
            WorkerEventKind::WorkerCreated { .. }
        ));
        assert!(
            events
                .iter()
                .all(|e| !matches!(e.kind, WorkerEventKind::TextDelta { .. })),
            "a fresh log: no copied events"
        );
    }
    // Both go on apart; the source did not change.
    send(rt, &fork.summary.worker_id, "three", BusyPolicy::Reject).await;
    wait_idle(rt, &fork.summary.worker_id).await;
    assert_eq!(all_entries(rt, &source).await, source_entries);
    // A default fork copies everything; `at` past the end is refused.
    let whole = rt
        .fork_worker(&source, ForkRequest::default())
        .await
        .unwrap();
    assert_eq!(
        all_entries(rt, &whole.summary.worker_id).await.len(),
        source_entries.len()
    );
    assert_code(
        rt.fork_worker(
            &source,
            ForkRequest {
                at: Some(99),
                ..ForkRequest::default()
            },
        )
        .await
        .map(|_| ()),
        ErrorCode::InvalidRequest,
        "at past the end",
    );
    Outcome::Passed
}
