//! Inputs: acceptance, validation, busy policies and idempotent retries.

use crate::dto::{BusyPolicy, EntryRole, EntryStatus, InputRequest, WorkerEvent, WorkerEventKind};
use crate::error::{ErrorCode, RuntimeError};
use crate::id::InputId;
use crate::runtime::DynRuntime;

use super::support::*;
use super::{Outcome, SLOW_PROFILE};

/// An input is accepted before its turn ends, and the turn produces a reply.
pub async fn input_acceptance(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(caps, create_worker, send_input, transcript, events_poll);
    let worker = create(rt, None).await;
    let acceptance = send(rt, &worker, "hello conformance", BusyPolicy::Reject).await;
    assert_eq!(acceptance.transcript_index, 0);
    wait_idle(rt, &worker).await;

    let entries = all_entries(rt, &worker).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].role, EntryRole::User);
    assert_eq!(entries[0].text, "hello conformance");
    assert_eq!(entries[0].input_id.as_ref(), Some(&acceptance.input_id));
    assert_eq!(entries[1].role, EntryRole::Assistant);
    assert_eq!(entries[1].status, EntryStatus::Complete);
    assert!(!entries[1].text.is_empty());

    // The deltas of the turn add up to the reply.
    let events = all_events(rt, &worker).await;
    let deltas: String = events
        .iter()
        .filter_map(|e| match &e.kind {
            WorkerEventKind::TextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, entries[1].text);
    let kinds: Vec<&str> = events.iter().map(WorkerEvent::kind_name).collect();
    for expected in [
        "worker_created",
        "input_accepted",
        "turn_started",
        "turn_completed",
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected} missing from {kinds:?}"
        );
    }
    let detail = rt.worker(&worker).await.unwrap();
    assert_eq!(detail.summary.transcript_len, 2);
    assert_eq!(
        detail.summary.last_cursor.as_ref(),
        Some(&events.last().unwrap().cursor)
    );
    Outcome::Passed
}

/// Blank and oversized inputs are refused with typed errors.
pub async fn invalid_input(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(caps, create_worker, send_input);
    let worker = create(rt, None).await;
    assert_code(
        rt.send_input(&worker, InputRequest::new("  \n\t")).await,
        ErrorCode::InvalidRequest,
        "blank input",
    );
    if let Some(max) = caps.max_input_bytes {
        let text = "x".repeat(usize::try_from(max).unwrap() + 1);
        assert_code(
            rt.send_input(&worker, InputRequest::new(text)).await,
            ErrorCode::PayloadTooLarge,
            "oversized input",
        );
    }
    assert_eq!(rt.worker(&worker).await.unwrap().summary.transcript_len, 0);
    Outcome::Passed
}

/// `on_busy: reject` refuses input while a turn runs.
pub async fn busy_reject(rt: &DynRuntime) -> Outcome {
    require!(caps(rt), create_worker, send_input);
    let worker = create(rt, Some(SLOW_PROFILE)).await;
    send(rt, &worker, "first", BusyPolicy::Reject).await;
    wait_running(rt, &worker).await;
    assert_code(
        rt.send_input(&worker, InputRequest::new("second")).await,
        ErrorCode::WorkerBusy,
        "input while running",
    );
    wait_idle(rt, &worker).await;
    send(rt, &worker, "third", BusyPolicy::Reject).await;
    wait_idle(rt, &worker).await;
    if caps(rt).transcript {
        assert_eq!(
            user_texts(&all_entries(rt, &worker).await),
            ["first", "third"]
        );
    }
    Outcome::Passed
}

/// `on_busy: queue` runs queued inputs in order, each exactly once.
pub async fn busy_queue(rt: &DynRuntime) -> Outcome {
    require!(caps(rt), create_worker, send_input, busy_queue, transcript);
    let worker = create(rt, Some(SLOW_PROFILE)).await;
    send(rt, &worker, "q1", BusyPolicy::Queue).await;
    wait_running(rt, &worker).await;
    let a2 = send(rt, &worker, "q2", BusyPolicy::Queue).await;
    let a3 = send(rt, &worker, "q3", BusyPolicy::Queue).await;
    assert!(a2.transcript_index < a3.transcript_index);
    assert_eq!(rt.worker(&worker).await.unwrap().summary.pending_inputs, 2);
    wait_idle(rt, &worker).await;
    let entries = all_entries(rt, &worker).await;
    assert_eq!(user_texts(&entries), ["q1", "q2", "q3"]);
    let replies: Vec<_> = entries
        .iter()
        .filter(|e| e.role == EntryRole::Assistant)
        .collect();
    assert_eq!(replies.len(), 3);
    assert!(
        replies.iter().all(|e| e.status == EntryStatus::Complete),
        "{replies:?}"
    );
    // Each reply belongs to its own input, in order.
    let reply_inputs: Vec<_> = replies.iter().map(|e| e.input_id.clone()).collect();
    let user_inputs: Vec<_> = entries
        .iter()
        .filter(|e| e.role == EntryRole::User)
        .map(|e| e.input_id.clone())
        .collect();
    assert_eq!(reply_inputs, user_inputs);
    Outcome::Passed
}

