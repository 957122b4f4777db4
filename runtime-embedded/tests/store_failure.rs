//! A store whose writes fail (a full disk, a file gone): the Runtime
//! refuses what it could not keep, without making the change, reports
//! itself unavailable and says why in its diagnostics, instead of answering
//! `ready` while every change is lost; and takes changes again once the
//! store writes again. (`cli/tests/disk_full.rs` fills a real disk.) A
//! store whose write does not end (here: another program holds the
//! database's write lock) is treated alike until the write ends.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use yoi_runtime_api::dto::{
    BusyPolicy, CreateWorkerRequest, ForkRequest, InputRequest, PageKey, PassOrder, RuntimeState,
    UpdateWorkerRequest, WorkerCounts, WorkerFilter, WorkerListQuery,
};
use yoi_runtime_api::{ErrorCode, Runtime, RuntimeError, Timestamp, WorkerId, test_util};
use yoi_runtime_embedded::store::{
    Change, LoadBounds, SqliteStore, StoreError, StoredSummary, StoredWorker, Ticket, WorkerStore,
};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime};

/// A SQLite store whose writer can be made to fail, as a full disk would:
/// from then on nothing recorded becomes durable.
#[derive(Debug)]
struct Failing {
    inner: SqliteStore,
    failed: AtomicBool,
}

#[async_trait]
impl WorkerStore for Failing {
    fn persistent(&self) -> bool {
        self.inner.persistent()
    }
    fn record(&self, changes: Vec<Change>) -> Ticket {
        self.inner.record(changes)
    }
    fn recorded(&self) -> Ticket {
        self.inner.recorded()
    }
    fn is_durable(&self, ticket: Ticket) -> bool {
        !self.has_failed() && self.inner.is_durable(ticket)
    }
    async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        if self.has_failed() {
            return Err(StoreError::Failed);
        }
        self.inner.durable(ticket).await
    }
    fn load(
        &self,
        worker_id: &WorkerId,
        bounds: LoadBounds,
    ) -> Result<Option<StoredWorker>, StoreError> {
        self.inner.load(worker_id, bounds)
    }
    fn search(
        &self,
        pass: &PassOrder,
        filter: &WorkerFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> Result<Option<Vec<(PageKey, StoredSummary)>>, StoreError> {
        self.inner.search(pass, filter, after, limit)
    }
    fn count(&self, filter: &WorkerFilter) -> Result<u64, StoreError> {
        self.inner.count(filter)
    }
    fn counts(&self) -> Result<WorkerCounts, StoreError> {
        self.inner.counts()
    }
    fn unfinished(&self) -> Result<Vec<WorkerId>, StoreError> {
        self.inner.unfinished()
    }
    fn stopped(&self) -> Result<Vec<(WorkerId, Timestamp)>, StoreError> {
        self.inner.stopped()
    }
    fn close(&self) {
        self.inner.close();
    }
    fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_store_makes_the_runtime_unavailable_and_says_so() {
    let options = EmbeddedOptions::default();
    let path = test_util::temp_dir("store-failure").join("yoi.sqlite3");
    let store = Arc::new(Failing {
        inner: SqliteStore::open(&path, common::retain(&options)).unwrap(),
        failed: AtomicBool::new(false),
    });
    let rt = EmbeddedRuntime::open(options, store.clone()).unwrap();
    let worker = test_util::create(&rt, None).await;
    assert_eq!(rt.status().await.unwrap().state, RuntimeState::Ready);
    assert!(rt.diagnostics().await.unwrap().is_empty());

    let before = rt.worker(&worker).await.unwrap();
    store.failed.store(true, Ordering::SeqCst);
    // What would not last is refused, not acknowledged.
    let refused = rt
        .send_input(
            &worker,
            InputRequest {
                text: "lost?".to_owned(),
                on_busy: BusyPolicy::Reject,
                client_input_id: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::RuntimeUnavailable, "{refused}");
    // The Runtime says it is unavailable, and why, without the path.
    assert_eq!(rt.status().await.unwrap().state, RuntimeState::Unavailable);
    let diagnostics = rt.diagnostics().await.unwrap();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0].code, "store_failed");
    assert!(!diagnostics[0].message.contains("store-failure"));
    // Reads of what was kept still work, and the refused input was not
    // taken: the transcript is as it was.
    assert_eq!(rt.worker(&worker).await.unwrap().summary.worker_id, worker);
    assert!(test_util::all_entries(&rt, &worker).await.is_empty());
    // Nothing else that must last is taken either.
    let unavailable = |result: Result<(), RuntimeError>, what: &str| {
        let err = result.expect_err(what);
        assert_eq!(err.code(), ErrorCode::RuntimeUnavailable, "{what}: {err}");
    };
    unavailable(
        rt.create_worker(CreateWorkerRequest::default())
            .await
            .map(drop),
        "create",
    );
    unavailable(
        rt.fork_worker(&worker, ForkRequest::default())
            .await
            .map(drop),
        "fork",
    );
    unavailable(
        rt.update_worker(
            &worker,
            UpdateWorkerRequest {
                display_name: Some("renamed".to_owned()),
                ..UpdateWorkerRequest::default()
            },
        )
        .await
        .map(drop),
        "rename",
    );
    unavailable(rt.delete_worker(&worker).await, "delete");
    assert_eq!(
        rt.worker(&worker).await.unwrap().summary.display_name,
        before.summary.display_name
    );
    assert_eq!(rt.status().await.unwrap().workers.idle, 1);
    // Lists and counts read what the store has rather than refusing.
    let page = rt.list_workers(WorkerListQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].worker_id, worker);
    let by_profile = WorkerFilter {
        profile: Some(before.summary.profile.name.to_string()),
        ..WorkerFilter::default()
    };
    assert_eq!(rt.count_workers(by_profile).await.unwrap().count, 1);

    // The store writes again: so does the Runtime.
    store.failed.store(false, Ordering::SeqCst);
    assert_eq!(rt.status().await.unwrap().state, RuntimeState::Ready);
    assert!(rt.diagnostics().await.unwrap().is_empty());
    rt.send_input(&worker, InputRequest::new("kept"))
        .await
        .unwrap();
    test_util::wait_idle(&rt, &worker).await;
    assert_eq!(test_util::all_entries(&rt, &worker).await.len(), 2);
}

