//! Reads: transcript pages, event cursors and subscriptions.

use futures_util::StreamExt;

use crate::dto::{BusyPolicy, EventQuery, TranscriptQuery, WorkerEvent};
use crate::error::ErrorCode;
use crate::id::{EventCursor, WorkerId};
use crate::runtime::DynRuntime;

use super::support::*;
use super::{Outcome, Seeder, TURN_TIMEOUT};

/// Seeded Workers show up in the list exactly once, in id order, with the
/// same summary as their detail.
pub async fn seeded_list_detail(rt: &DynRuntime, seeder: &dyn Seeder) -> Outcome {
    let caps = caps(rt);
    require!(caps, list_workers);
    if !seeder.can_seed(rt) {
        return Outcome::Skipped("seeding");
    }
    let first = seeder.seed(rt, "Seeded one", &["hello"]).await;
    let second = seeder.seed(rt, "Seeded two", &["one", "two"]).await;
    assert_ne!(first, second, "worker ids are unique");
    let seen = list_one_by_one(rt).await;
    for summary in &seen {
        if summary.worker_id == first || summary.worker_id == second {
            let detail = rt.worker(&summary.worker_id).await.unwrap();
            assert_eq!(&detail.summary, summary, "list and detail agree");
        }
        assert_eq!(&summary.runtime_id, rt.id());
    }
    let find = |id: &WorkerId| seen.iter().find(|s| &s.worker_id == id).unwrap();
    assert_eq!(find(&first).display_name, "Seeded one");
    assert_eq!(find(&first).transcript_len, 2);
    assert_eq!(find(&second).transcript_len, 4);
    if caps.transcript {
        assert_eq!(user_texts(&all_entries(rt, &second).await), ["one", "two"]);
    }
    Outcome::Passed
}

/// Transcript pages are bounded and say where the next one starts.
pub async fn transcript_bounds(rt: &DynRuntime, seeder: &dyn Seeder) -> Outcome {
    let caps = caps(rt);
    require!(caps, transcript);
    if !seeder.can_seed(rt) {
        return Outcome::Skipped("seeding");
    }
    let worker = seeder
        .seed(rt, "Transcript", &["message 0", "message 1", "message 2"])
        .await;
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
