//! Finding Workers among 100,000, and forking a 10,000-entry Worker.
//!
//! `cargo bench -p yoi-runtime-embedded --bench search` (set
//! `YOI_SEARCH_WORKERS` for another population, e.g. 10000 for a quick run)
//!
//! Targets (docs/benchmarks.md), on each store, in one run: a page of 50
//! filtered by one metadata pair that matches 1 % of the Workers, and a
//! page of 50 sorted by `updated_at`, each within 3x the cost of an
//! unfiltered page of 50; a count with that filter, and a fork of a
//! 10,000-entry Worker, reported. Prints one line per measurement, then a
//! ratio and a verdict per target.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use yoi_runtime_api::dto::{
    BusyPolicy, CreateWorkerRequest, ForkRequest, SortOrder, WorkerFilter, WorkerListQuery,
    WorkerSort,
};
use yoi_runtime_api::{ProfileName, Runtime, WorkerId, test_util};
use yoi_runtime_embedded::backend::SilentBackend;
use yoi_runtime_embedded::{
    BackendConfig, EmbeddedOptions, EmbeddedRuntime, Limits, ProfileConfig,
};

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        profiles: vec![
            ProfileConfig {
                name: ProfileName::new("silent").unwrap(),
                system_prompt: None,
                backend: BackendConfig::Custom(Arc::new(SilentBackend)),
            },
            ProfileConfig::echo(ProfileName::new("echo").unwrap(), Duration::ZERO),
        ],
        limits: Limits {
            max_transcript_entries: 10_000,
            max_events_per_worker: 40_000,
            ..Limits::default()
        },
        ..EmbeddedOptions::default()
    }
}

fn runtime_on(store: &str) -> EmbeddedRuntime {
    if store == "memory" {
        EmbeddedRuntime::new(options()).unwrap()
    } else {
        common::sqlite_runtime(options())
    }
}

/// `workers` Workers, one in a hundred tagged `project=needle`, made 256
/// at a time (on SQLite they share commits).
async fn populate(rt: &EmbeddedRuntime, workers: usize) {
    let mut made = 0;
    while made < workers {
        let batch = (workers - made).min(256);
        let calls = (made..made + batch).map(|n| {
            let project = if n % 100 == 0 { "needle" } else { "hay" };
            rt.create_worker(CreateWorkerRequest {
                profile: Some(ProfileName::new("silent").unwrap()),
                metadata: [("project".to_owned(), project.to_owned())].into(),
                ..CreateWorkerRequest::default()
            })
        });
        for created in futures_util::future::join_all(calls).await {
            created.unwrap();
        }
        made += batch;
    }
}

/// A Worker with `entries` complete transcript entries: each turn adds
/// two (the input and its echoed reply).
async fn filled_worker(rt: &EmbeddedRuntime, entries: u64) -> WorkerId {
    let request = CreateWorkerRequest {
        profile: Some(ProfileName::new("echo").unwrap()),
        ..CreateWorkerRequest::default()
    };
    let id = rt.create_worker(request).await.unwrap().summary.worker_id;
    for n in 0..entries.div_ceil(2) {
        test_util::send(rt, &id, &format!("input {n}"), BusyPolicy::Reject).await;
        test_util::wait_idle(rt, &id).await;
    }
    id
}

/// The median time of one call, over batches of calls for about `budget`.
async fn measure<F, Fut>(budget: Duration, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Warm up (caches, prepared statements).
    for _ in 0..5 {
        call().await;
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget || samples.len() < 5 {
        let at = Instant::now();
        call().await;
        samples.push(at.elapsed());
    }
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn page(filter: WorkerFilter, sort: WorkerSort, order: SortOrder) -> WorkerListQuery {
    WorkerListQuery {
        filter,
        sort,
        order,
        limit: Some(50),
        ..WorkerListQuery::default()
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // and expects a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let workers: usize = std::env::var("YOI_SEARCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 100_000 });
    let budget = if quick {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(2)
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let needle = WorkerFilter {
        metadata: [("project".to_owned(), "needle".to_owned())].into(),
        ..WorkerFilter::default()
    };
    let mut verdicts = Vec::new();
    for store in ["memory", "sqlite"] {
        tokio.block_on(async {
            let rt = runtime_on(store);
            let made = Instant::now();
            populate(&rt, workers).await;
            println!("{store}: {workers} Workers made in {:.1?}", made.elapsed());
            let list = |query: WorkerListQuery| {
                let rt = rt.clone();
                move || {
                    let rt = rt.clone();
                    let query = query.clone();
                    async move {
                        let page = rt.list_workers(query).await.unwrap();
                        assert!(!page.items.is_empty());
                    }
                }
            };
            let plain = measure(
                budget,
                list(page(
                    WorkerFilter::default(),
                    WorkerSort::CreatedAt,
                    SortOrder::Asc,
                )),
            )
            .await;
            let filtered = measure(
                budget,
                list(page(needle.clone(), WorkerSort::CreatedAt, SortOrder::Asc)),
            )
            .await;
            let by_updated = measure(
                budget,
                list(page(
                    WorkerFilter::default(),
                    WorkerSort::UpdatedAt,
                    SortOrder::Desc,
                )),
            )
            .await;
            let counted = measure(budget, || {
                let rt = rt.clone();
                let needle = needle.clone();
                async move {
                    let count = rt.count_workers(needle).await.unwrap().count;
                    assert_eq!(count as usize, workers.div_ceil(100));
                }
            })
            .await;
            println!("{store}: unfiltered page of 50: {plain:.1?}");
            println!("{store}: page of 50 filtered by a 1 % metadata pair: {filtered:.1?}");
            println!("{store}: page of 50 by updated_at desc: {by_updated:.1?}");
            println!("{store}: count with that filter: {counted:.1?}");
            for (what, took) in [("filtered page", filtered), ("updated_at page", by_updated)] {
                let ratio = took.as_secs_f64() / plain.as_secs_f64();
                let verdict = if ratio <= 3.0 { "PASS" } else { "MISS" };
                verdicts.push(format!(
                    "{store}: {what} / unfiltered page = {ratio:.2}x (target <= 3x): {verdict}"
                ));
            }

            let entries = if quick { 1_000 } else { 10_000 };
            let source = filled_worker(&rt, entries).await;
            let forked = Instant::now();
            let fork = rt
                .fork_worker(&source, ForkRequest::default())
                .await
                .unwrap();
            let took = forked.elapsed();
            assert_eq!(fork.summary.transcript_len, entries);
            verdicts.push(format!(
                "{store}: fork of a {entries}-entry Worker: {took:.1?} (reported)"
            ));
            rt.shutdown().await;
        });
    }
    println!();
    for line in verdicts {
        println!("{line}");
    }
}
