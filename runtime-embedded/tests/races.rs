//! Requests that race on one Worker of a persistent Runtime: a Worker
//! deleted while other requests load it from the store stays deleted, and
//! loads racing with inputs and eviction never make a stale copy
//! resident; renames racing with a delete leave nothing of the Worker on
//! disk. Also: creates racing at the live-Worker cap stop at it.

mod common;

use std::sync::Arc;

use yoi_runtime_api::dto::{BusyPolicy, InputRequest, UpdateWorkerRequest};
use yoi_runtime_api::{ErrorCode, Runtime, test_util};
use yoi_runtime_embedded::store::SqliteStore;
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, Limits};

/// A SQLite Runtime that keeps at most two Workers in memory, so most
/// reads load a Worker from the store.
fn two_resident(label: &str) -> (Arc<EmbeddedRuntime>, Arc<SqliteStore>) {
    let path = test_util::temp_dir(label).join("store.db");
    let options = EmbeddedOptions {
        limits: Limits {
            max_resident_workers: 2,
            ..Limits::default()
        },
        ..common::options_with_slow_profile()
    };
    let (runtime, store) = common::sqlite_runtime(&path, options);
    (Arc::new(runtime), store)
}

/// Readers that find a Worker evicted load it from the store; a delete
/// racing with them must not be undone by a load that read the store
/// before the deletion reached it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_deleted_while_others_load_it_stays_deleted() {
    let (runtime, _store) = two_resident("races-delete");
    for round in 0..100 {
        let doomed = test_util::create(&*runtime, None).await;
        // Newer Workers push it out of memory once it is durable.
        for _ in 0..3 {
            test_util::create(&*runtime, None).await;
        }
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (runtime, doomed) = (runtime.clone(), doomed.clone());
                tokio::spawn(async move {
                    for _ in 0..50 {
                        if runtime.worker(&doomed).await.is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        runtime.delete_worker(&doomed).await.unwrap();
        for reader in readers {
            reader.await.unwrap();
        }
        let after = runtime.worker(&doomed).await;
        assert_eq!(
            after.err().map(|err| err.code()),
            Some(ErrorCode::UnknownWorker),
            "round {round}: {doomed} came back after its delete answered"
        );
    }
}

/// Loads of evicted Workers racing with inputs to them and with their
/// eviction: every accepted input is in its Worker's transcript exactly
/// once at the end, so no load ever made a stale copy resident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_racing_with_inputs_and_eviction_lose_nothing() {
    let (runtime, _store) = two_resident("races-load");
    let mut workers = Vec::new();
    for _ in 0..6 {
        workers.push(test_util::create(&*runtime, None).await);
    }
    let workers = Arc::new(workers);
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let (runtime, workers) = (runtime.clone(), workers.clone());
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for n in 0..60 {
                    let worker = &workers[(task + n * 5) % workers.len()];
                    if n % 3 == 0 {
                        let text = format!("task {task} input {n}");
                        let request = InputRequest {
                            on_busy: BusyPolicy::Queue,
                            ..InputRequest::new(text.clone())
                        };
                        runtime.send_input(worker, request).await.unwrap();
                        accepted.push((worker.clone(), text));
                    } else {
                        runtime.worker(worker).await.unwrap();
                    }
                }
                accepted
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.extend(task.await.unwrap());
    }
    for worker in workers.iter() {
        test_util::wait_idle(&*runtime, worker).await;
        let entries = test_util::all_entries(&*runtime, worker).await;
        let texts = test_util::user_texts(&entries);
        for (_, text) in accepted.iter().filter(|(w, _)| w == worker) {
            let times = texts.iter().filter(|t| *t == text).count();
            assert_eq!(
                times, 1,
                "{worker}: {text:?} is in the transcript {times} times"
            );
        }
    }
}

/// Creates racing at `max_live_workers` stop at it exactly: the check and
/// the new Worker's count are one step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_racing_at_the_live_cap_stop_at_it() {
    for round in 0..20 {
        let runtime = Arc::new(
            EmbeddedRuntime::new(EmbeddedOptions {
                limits: Limits {
                    max_live_workers: 5,
                    ..Limits::default()
                },
                ..EmbeddedOptions::default()
            })
            .unwrap(),
        );
        let creates: Vec<_> = (0..40)
            .map(|_| {
                let runtime = runtime.clone();
                tokio::spawn(async move { runtime.create_worker(Default::default()).await })
            })
            .collect();
        let mut made = 0;
        for create in creates {
            match create.await.unwrap() {
                Ok(_) => made += 1,
                Err(err) => assert_eq!(err.code(), ErrorCode::CapacityExceeded),
            }
        }
        assert_eq!(
            made, 5,
            "round {round}: {made} Workers made under a cap of 5"
        );
    }
}

/// A rename or rollback that holds a Worker while a `DELETE` removes it
/// must leave nothing of it on disk: every change a Worker records comes
/// before its deletion in the store, or is not recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_racing_a_delete_leave_no_rows_behind() {
    let path = test_util::temp_dir("races-orphans").join("store.db");
    let (runtime, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let runtime = Arc::new(runtime);
    for round in 0..300 {
        let worker = test_util::create(&*runtime, None).await;
        let renamers: Vec<_> = (0..2)
            .map(|n| {
                let (runtime, worker) = (runtime.clone(), worker.clone());
                tokio::spawn(async move {
                    for turn in 0..200 {
                        let request = UpdateWorkerRequest {
                            display_name: Some(format!("round {round} task {n} turn {turn}")),
                            metadata: Some([("team".to_owned(), Some(format!("t{turn}")))].into()),
                        };
                        if runtime.update_worker(&worker, request).await.is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        runtime.delete_worker(&worker).await.unwrap();
        for renamer in renamers {
            renamer.await.unwrap();
        }
    }
    drop(runtime);
    store.close();
    drop(store);
    let disk = rusqlite::Connection::open(&path).unwrap();
    for table in [
        "worker_metadata",
        "events",
        "entries",
        "entry_parts",
        "client_ids",
    ] {
        let orphans: i64 = disk
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM {table} WHERE worker_id NOT IN (SELECT id FROM workers)"
                ),
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0, "{orphans} rows of deleted Workers in {table}");
    }
}
