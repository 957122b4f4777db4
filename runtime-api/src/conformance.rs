//! The conformance suite: behaviour every [`Runtime`](crate::Runtime) must
//! show, as plain `async fn` cases over a [`DynRuntime`].
//!
//! An implementation runs it from its own tests, directly and through
//! `Arc<dyn Runtime>`:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn conformance() {
//!     let rt = my_runtime_with_a_slow_profile();
//!     yoi_runtime_api::conformance::run_all(&rt).await;
//! }
//! ```
//!
//! Cases panic on a violation and return [`Outcome::Skipped`] when the
//! capability they exercise is off. The busy, queue, interrupt and cancel
//! cases need turns that last a while: the Runtime under test must offer a
//! profile named [`SLOW_PROFILE`] whose turns take at least 300 ms and stream
//! at least two deltas. Turns on the default profile must finish within
//! [`TURN_TIMEOUT`]. Cases need a Tokio runtime with timers.

use std::time::Duration;

use futures_util::StreamExt;

use crate::capabilities::Capabilities;
use crate::dto::{
    BusyPolicy, CreateWorkerRequest, EntryRole, EntryStatus, EventQuery, InputRequest,
    TranscriptEntry, TranscriptQuery, WorkerEvent, WorkerEventKind, WorkerListQuery, WorkerState,
};
use crate::error::{ErrorCode, Operation, RuntimeError};
use crate::id::{EventCursor, InputId, ProfileName, WorkerId};
use crate::runtime::DynRuntime;

/// The profile whose turns are slow enough to observe a running turn.
pub const SLOW_PROFILE: &str = "conformance-slow";
/// How long a case waits for a turn or a state before failing.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(20);

/// What a case did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and every assertion held.
    Passed,
    /// The capability it needs is off; it checked nothing.
    Skipped(&'static str),
}

macro_rules! require {
    ($caps:expr, $($flag:ident),+) => {
        $(if !$caps.$flag {
            return Outcome::Skipped(stringify!($flag));
        })+
    };
}

type Case = for<'a> fn(
    &'a DynRuntime,
)
    -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>>;

/// Every case, by name.
pub fn cases() -> Vec<(&'static str, Case)> {
    macro_rules! case {
        ($name:ident) => {
            (stringify!($name), (|rt| Box::pin($name(rt))) as Case)
        };
    }
    vec![
        case!(create_list_detail),
        case!(fallback_profile),
        case!(input_acceptance),
        case!(invalid_input),
        case!(busy_reject),
        case!(busy_queue),
        case!(busy_interrupt),
        case!(idempotent_retry),
        case!(stop_cancel_idempotent),
        case!(transcript_bounds),
        case!(event_cursor_ordering),
        case!(subscribe_resume),
        case!(unknown_worker),
        case!(invalid_ids),
        case!(unsupported_operations),
    ]
}

/// Runs every case in order and returns each outcome. Panics on the first
/// violation, naming the case.
pub async fn run_all(rt: &DynRuntime) -> Vec<(&'static str, Outcome)> {
    let mut outcomes = Vec::new();
    for (name, case) in cases() {
        eprintln!("conformance: {name}");
        outcomes.push((name, case(rt).await));
    }
    outcomes
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, RuntimeError>, code: ErrorCode, what: &str) {
    match result {
        Err(err) => assert_eq!(err.code(), code, "{what}: got {err}"),
        Ok(value) => panic!("{what}: expected {code}, got Ok({value:?})"),
    }
}

async fn create(rt: &DynRuntime, profile: Option<&str>) -> WorkerId {
    let request = CreateWorkerRequest {
        display_name: Some("conformance".into()),
        profile: profile.map(|p| ProfileName::new(p).unwrap()),
        intent: None,
    };
    rt.create_worker(request).await.unwrap().summary.worker_id
}

