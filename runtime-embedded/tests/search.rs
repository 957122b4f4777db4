//! Finding Workers, property-tested: a paging pass with random creates,
//! updates and deletes between its pages never misses a Worker that exists
//! throughout, and shows it once (twice at most when `updated_at` ordered
//! and updated during the pass), on the memory store and on SQLite. Also:
//! search survives a restart, and migration 4 indexes metadata written
//! before it.

mod common;

use proptest::prelude::*;
use yoi_runtime_api::conformance::{PassChange, PassFilter, check_paging_pass, page_all};
use yoi_runtime_api::dto::{CreateWorkerRequest, SortOrder, WorkerFilter, WorkerSort};
use yoi_runtime_api::{Runtime, test_util};

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
