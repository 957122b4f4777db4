//! The embedded Runtime over its SQLite store: the conformance suite on a
//! fresh and a reopened store, what survives a restart, recovery of turns a
//! crash interrupted, eviction, retention, and refusals at open.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use yoi_runtime_api::conformance::{self, Outcome, SLOW_PROFILE};
use yoi_runtime_api::dto::{
    BusyPolicy, EntryRole, EntryStatus, EventQuery, InputRequest, WorkerEventKind, WorkerState,
};
use yoi_runtime_api::{DynRuntime, ErrorCode, InputId, Runtime, test_util};
use yoi_runtime_embedded::store::{SqliteStore, StoreError};
use yoi_runtime_embedded::{ConfigError, EmbeddedOptions, EmbeddedRuntime, Limits};

fn db(label: &str) -> std::path::PathBuf {
    test_util::temp_dir(label).join("yoi.sqlite3")
}

fn assert_all_passed(outcomes: &[(&str, Outcome)]) {
    for (name, outcome) in outcomes {
        assert_eq!(*outcome, Outcome::Passed, "{name} was skipped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_fresh_and_a_reopened_store() {
    let path = db("conformance");
    let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    assert!(rt.capabilities().persistent_store);
    assert_all_passed(&conformance::run_all(&rt).await);
    let shared: Arc<DynRuntime> = Arc::new(rt);
    assert_all_passed(&conformance::run_all(shared.as_ref()).await);
    drop(shared);
    store.close();
    drop(store);

    let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    assert_all_passed(&conformance::run_all(&rt).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_a_client_can_read_survives_a_restart() {
    let path = db("survives");
    let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let worker = test_util::create(&rt, None).await;
    let retry = InputRequest {
        client_input_id: Some("retry-me".parse().unwrap()),
        ..InputRequest::new("first")
    };
    let first = rt.send_input(&worker, retry.clone()).await.unwrap();
    test_util::wait_idle(&rt, &worker).await;
    test_util::send(&rt, &worker, "second", BusyPolicy::Reject).await;
    test_util::wait_idle(&rt, &worker).await;
    let stopped = test_util::create(&rt, None).await;
    rt.stop(&stopped).await.unwrap();
    // A rename and metadata survive too.
    let update = yoi_runtime_api::dto::UpdateWorkerRequest {
        display_name: Some("renamed before the restart".into()),
        metadata: Some([("project".to_owned(), Some("apollo".to_owned()))].into()),
    };
    rt.update_worker(&worker, update).await.unwrap();
    // So does a rollback of the last turn.
    rt.rollback(&worker, yoi_runtime_api::dto::RollbackRequest { turns: 1 })
        .await
        .unwrap();
    let detail = rt.worker(&worker).await.unwrap();
    assert_eq!(detail.summary.metadata["project"], "apollo");
    // And a fork, with its copied entries and where it came from.
    let fork = rt
        .fork_worker(&worker, yoi_runtime_api::dto::ForkRequest::default())
        .await
        .unwrap();
    let fork_id = fork.summary.worker_id.clone();
    let fork_entries = test_util::all_entries(&rt, &fork_id).await;
    let entries = test_util::all_entries(&rt, &worker).await;
    assert!(
        entries
            .iter()
            .any(|e| e.status == yoi_runtime_api::dto::EntryStatus::RolledBack)
    );
    let events = test_util::all_events(&rt, &worker).await;
    let status = rt.status().await.unwrap();
    // The reply's deltas are not waited for: let the writer catch up, as
    // it does within milliseconds.
    drop(rt);
    store.close();
    drop(store);

    let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    assert_eq!(rt.worker(&worker).await.unwrap(), detail);
    let fork_after = rt.worker(&fork_id).await.unwrap();
    assert_eq!(fork_after.forked_from, fork.forked_from);
    assert_eq!(test_util::all_entries(&rt, &fork_id).await, fork_entries);
    assert_eq!(test_util::all_entries(&rt, &worker).await, entries);
    assert_eq!(test_util::all_events(&rt, &worker).await, events);
    assert_eq!(rt.status().await.unwrap().workers, status.workers);
    assert_eq!(
        rt.worker(&stopped).await.unwrap().summary.state,
        WorkerState::Stopped
    );
    // A retry after the restart is answered with the first acceptance, and
    // the id with another text is still refused.
    assert_eq!(rt.send_input(&worker, retry.clone()).await.unwrap(), first);
    let reused = InputRequest {
        text: "not first".into(),
        ..retry
    };
    let refused = rt.send_input(&worker, reused).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InputIdConflict);
    // Cursors from before the restart resume exactly.
    let middle = &events[events.len() / 2];
    let page = rt
        .events(
            &worker,
            EventQuery {
                after: Some(middle.cursor.clone()),
                limit: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.events, events[events.len() / 2 + 1..]);
    // New events continue the log: their sequence numbers go on rising.
    test_util::send(&rt, &worker, "third", BusyPolicy::Reject).await;
    test_util::wait_idle(&rt, &worker).await;
    let after = test_util::all_events(&rt, &worker).await;
    let seqs: Vec<u64> = after.iter().map(|e| seq(e.cursor.as_str())).collect();
    assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "{seqs:?}");
    assert_eq!(after[..events.len()], events[..]);
    // Listing pages through stored and resident Workers alike.
    let listed = test_util::list_one_by_one(&rt).await;
    assert_eq!(listed.len(), 3, "the Worker, the stopped one and the fork");
}

fn seq(cursor: &str) -> u64 {
    cursor.split('.').next().unwrap().parse().unwrap()
}

#[test]
fn a_turn_cut_short_by_a_crash_fails_and_the_queue_runs_on() {
    let path = db("recovery");
    let (worker, queued_id) = {
        // A process that dies mid-turn: its Tokio runtime is dropped with
        // the turn still running, and nothing is shut down.
        let tokio = tokio::runtime::Runtime::new().unwrap();
        let (rt, store) = tokio
            .block_on(async { common::sqlite_runtime(&path, common::options_with_slow_profile()) });
        let ids = tokio.block_on(async {
            let worker = test_util::create(&rt, Some(SLOW_PROFILE)).await;
            test_util::send(&rt, &worker, "cut short", BusyPolicy::Reject).await;
            let queued = test_util::send(&rt, &worker, "waits", BusyPolicy::Queue).await;
            test_util::wait_running(&rt, &worker).await;
            (worker, queued.input_id)
        });
        drop(tokio);
        drop(rt);
        store.close();
        ids
    };
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
        test_util::wait_idle(&rt, &worker).await;
        let entries = test_util::all_entries(&rt, &worker).await;
        let texts: Vec<(&str, EntryRole, EntryStatus)> = entries
            .iter()
            .map(|e| (e.text.as_str(), e.role, e.status))
            .collect();
        assert_eq!(
            texts[0],
            ("cut short", EntryRole::User, EntryStatus::Complete)
        );
        assert_eq!(texts[1].1, EntryRole::Assistant);
        assert_eq!(texts[1].2, EntryStatus::Failed);
        // The queued input was recorded before the crash, so its entry
        // comes before the failed turn's notice.
        assert_eq!(texts[2], ("waits", EntryRole::User, EntryStatus::Complete));
        assert_eq!(
            texts[3],
            (
                "The turn failed: interrupted by restart",
                EntryRole::Notice,
                EntryStatus::Complete
            )
        );
        assert_eq!(
            texts[4],
            ("echo: waits", EntryRole::Assistant, EntryStatus::Complete)
        );
        let events = test_util::all_events(&rt, &worker).await;
        assert!(events.iter().any(|e| matches!(
            &e.kind,
            WorkerEventKind::TurnFailed { reason, .. } if reason.message == "interrupted by restart"
        )));
        assert!(events.iter().any(|e| matches!(
            &e.kind,
            WorkerEventKind::TurnCompleted { input_id, .. } if *input_id == queued_id
        )));
        let status = rt.status().await.unwrap();
        assert_eq!(status.workers.running, 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_workers_load_again_and_a_subscribed_one_stays() {
    let path = db("evict");
    let options = EmbeddedOptions {
        limits: Limits {
            max_resident_workers: 8,
            ..Limits::default()
        },
        ..common::options_with_slow_profile()
    };
    let (rt, _store) = common::sqlite_runtime(&path, options);
    let watched = test_util::create(&rt, None).await;
    let mut stream = rt.subscribe(&watched, None).await.unwrap();
    let mut workers = Vec::new();
    for n in 0..40 {
        let worker = test_util::create(&rt, None).await;
        test_util::send(&rt, &worker, &format!("hello {n}"), BusyPolicy::Reject).await;
        test_util::wait_idle(&rt, &worker).await;
        workers.push(worker);
    }
    // Every Worker reads back whole, whether resident or loaded again.
    for (n, worker) in workers.iter().enumerate() {
        let entries = test_util::all_entries(&rt, worker).await;
        assert_eq!(test_util::user_texts(&entries), [format!("hello {n}")]);
        assert_eq!(entries[1].text, format!("echo: hello {n}"));
    }
    // The subscribed Worker was never replaced by a second copy: its
    // stream sees input sent after all that churn.
    test_util::send(&rt, &watched, "still here", BusyPolicy::Reject).await;
    let mut seen = Vec::new();
    while !seen.contains(&"turn_completed") {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(event.kind_name());
    }
    assert_eq!(rt.status().await.unwrap().workers.total(), 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_workers_past_the_cap_are_deleted_on_disk_too() {
    let path = db("retention");
    let options = || EmbeddedOptions {
        limits: Limits {
            max_stopped_workers: 2,
            ..Limits::default()
        },
        ..EmbeddedOptions::default()
    };
    let (rt, store) = common::sqlite_runtime(&path, options());
    let mut stopped = Vec::new();
    for _ in 0..3 {
        let worker = test_util::create(&rt, None).await;
        rt.stop(&worker).await.unwrap();
        stopped.push(worker);
    }
    drop(rt);
    store.close();
    drop(store);
    let (rt, _store) = common::sqlite_runtime(&path, options());
    let err = rt.worker(&stopped[0]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownWorker);
    for worker in &stopped[1..] {
        assert_eq!(
            rt.worker(worker).await.unwrap().summary.state,
            WorkerState::Stopped
        );
    }
    assert_eq!(rt.status().await.unwrap().workers.stopped, 2);
}

#[test]
fn a_newer_damaged_or_unwritable_store_is_refused() {
    let options = EmbeddedOptions::default();
    let retain = common::retain(&options);
    // Newer schema.
    let newer = db("newer");
    {
        let conn = rusqlite_connection(&newer);
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    match SqliteStore::open(&newer, retain) {
        Err(StoreError::NewerSchema { found: 99, .. }) => {}
        other => panic!("expected a newer-schema refusal, got {other:?}"),
    }
    // Not a database.
    let garbage = db("garbage");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    match SqliteStore::open(&garbage, retain) {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("expected a damaged-store refusal, got {other:?}"),
    }
    // A path that cannot hold a file (its folder is a file).
    let folder_is_file = test_util::temp_dir("not-a-dir").join("file");
    std::fs::write(&folder_is_file, b"x").unwrap();
    match SqliteStore::open(&folder_is_file.join("yoi.sqlite3"), retain) {
        Err(StoreError::Io(message)) => {
            assert!(!message.contains("not-a-dir"), "no path in {message}");
        }
        other => panic!("expected an I/O refusal, got {other:?}"),
    }
    // A durable store needs a Tokio runtime (recovery may start turns).
    let fresh = SqliteStore::open(&db("no-tokio"), retain).unwrap();
    match EmbeddedRuntime::open(options.clone(), Arc::new(fresh)) {
        Err(ConfigError::Store(StoreError::Io(message))) => {
            assert!(message.contains("Tokio runtime"), "{message}");
        }
        other => panic!("expected a refusal outside Tokio, got {other:?}"),
    }
    // The refusal carries through the Runtime's constructor.
    let refused = SqliteStore::open(&newer, retain)
        .map(|store| EmbeddedRuntime::open(options.clone(), Arc::new(store)).map(|_| ()));
    assert!(matches!(refused, Err(StoreError::NewerSchema { .. })));
    let _ = ConfigError::Store(StoreError::Failed);
    let _: InputId = "in-x".parse().unwrap();
}

#[test]
fn a_store_open_elsewhere_is_refused_until_it_is_closed() {
    let retain = common::retain(&EmbeddedOptions::default());
    let path = db("claimed");
    let first = SqliteStore::open(&path, retain).unwrap();
    // A second opener (in another process, or this one) would write the
    // same histories: refused, without saying where the store is.
    let err = SqliteStore::open(&path, retain).unwrap_err();
    // It names the holder, this process here, so an operator knows which
    // to stop.
    assert!(
        matches!(err, StoreError::InUse { pid: Some(pid) } if pid == std::process::id()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("in use by another process (pid "),
        "{message}"
    );
    assert!(!message.contains("claimed"), "no path in {message}");
    // Refused whatever was asked of the second: the claim comes first.
    assert!(matches!(
        SqliteStore::open(&path, retain),
        Err(StoreError::InUse { .. })
    ));
    // Closing the first (its writer ends) lets the store be opened again.
    first.close();
    let second = SqliteStore::open(&path, retain).unwrap();
    drop(first);
    assert!(matches!(
        SqliteStore::open(&path, retain),
        Err(StoreError::InUse { .. })
    ));
    drop(second);
    SqliteStore::open(&path, retain).unwrap();
}

/// A bare SQLite connection, to prepare files the store must refuse.
fn rusqlite_connection(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_workers_older_than_the_age_limit_are_deleted() {
    let path = db("age");
    let options = EmbeddedOptions {
        limits: Limits {
            max_stopped_age: Some(Duration::ZERO),
            ..Limits::default()
        },
        ..EmbeddedOptions::default()
    };
    let (rt, _store) = common::sqlite_runtime(&path, options);
    let kept = test_util::create(&rt, None).await;
    let stopped = test_util::create(&rt, None).await;
    rt.stop(&stopped).await.unwrap();
    let err = rt.worker(&stopped).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownWorker);
    assert_eq!(
        rt.worker(&kept).await.unwrap().summary.state,
        WorkerState::Idle
    );
    assert_eq!(rt.status().await.unwrap().workers.stopped, 0);
}

#[test]
fn migrations_run_from_an_empty_file_and_reopening_is_idempotent() {
    let options = EmbeddedOptions::default();
    let retain = common::retain(&options);
    let path = db("migrations");
    // Version 0: an empty database file.
    rusqlite_connection(&path);
    for _ in 0..2 {
        SqliteStore::open(&path, retain).unwrap().close();
        let conn = rusqlite_connection(&path);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, 7);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            tables,
            [
                "client_ids",
                "entries",
                "entry_parts",
                "events",
                "search_state",
                "worker_metadata",
                "worker_moves",
                "workers"
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_store_is_upgraded_and_its_workers_have_no_metadata() {
    let path = db("upgrade");
    let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let worker = test_util::create(&rt, None).await;
    drop(rt);
    store.close();
    drop(store);
    // Back to the first schema: no metadata column.
    downgrade(
        &path,
        "ALTER TABLE workers DROP COLUMN metadata;
         ALTER TABLE workers DROP COLUMN forked_from;
         PRAGMA user_version = 1;",
    );

    let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let detail = rt.worker(&worker).await.unwrap();
    assert!(detail.summary.metadata.is_empty());
    assert!(detail.forked_from.is_none());
    let update = yoi_runtime_api::dto::UpdateWorkerRequest {
        display_name: None,
        metadata: Some([("after".to_owned(), Some("upgrade".to_owned()))].into()),
    };
    let updated = rt.update_worker(&worker, update).await.unwrap();
    assert_eq!(updated.summary.metadata["after"], "upgrade");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_3_store_is_upgraded_and_its_metadata_found() {
    let path = db("upgrade-3");
    let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let request = yoi_runtime_api::dto::CreateWorkerRequest {
        metadata: [("project".to_owned(), "apollo".to_owned())].into(),
        ..yoi_runtime_api::dto::CreateWorkerRequest::default()
    };
    let worker = rt.create_worker(request).await.unwrap().summary.worker_id;
    test_util::create(&rt, None).await;
    drop(rt);
    store.close();
    drop(store);
    // Back to version 3: metadata only in the JSON column.
    downgrade(&path, "PRAGMA user_version = 3;");

    let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let filter = yoi_runtime_api::dto::WorkerFilter {
        metadata: [("project".to_owned(), "apollo".to_owned())].into(),
        ..Default::default()
    };
    let page = rt
        .list_workers(yoi_runtime_api::dto::WorkerListQuery {
            filter: filter.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let found: Vec<_> = page.items.iter().map(|s| s.worker_id.clone()).collect();
    assert_eq!(found, vec![worker]);
    assert_eq!(rt.count_workers(filter).await.unwrap().count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_remembered_before_version_7_retry_with_any_text_and_new_ones_are_checked() {
    let path = db("upgrade-6");
    let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let worker = test_util::create(&rt, None).await;
    let old_id: InputId = "before-upgrade".parse().unwrap();
    let request = InputRequest::new("first").client_input_id(old_id.clone());
    let first = rt.send_input(&worker, request).await.unwrap();
    test_util::wait_idle(&rt, &worker).await;
    drop(rt);
    store.close();
    drop(store);
    // Back to version 6: no digests.
    let conn = rusqlite_connection(&path);
    conn.execute_batch(
        "ALTER TABLE client_ids DROP COLUMN text_digest;
         PRAGMA user_version = 6;",
    )
    .unwrap();
    drop(conn);

    let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    // No digest to compare: the id is answered as before, whatever the text.
    let other_text = InputRequest::new("other").client_input_id(old_id);
    assert_eq!(rt.send_input(&worker, other_text).await.unwrap(), first);
    let new_id: InputId = "after-upgrade".parse().unwrap();
    let request = InputRequest::new("second").client_input_id(new_id.clone());
    rt.send_input(&worker, request).await.unwrap();
    let reused = InputRequest::new("third").client_input_id(new_id);
    assert_eq!(
        rt.send_input(&worker, reused).await.unwrap_err().code(),
        ErrorCode::InputIdConflict
    );
    test_util::wait_idle(&rt, &worker).await;
    assert_eq!(
        test_util::user_texts(&test_util::all_entries(&rt, &worker).await),
        ["first", "second"]
    );
}

/// Undoes migrations 7, 6, 5 and 4 on a closed store, then runs `sql`.
fn downgrade(path: &std::path::Path, sql: &str) {
    let conn = rusqlite_connection(path);
    conn.execute_batch(
        "ALTER TABLE client_ids DROP COLUMN text_digest;
         DROP TABLE entry_parts;
         DROP TABLE worker_moves;
         DROP TABLE search_state;
         DROP INDEX workers_by_created;
         DROP TABLE worker_metadata;
         DROP INDEX workers_by_updated;
         DROP INDEX workers_by_profile;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_off_mid_stream_keeps_the_text_written_so_far() {
    let path = db("cut-off");
    let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let worker = test_util::create(&rt, Some(SLOW_PROFILE)).await;
    let mut events = rt.subscribe(&worker, None).await.unwrap();
    test_util::send(
        &rt,
        &worker,
        "one two three four five six",
        BusyPolicy::Reject,
    )
    .await;
    // Two deltas in, so the second went to disk as an appended part.
    let mut deltas = 0;
    while deltas < 2 {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("deltas stream in")
            .unwrap()
            .unwrap();
        if matches!(event.kind, WorkerEventKind::TextDelta { .. }) {
            deltas += 1;
        }
    }
    drop(events);
    let streamed = test_util::all_entries(&rt, &worker).await[1].text.clone();
    assert!(!streamed.is_empty());
    // The process "ends" here: the store takes nothing more.
    store.close();
    drop(store);

    let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    test_util::wait_idle(&rt, &worker).await;
    let entries = test_util::all_entries(&rt, &worker).await;
    assert!(
        entries[1].text.starts_with(&streamed),
        "{:?} keeps {streamed:?}",
        entries[1].text
    );
    assert_eq!(entries[1].status, yoi_runtime_api::dto::EntryStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_byte_budgets_drop_from_memory_is_deleted_on_disk_too() {
    disk_keeps_what_memory_keeps(
        "byte-budgets",
        Limits {
            // Far below the counts (10,000 of each), so bytes decide.
            max_transcript_bytes: 8 << 10,
            max_event_log_bytes: 8 << 10,
            ..Limits::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_count_limits_drop_from_memory_is_deleted_on_disk_too() {
    disk_keeps_what_memory_keeps(
        "count-limits",
        Limits {
            max_queued_inputs: 1,
            max_transcript_entries: 7,
            max_events_per_worker: 25,
            ..Limits::default()
        },
    )
    .await;
}

/// Thirty turns of 1,000 bytes under `limits`: the disk then holds the
/// entries and events memory retains, no older ones, and reloads them.
async fn disk_keeps_what_memory_keeps(label: &str, limits: Limits) {
    let path = db(label);
    let options = || EmbeddedOptions {
        limits,
        ..EmbeddedOptions::default()
    };
    let (rt, store) = common::sqlite_runtime(&path, options());
    let worker = test_util::create(&rt, None).await;
    let text = "x".repeat(1_000);
    for turn in 0..30 {
        test_util::send(&rt, &worker, &format!("{turn} {text}"), BusyPolicy::Reject).await;
        test_util::wait_idle(&rt, &worker).await;
    }
    let entries = test_util::all_entries(&rt, &worker).await;
    let events = test_util::all_events(&rt, &worker).await;
    let (first_entry, first_seq) = (entries[0].index, seq(events[0].cursor.as_str()));
    assert!(
        first_entry > 0 && first_seq > 1,
        "the limits dropped nothing"
    );
    drop(rt);
    store.close();
    drop(store);

    let disk = rusqlite_connection(&path);
    let count = |sql: &str, from: u64| -> i64 {
        disk.query_row(
            sql,
            rusqlite::params![worker.as_str(), from as i64],
            |row| row.get(0),
        )
        .unwrap()
    };
    for (sql, from) in [
        (
            "SELECT COUNT(*) FROM entries WHERE worker_id = ?1 AND idx < ?2",
            first_entry,
        ),
        (
            "SELECT COUNT(*) FROM entry_parts WHERE worker_id = ?1 AND idx < ?2",
            first_entry,
        ),
        (
            "SELECT COUNT(*) FROM events WHERE worker_id = ?1 AND last_seq < ?2",
            first_seq,
        ),
    ] {
        assert_eq!(count(sql, from), 0, "{sql} from {from}");
    }
    let on_disk = count(
        "SELECT COUNT(*) FROM entries WHERE worker_id = ?1 AND idx >= ?2",
        first_entry,
    );
    assert_eq!(on_disk, entries.len() as i64);
    drop(disk);

    // What is left reads as before: the newest turns, whole.
    let (rt, _store) = common::sqlite_runtime(&path, options());
    let reloaded = test_util::all_entries(&rt, &worker).await;
    assert_eq!(reloaded.first().map(|e| e.index), Some(first_entry));
    assert_eq!(reloaded.len(), entries.len());
    assert!(reloaded.last().unwrap().text.contains("29 x"));
}