async fn send(
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
async fn wait_idle(rt: &DynRuntime, worker: &WorkerId) {
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
async fn wait_running(rt: &DynRuntime, worker: &WorkerId) {
    let deadline = tokio::time::Instant::now() + TURN_TIMEOUT;
    while rt.worker(worker).await.unwrap().summary.state != WorkerState::Running {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker {worker} never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn all_events(rt: &DynRuntime, worker: &WorkerId) -> Vec<WorkerEvent> {
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

async fn all_entries(rt: &DynRuntime, worker: &WorkerId) -> Vec<TranscriptEntry> {
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

fn user_texts(entries: &[TranscriptEntry]) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| e.role == EntryRole::User)
        .map(|e| e.text.as_str())
        .collect()
}

fn caps(rt: &DynRuntime) -> Capabilities {
    rt.capabilities()
}

/// Created Workers show up in the list and in detail with their runtime id.
pub async fn create_list_detail(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(caps, create_worker, list_workers);
    let detail = rt
        .create_worker(CreateWorkerRequest {
            display_name: Some("Conformance worker".into()),
            profile: None,
            intent: Some("check the contract".into()),
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
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = rt
            .list_workers(WorkerListQuery {
                after: after.clone(),
                limit: Some(1),
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 1);
        seen.extend(page.items.into_iter().map(|w| w.worker_id));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "list is sorted by id without duplicates");
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
/// nothing new.
pub async fn idempotent_retry(rt: &DynRuntime) -> Outcome {
    require!(caps(rt), create_worker, send_input, transcript);
    let worker = create(rt, None).await;
    let client_id = InputId::new("client-retry-1").unwrap();
    let request = InputRequest::new("only once").client_input_id(client_id.clone());
    let first = rt.send_input(&worker, request.clone()).await.unwrap();
    let again = rt.send_input(&worker, request.clone()).await.unwrap();
    assert_eq!(first, again);
    wait_idle(rt, &worker).await;
    let after_turn = rt.send_input(&worker, request).await.unwrap();
    assert_eq!(first, after_turn);
    wait_idle(rt, &worker).await;
    assert_eq!(user_texts(&all_entries(rt, &worker).await), ["only once"]);
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

/// Transcript pages are bounded and say where the next one starts.
pub async fn transcript_bounds(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(caps, create_worker, send_input, transcript);
    let worker = create(rt, None).await;
    for i in 0..3 {
        send(rt, &worker, &format!("message {i}"), BusyPolicy::Reject).await;
        wait_idle(rt, &worker).await;
    }
    let page = rt
        .transcript(
            &worker,
            TranscriptQuery {
                start: Some(1),
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!((page.start, page.limit, page.total), (1, 2, 6));
    assert_eq!(page.next_start, Some(3));
    let indexes: Vec<u64> = page.entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [1, 2]);
    let last = rt
        .transcript(
            &worker,
            TranscriptQuery {
                start: Some(4),
                limit: Some(10),
            },
        )
        .await
        .unwrap();
    assert_eq!(last.entries.len(), 2);
    assert_eq!(last.next_start, None);
    let beyond = rt
        .transcript(
            &worker,
            TranscriptQuery {
                start: Some(100),
                limit: None,
            },
        )
        .await
        .unwrap();
    assert!(beyond.entries.is_empty());
    assert_eq!(beyond.next_start, None);
    if let Some(max) = caps.max_transcript_page {
        let too_large = rt
            .transcript(
                &worker,
                TranscriptQuery {
                    start: None,
                    limit: Some(max + 1),
                },
            )
            .await;
        assert_code(
            too_large,
            ErrorCode::LimitTooLarge,
            "transcript limit over max",
        );
    }
    let zero = rt
        .transcript(
            &worker,
            TranscriptQuery {
                start: None,
                limit: Some(0),
            },
        )
        .await;
    assert_code(zero, ErrorCode::InvalidRequest, "transcript limit 0");
    Outcome::Passed
}

/// Reading events one at a time gives exactly the events of one big read.
pub async fn event_cursor_ordering(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(caps, create_worker, send_input, events_poll);
    let worker = create(rt, None).await;
    send(rt, &worker, "count my events", BusyPolicy::Reject).await;
    wait_idle(rt, &worker).await;
    let all = all_events(rt, &worker).await;
    assert!(all.len() >= 5, "{all:?}");
    let mut one_by_one = Vec::new();
    let mut after: Option<EventCursor> = None;
    loop {
        let page = rt
            .events(
                &worker,
                EventQuery {
                    after: after.clone(),
                    limit: Some(1),
                },
            )
            .await
            .unwrap();
        if page.events.is_empty() {
            assert!(!page.has_more);
            assert_eq!(page.next_cursor, after, "an empty page keeps the cursor");
            break;
        }
        assert_eq!(page.next_cursor.as_ref(), Some(&page.events[0].cursor));
        one_by_one.extend(page.events);
        after = page.next_cursor;
    }
    assert_eq!(one_by_one, all);
    let mut cursors: Vec<&EventCursor> = all.iter().map(|e| &e.cursor).collect();
    cursors.dedup();
    assert_eq!(cursors.len(), all.len(), "cursors are distinct");
    assert!(all.iter().all(|e| e.worker_id == worker));
    if let Some(max) = caps.max_event_page {
        let too_large = rt
            .events(
                &worker,
                EventQuery {
                    after: None,
                    limit: Some(max + 1),
                },
            )
            .await;
        assert_code(too_large, ErrorCode::LimitTooLarge, "event limit over max");
    }
    Outcome::Passed
}

/// A subscription replays from a cursor, then follows live, and ends after
/// `worker_stopped`.
pub async fn subscribe_resume(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(
        caps,
        create_worker,
        send_input,
        events_poll,
        events_subscribe,
        stop
    );
    let worker = create(rt, None).await;
    send(rt, &worker, "before subscribing", BusyPolicy::Reject).await;
    wait_idle(rt, &worker).await;
    let history = all_events(rt, &worker).await;
    let resume_at = history[history.len() / 2].cursor.clone();
    let expected_replay: Vec<WorkerEvent> = history
        .iter()
        .skip_while(|e| e.cursor != resume_at)
        .skip(1)
        .cloned()
        .collect();

    let mut stream = rt.subscribe(&worker, Some(resume_at)).await.unwrap();
    let mut received = Vec::new();
    for _ in 0..expected_replay.len() {
        let next = tokio::time::timeout(TURN_TIMEOUT, stream.next())
            .await
            .unwrap();
        received.push(next.unwrap().unwrap());
    }
    assert_eq!(received, expected_replay, "replay after the cursor");

    // Now live: a new turn and the stop arrive on the same stream.
    send(rt, &worker, "while subscribed", BusyPolicy::Reject).await;
    wait_idle(rt, &worker).await;
    rt.stop(&worker).await.unwrap();
    let rest = tokio::time::timeout(TURN_TIMEOUT, stream.collect::<Vec<_>>())
        .await
        .expect("stream ends after worker_stopped");
    received.extend(rest.into_iter().map(Result::unwrap));
    let all = all_events(rt, &worker).await;
    let tail: Vec<WorkerEvent> = all
        .iter()
        .skip_while(|e| e.cursor != history[history.len() / 2].cursor)
        .skip(1)
        .cloned()
        .collect();
    assert_eq!(received, tail, "live events without gaps or duplicates");
    assert_eq!(received.last().unwrap().kind_name(), "worker_stopped");
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