/// Polls `condition` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A Runtime whose store's write is stalled: another program holds the
/// database's write lock (the writer's commit waits up to its busy timeout
/// of 5 s a try), and an input waits for that commit. Returns once the
/// Runtime says it is unavailable, with the lock (`ROLLBACK` ends it) and
/// the waiting input.
struct Stalled {
    rt: EmbeddedRuntime,
    worker: WorkerId,
    lock: rusqlite::Connection,
    held: tokio::task::JoinHandle<Result<yoi_runtime_api::dto::InputAcceptance, RuntimeError>>,
}

async fn stalled(label: &str) -> Stalled {
    let options = EmbeddedOptions::default();
    let path = test_util::temp_dir(label).join("yoi.sqlite3");
    let store = SqliteStore::open(&path, common::retain(&options))
        .unwrap()
        .stall_after(std::time::Duration::from_millis(200));
    let rt = EmbeddedRuntime::open(options, Arc::new(store)).unwrap();
    let worker = test_util::create(&rt, None).await;
    assert_eq!(rt.status().await.unwrap().state, RuntimeState::Ready);
    let lock = rusqlite::Connection::open(&path).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let held = tokio::spawn({
        let (rt, worker) = (rt.clone(), worker.clone());
        async move { rt.send_input(&worker, InputRequest::new("held")).await }
    });
    eventually("unavailable while the write waits", async || {
        rt.status().await.unwrap().state == RuntimeState::Unavailable
    })
    .await;
    Stalled {
        rt,
        worker,
        lock,
        held,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_makes_the_runtime_unavailable_until_its_write_ends() {
    let Stalled {
        rt,
        worker,
        lock,
        held,
    } = stalled("store-stall").await;
    let diagnostics = rt.diagnostics().await.unwrap();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0].code, "store_stalled");
    // Nothing new that must last is taken; reads and lists go on.
    let refused = rt
        .send_input(&worker, InputRequest::new("refused"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::RuntimeUnavailable, "{refused}");
    let page = rt.list_workers(WorkerListQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(
        !held.is_finished(),
        "an input answered before it was on disk"
    );

    // The lock goes: the waiting input is taken, and the Runtime is back.
    lock.execute_batch("ROLLBACK").unwrap();
    held.await.unwrap().unwrap();
    assert_eq!(rt.status().await.unwrap().state, RuntimeState::Ready);
    assert!(rt.diagnostics().await.unwrap().is_empty());
    test_util::wait_idle(&rt, &worker).await;
    let texts: Vec<String> = test_util::all_entries(&rt, &worker)
        .await
        .into_iter()
        .map(|entry| entry.text)
        .collect();
    assert_eq!(texts, ["held", "echo: held"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_does_not_wait_for_a_stalled_write() {
    let Stalled { rt, lock, held, .. } = stalled("store-stall-shutdown").await;
    // The writer would wait out the lock (5 s a try, three tries);
    // shutting down leaves it instead.
    tokio::time::timeout(std::time::Duration::from_secs(3), rt.shutdown())
        .await
        .expect("shutdown waited for a stalled write");
    // The input waiting for that write is answered: it will not last.
    let refused = tokio::time::timeout(std::time::Duration::from_secs(1), held)
        .await
        .expect("the waiting input was not answered")
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::RuntimeUnavailable, "{refused}");
    drop(lock);
}