/// `on_busy: interrupt` cancels the running turn, keeps its partial reply
/// marked `cancelled`, and runs the new input.
pub async fn busy_interrupt(rt: &DynRuntime) -> Outcome {
    require!(
        caps(rt),
        create_worker,
        send_input,
        busy_interrupt,
        transcript
    );
    let worker = create(rt, Some(SLOW_PROFILE)).await;
    let first = send(rt, &worker, "long question", BusyPolicy::Reject).await;
    wait_running(rt, &worker).await;
    let second = send(rt, &worker, "never mind", BusyPolicy::Interrupt).await;
    wait_idle(rt, &worker).await;
    let entries = all_entries(rt, &worker).await;
    assert_eq!(user_texts(&entries), ["long question", "never mind"]);
    let reply_to = |id: &InputId| {
        entries
            .iter()
            .find(|e| e.role == EntryRole::Assistant && e.input_id.as_ref() == Some(id))
            .unwrap_or_else(|| panic!("no reply to {id}: {entries:?}"))
    };
    assert_eq!(reply_to(&first.input_id).status, EntryStatus::Cancelled);
    assert_eq!(reply_to(&second.input_id).status, EntryStatus::Complete);
    if caps(rt).events_poll {
        let cancelled = all_events(rt, &worker)
            .await
            .iter()
            .filter(|e| matches!(e.kind, WorkerEventKind::TurnCancelled { .. }))
            .count();
        assert_eq!(cancelled, 1);
    }
    Outcome::Passed
}

/// A repeated `client_input_id` returns the first acceptance and records
/// nothing new; the same id with another text is `input_id_conflict` and
/// records nothing either. Ids are per Worker.
pub async fn idempotent_retry(rt: &DynRuntime) -> Outcome {
    require!(caps(rt), create_worker, send_input, transcript);
    let worker = create(rt, None).await;
    let client_id = InputId::new("client-retry-1").unwrap();
    let request = InputRequest::new("only once").client_input_id(client_id.clone());
    let first = rt.send_input(&worker, request.clone()).await.unwrap();
    let again = rt.send_input(&worker, request.clone()).await.unwrap();
    assert_eq!(first, again);
    // Another busy policy is still the same input.
    let mut queued = request.clone();
    queued.on_busy = BusyPolicy::Queue;
    assert_eq!(rt.send_input(&worker, queued).await.unwrap(), first);
    wait_idle(rt, &worker).await;
    let after_turn = rt.send_input(&worker, request.clone()).await.unwrap();
    assert_eq!(first, after_turn);
    let other_text = InputRequest::new("only once!").client_input_id(client_id.clone());
    match rt.send_input(&worker, other_text).await {
        Err(RuntimeError::InputIdConflict {
            runtime_id,
            worker_id,
            client_input_id,
            input_id,
        }) => {
            assert_eq!(&runtime_id, rt.id());
            assert_eq!(worker_id, worker);
            assert_eq!(client_input_id, client_id);
            assert_eq!(input_id, first.input_id);
        }
        other => panic!("the same id with another text: expected input_id_conflict, got {other:?}"),
    }
    wait_idle(rt, &worker).await;
    assert_eq!(user_texts(&all_entries(rt, &worker).await), ["only once"]);
    // Another Worker has ids of its own.
    let other_worker = create(rt, None).await;
    let elsewhere = InputRequest::new("elsewhere").client_input_id(client_id.clone());
    let accepted = rt.send_input(&other_worker, elsewhere).await.unwrap();
    assert_ne!(accepted.input_id, first.input_id);
    wait_idle(rt, &other_worker).await;
    assert_eq!(
        user_texts(&all_entries(rt, &other_worker).await),
        ["elsewhere"]
    );
    if rt.capabilities().stop {
        // The input was accepted; a late retry still learns that.
        rt.stop(&worker).await.unwrap();
        assert_eq!(rt.send_input(&worker, request).await.unwrap(), first);
        let fresh = InputRequest::new("new after stop");
        assert_code(
            rt.send_input(&worker, fresh).await,
            ErrorCode::WorkerStopped,
            "new input after stop",
        );
    }
    Outcome::Passed
}
