//! Rollback: the last turns taken back, kept in the transcript.

use crate::dto::{BusyPolicy, EntryStatus, RollbackRequest, WorkerEventKind};
use crate::error::ErrorCode;
use crate::runtime::DynRuntime;

use super::support::*;
use super::{Outcome, SLOW_PROFILE};

/// Rolling back N turns marks every entry from the Nth-last turn's input
/// on `rolled_back`, keeps indices, logs `rolled_back` naming the first
/// index; more turns than ran, or 0, is `invalid_request`; a running turn
/// makes it `worker_busy`. Without `rollback` it is `unsupported_operation`.
pub async fn rollback(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    if !caps.rollback {
        let any = crate::id::WorkerId::new("w-nope").unwrap();
        assert_code(
            rt.rollback(&any, RollbackRequest { turns: 1 })
                .await
                .map(|_| ()),
            ErrorCode::UnsupportedOperation,
            "rollback without the capability",
        );
        return Outcome::Skipped("rollback");
    }
    require!(caps, create_worker, send_input, transcript);
    let worker = create(rt, None).await;
    for text in ["one", "two", "three"] {
        send(rt, &worker, text, BusyPolicy::Reject).await;
        wait_idle(rt, &worker).await;
    }
    let before = all_entries(rt, &worker).await;
    for turns in [0, 4] {
        assert_code(
            rt.rollback(&worker, RollbackRequest { turns })
                .await
                .map(|_| ()),
            ErrorCode::InvalidRequest,
            "rollback of 0 or of more turns than ran",
        );
    }
    rt.rollback(&worker, RollbackRequest { turns: 2 })
        .await
        .unwrap();
    let after = all_entries(rt, &worker).await;
    assert_eq!(after.len(), before.len(), "entries are kept");
    let first = before
        .iter()
        .find(|e| e.text == "two")
        .map(|e| e.index)
        .unwrap();
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.index, new.index);
        assert_eq!(old.text, new.text);
        if new.index >= first {
            assert_eq!(new.status, EntryStatus::RolledBack, "{new:?}");
        } else {
            assert_eq!(new.status, old.status, "{new:?}");
        }
    }
    if caps.events_poll {
        let events = all_events(rt, &worker).await;
        assert!(events.iter().any(|e| matches!(
            e.kind,
            WorkerEventKind::RolledBack { first_index, turns: 2 } if first_index == first
        )));
    }
    // Only "one" is left to take back; then nothing.
    rt.rollback(&worker, RollbackRequest { turns: 1 })
        .await
        .unwrap();
    assert_code(
        rt.rollback(&worker, RollbackRequest { turns: 1 })
            .await
            .map(|_| ()),
        ErrorCode::InvalidRequest,
        "nothing left to roll back",
    );
    // Busy while a turn runs.
    if caps.create_worker {
        let slow = create(rt, Some(SLOW_PROFILE)).await;
        send(rt, &slow, "first", BusyPolicy::Reject).await;
        wait_idle(rt, &slow).await;
        send(rt, &slow, "second", BusyPolicy::Reject).await;
        assert_code(
            rt.rollback(&slow, RollbackRequest { turns: 1 })
                .await
                .map(|_| ()),
            ErrorCode::WorkerBusy,
            "rollback while a turn runs",
        );
        wait_idle(rt, &slow).await;
    }
    Outcome::Passed
}
