//! Subscriptions: slow subscribers detect lag instead of missing events,
//! and many live subscribers all see the whole log in order.

mod common;

use yoi_runtime_api::test_util;

use std::time::Duration;

use futures_util::StreamExt;
use yoi_runtime_api::dto::{BusyPolicy, EventQuery, InputRequest, WorkerEvent};
use yoi_runtime_api::{ErrorCode, EventCursor, Runtime};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, Limits};

fn small_log_runtime() -> EmbeddedRuntime {
    EmbeddedRuntime::new(EmbeddedOptions {
        limits: Limits {
            max_events_per_worker: 20,
            ..Limits::default()
        },
        ..EmbeddedOptions::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_retention_gets_cursor_expired() {
    let rt = small_log_runtime();
    let id = test_util::create(&rt, None).await;
    let mut stream = rt.subscribe(&id, None).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.kind_name(), "worker_created");
    // Produce far more events than the log keeps while the subscriber sleeps.
    for n in 0..10 {
        rt.send_input(
            &id,
            InputRequest::new(format!("message number {n}")).on_busy(BusyPolicy::Queue),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::CursorExpired);
    assert!(
        stream.next().await.is_none(),
        "the stream ends after reporting lag"
    );
    // The same cursor is refused up front by both reads.
    let expired = rt
        .events(
            &id,
            EventQuery {
                after: Some(first.cursor.clone()),
                limit: None,
            },
        )
        .await;
    assert_eq!(expired.unwrap_err().code(), ErrorCode::CursorExpired);
    let expired = rt.subscribe(&id, Some(first.cursor)).await.map(|_| ());
    assert_eq!(expired.unwrap_err().code(), ErrorCode::CursorExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_this_log_never_issued_is_expired() {
    let rt = EmbeddedRuntime::with_defaults();
    let id = test_util::create(&rt, None).await;
    let future = EventCursor::new("999").unwrap();
    let err = rt
        .events(
            &id,
            EventQuery {
                after: Some(future.clone()),
                limit: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::CursorExpired);
    let err = rt
        .subscribe(&id, Some(future))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::CursorExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_live_subscribers_see_every_event_in_order() {
    let rt = EmbeddedRuntime::with_defaults();
    let id = test_util::create(&rt, None).await;
    let mut subscribers = Vec::new();
    for _ in 0..50 {
        let stream = rt.subscribe(&id, None).await.unwrap();
        subscribers.push(tokio::spawn(stream.collect::<Vec<_>>()));
    }
    for n in 0..15 {
        rt.send_input(
            &id,
            InputRequest::new(format!("turn {n} of many")).on_busy(BusyPolicy::Queue),
        )
        .await
        .unwrap();
    }
    for _ in 0..400 {
        if rt.worker(&id).await.unwrap().summary.pending_inputs == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    rt.stop(&id).await.unwrap();
    let mut log: Vec<WorkerEvent> = Vec::new();
    let mut after = None;
    loop {
        let page = rt
            .events(
                &id,
                EventQuery {
                    after: after.clone(),
                    limit: Some(1000),
                },
            )
            .await
            .unwrap();
        log.extend(page.events);
        after = page.next_cursor;
        if !page.has_more {
            break;
        }
    }
    assert!(log.len() > 100);
    for subscriber in subscribers {
        let received: Vec<WorkerEvent> = subscriber
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(received, log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_stream_reports_lifecycle_events() {
    let rt = EmbeddedRuntime::with_defaults();
    let mut stream = rt.subscribe_runtime(None).await.unwrap();
    let id = test_util::create(&rt, None).await;
    rt.stop(&id).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.worker_id, id);
        kinds.push(event.kind_name());
    }
    assert_eq!(kinds, ["worker_created", "state_changed", "worker_stopped"]);
}

#[tokio::test]
async fn only_the_newest_stopped_workers_are_kept() {
    let rt = EmbeddedRuntime::new(EmbeddedOptions {
        limits: Limits {
            max_stopped_workers: 2,
            ..Limits::default()
        },
        ..EmbeddedOptions::default()
    })
    .unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = test_util::create(&rt, None).await;
        rt.stop(&id).await.unwrap();
        // Stopping again neither fails nor counts twice.
        rt.stop(&id).await.unwrap();
        ids.push(id);
    }
    assert_eq!(
        rt.worker(&ids[0]).await.unwrap_err().code(),
        ErrorCode::UnknownWorker
    );
    assert!(rt.worker(&ids[1]).await.is_ok() && rt.worker(&ids[2]).await.is_ok());
    let status = rt.status().await.unwrap();
    assert_eq!(status.workers.stopped, 2);
    let listed = rt
        .list_workers(Default::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(listed, 2);
}
