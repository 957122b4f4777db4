//! Finding Workers, property-tested: a paging pass with random creates,
//! updates and deletes between its pages shows every Worker that exists
//! throughout exactly once, on the memory store and on SQLite; so do passes
//! while other tasks rename Workers as fast as they can. Also: search
//! survives a restart.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use yoi_runtime_api::conformance::{PassChange, PassFilter, check_paging_pass, page_all};
use yoi_runtime_api::dto::{
    CreateWorkerRequest, SortOrder, UpdateWorkerRequest, WorkerFilter, WorkerSort, timestamp_nanos,
};
use yoi_runtime_api::{Runtime, test_util};
use yoi_runtime_embedded::EmbeddedRuntime;

fn change() -> impl Strategy<Value = PassChange> {
    prop_oneof![
        Just(PassChange::Nothing),
        Just(PassChange::Create),
        (0usize..32).prop_map(PassChange::Update),
        (0usize..32).prop_map(PassChange::Delete),
    ]
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

proptest! {
    // No regression file in the source tree: a failure prints its case.
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_paging_pass_never_misses_or_repeats(
        changes in prop::collection::vec(change(), 1..10),
        start in 0usize..14,
        limit in 1u32..5,
        updated in any::<bool>(),
        desc in any::<bool>(),
        sqlite in any::<bool>(),
        which in prop_oneof![
            Just(PassFilter::Tagged),
            Just(PassFilter::Unfiltered),
            Just(PassFilter::AnyState),
        ],
    ) {
        let sort = if updated { WorkerSort::UpdatedAt } else { WorkerSort::CreatedAt };
        let order = if desc { SortOrder::Desc } else { SortOrder::Asc };
        block_on(async {
            if sqlite {
                let path = test_util::temp_dir("search-prop").join("store.db");
                let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
                check_paging_pass(&rt, which, (sort, order), start, limit, &changes).await;
                rt.shutdown().await;
                drop(store);
            } else {
                let rt = common::runtime_with_slow_profile();
                check_paging_pass(&rt, which, (sort, order), start, limit, &changes).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_work_after_a_restart() {
    let path = test_util::temp_dir("search-restart").join("store.db");
    let filter = WorkerFilter {
        metadata: [("project".to_owned(), "apollo".to_owned())].into(),
        ..WorkerFilter::default()
    };
    let mut made = Vec::new();
    {
        let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
        for n in 0..5 {
            let project = if n % 2 == 0 { "apollo" } else { "gemini" };
            let request = CreateWorkerRequest {
                metadata: [("project".to_owned(), project.to_owned())].into(),
                ..CreateWorkerRequest::default()
            };
            made.push(rt.create_worker(request).await.unwrap().summary.worker_id);
        }
        rt.shutdown().await;
        store.close();
    }
    let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let found = page_all(&rt, &filter, WorkerSort::UpdatedAt, SortOrder::Asc, 2).await;
    let ids: Vec<_> = found.iter().map(|s| s.worker_id.clone()).collect();
    assert_eq!(ids, vec![made[0].clone(), made[2].clone(), made[4].clone()]);
    assert_eq!(rt.count_workers(filter).await.unwrap().count, 3);
}

/// `updated_at` passes, both orders, while two tasks rename the Workers as
/// fast as they can and a third creates, renames and deletes others: a
/// rename dated just before a pass's snapshot and recorded (or indexed)
/// just after it must not move its Worker between the pass's pages, so
/// every pass shows every Worker that exists throughout exactly once.
async fn passes_while_renaming(runtime: Arc<EmbeddedRuntime>) {
    let mut ids = Vec::new();
    for _ in 0..24 {
        let created = runtime.create_worker(CreateWorkerRequest::default());
        ids.push(created.await.unwrap().summary.worker_id);
    }
    let ids = Arc::new(ids);
    let stop = Arc::new(AtomicBool::new(false));
    let renamers: Vec<_> = (0..2)
        .map(|first| {
            let (runtime, ids, stop) = (runtime.clone(), ids.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = first;
                while !stop.load(Ordering::Relaxed) {
                    let rename = UpdateWorkerRequest {
                        display_name: Some(format!("rename {n}")),
                        metadata: None,
                    };
                    runtime
                        .update_worker(&ids[n % ids.len()], rename)
                        .await
                        .unwrap();
                    n += 2;
                    // The memory store never waits: let the passes run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let churn = {
        let (runtime, stop) = (runtime.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let created = runtime.create_worker(CreateWorkerRequest::default());
                let id = created.await.unwrap().summary.worker_id;
                let rename = UpdateWorkerRequest {
                    display_name: Some(format!("passing {n}")),
                    metadata: None,
                };
                runtime.update_worker(&id, rename).await.unwrap();
                runtime.delete_worker(&id).await.unwrap();
                n += 1;
                tokio::task::yield_now().await;
            }
        })
    };
    for pass in 0..300 {
        let order = if pass % 2 == 0 {
            SortOrder::Desc
        } else {
            SortOrder::Asc
        };
        let filter = WorkerFilter::default();
        let shown = page_all(&*runtime, &filter, WorkerSort::UpdatedAt, order, 5).await;
        let mut times: BTreeMap<_, usize> = BTreeMap::new();
        for summary in shown {
            *times.entry(summary.worker_id).or_default() += 1;
        }
        for id in ids.iter() {
            let shown = times.get(id).copied().unwrap_or(0);
            assert_eq!(
                shown, 1,
                "pass {pass} ({order:?}) showed {id} {shown} times"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in renamers.into_iter().chain([churn]) {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_are_exact_while_workers_change_in_memory() {
    passes_while_renaming(Arc::new(common::runtime_with_slow_profile())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_are_exact_while_workers_change_on_sqlite() {
    let path = test_util::temp_dir("search-race").join("store.db");
    let (runtime, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let runtime = Arc::new(runtime);
    passes_while_renaming(runtime.clone()).await;
    runtime.shutdown().await;
    drop(runtime);
    store.close();
}

/// A store opened after the wall clock stepped back (here: written while
/// the clock was ten minutes ahead): changes are still dated after every
/// `updated_at` on disk, so "newest activity first" stays true.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_after_the_clock_stepped_back_are_still_the_newest() {
    let path = test_util::temp_dir("search-clock").join("store.db");
    let old = {
        let (rt, store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
        let old = test_util::create(&rt, None).await;
        rt.shutdown().await;
        drop(rt);
        store.close();
        old
    };
    let ten_minutes = 600_000_000_000_i64;
    let ahead: i64 = {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute(
                "UPDATE workers SET updated_at = updated_at + ?1",
                [ten_minutes],
            )
            .unwrap();
        connection
            .query_row("SELECT updated_at FROM workers", [], |row| row.get(0))
            .unwrap()
    };
    let (rt, _store) = common::sqlite_runtime(&path, common::options_with_slow_profile());
    let new = rt
        .create_worker(CreateWorkerRequest::default())
        .await
        .unwrap();
    assert!(timestamp_nanos(new.summary.updated_at) > ahead);
    let newest = page_all(
        &rt,
        &WorkerFilter::default(),
        WorkerSort::UpdatedAt,
        SortOrder::Desc,
        10,
    )
    .await;
    assert_eq!(newest[0].worker_id, new.summary.worker_id);
    let rename = UpdateWorkerRequest {
        display_name: Some("renamed".to_owned()),
        metadata: None,
    };
    let renamed = rt.update_worker(&old, rename).await.unwrap();
    assert!(renamed.summary.updated_at > new.summary.updated_at);
}
