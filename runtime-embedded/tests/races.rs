//! Requests that race on one Worker of a persistent Runtime: a Worker
//! deleted while other requests load it from the store stays deleted.

mod common;

use std::sync::Arc;

use yoi_runtime_api::{ErrorCode, Runtime, test_util};
use yoi_runtime_embedded::{EmbeddedOptions, Limits};

/// Readers that find a Worker evicted load it from the store; a delete
/// racing with them must not be undone by a load that read the store
/// before the deletion reached it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_deleted_while_others_load_it_stays_deleted() {
    let path = test_util::temp_dir("races-delete").join("store.db");
    let options = EmbeddedOptions {
        limits: Limits {
            max_resident_workers: 2,
            ..Limits::default()
        },
        ..common::options_with_slow_profile()
    };
    let (runtime, _store) = common::sqlite_runtime(&path, options);
    let runtime = Arc::new(runtime);
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
