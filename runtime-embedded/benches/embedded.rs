//! In-process hot paths of the embedded runtime.
//!
//! `cargo bench -p yoi-runtime-embedded --bench embedded`
//!
//! Targets (docs/benchmarks.md): a transcript page of 50 from a
//! 1,000,000-entry transcript within 2x of the same page from 1,000 entries;
//! an events page of 100 in a 1,000,000-event log within 2x of a 1,000-event
//! log.

use std::sync::Arc;
use std::time::Duration;

mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use yoi_runtime_api::dto::{
    BusyPolicy, CreateWorkerRequest, EventQuery, InputRequest, TranscriptQuery,
};
use yoi_runtime_api::{EventCursor, ProfileName, Runtime, WorkerId};
use yoi_runtime_embedded::backend::SilentBackend;
use yoi_runtime_embedded::{
    BackendConfig, EmbeddedOptions, EmbeddedRuntime, Limits, ProfileConfig,
};

fn runtime(max_entries: usize) -> EmbeddedRuntime {
    EmbeddedRuntime::new(EmbeddedOptions {
        profiles: vec![ProfileConfig {
            name: ProfileName::new("silent").unwrap(),
            system_prompt: None,
            backend: BackendConfig::Custom(Arc::new(SilentBackend)),
        }],
        limits: Limits {
            max_transcript_entries: max_entries,
            max_events_per_worker: max_entries,
            ..Limits::default()
        },
        ..EmbeddedOptions::default()
    })
    .unwrap()
}

/// A Worker whose transcript has at least `entries` entries and whose log
/// has at least as many events: each interrupting input adds two entries
/// (input, cancelled reply) and three or more events.
async fn filled_worker(rt: &EmbeddedRuntime, entries: u64) -> WorkerId {
    let request = CreateWorkerRequest {
        profile: Some(ProfileName::new("silent").unwrap()),
        ..CreateWorkerRequest::default()
    };
    let id = rt.create_worker(request).await.unwrap().summary.worker_id;
    for n in 0..entries.div_ceil(2) {
        let input = InputRequest::new(format!("input {n}")).on_busy(BusyPolicy::Interrupt);
        rt.send_input(&id, input).await.unwrap();
    }
    rt.cancel(&id).await.unwrap();
    id
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The Runtime under test: memory store, or SQLite in a fresh file.
fn runtime_on(store: &str) -> EmbeddedRuntime {
    match store {
        "memory" => EmbeddedRuntime::with_defaults(),
        _ => common::sqlite_runtime(EmbeddedOptions::default()),
    }
}

/// `send_input` on idle Workers, one at a time and 16 at once, with each
/// store. On SQLite every call waits until its input is durable; 16 at
/// once share commits (group commit).
fn send_input(c: &mut Criterion) {
    let tokio = tokio_runtime();
    let mut group = c.benchmark_group("send_input");
    for store in ["memory", "sqlite"] {
        let rt = tokio.block_on(async { runtime_on(store) });
        for concurrent in [1usize, 16] {
            let id = BenchmarkId::new(store, format!("{concurrent}_at_once"));
            group.bench_function(id, |b| {
                // Fresh Workers are made outside the timed part, so every
                // measured call lands on an idle Worker.
                b.to_async(&tokio).iter_custom(|iters| {
                    let rt = rt.clone();
                    async move {
                        let mut ids = Vec::with_capacity(iters as usize);
                        for _ in 0..iters {
                            let created = rt.create_worker(CreateWorkerRequest::default());
                            ids.push(created.await.unwrap().summary.worker_id);
                        }
                        let started = std::time::Instant::now();
                        for chunk in ids.chunks(concurrent) {
                            let calls = chunk
                                .iter()
                                .map(|id| rt.send_input(id, InputRequest::new("hello")));
                            for result in futures_util::future::join_all(calls).await {
                                result.unwrap();
                            }
                        }
                        started.elapsed()
                    }
                });
            });
        }
    }
    group.finish();
}

fn create_worker(c: &mut Criterion) {
    let tokio = tokio_runtime();
    let rt = EmbeddedRuntime::with_defaults();
    c.bench_function("create_worker", |b| {
        b.to_async(&tokio).iter(|| async {
            rt.create_worker(CreateWorkerRequest::default())
                .await
                .unwrap()
        });
    });
}

fn transcript_page(c: &mut Criterion) {
    let tokio = tokio_runtime();
    let mut group = c.benchmark_group("transcript_page_50");
    for entries in [1_000u64, 1_000_000] {
        let rt = runtime(entries as usize + 16);
        let id = tokio.block_on(filled_worker(&rt, entries));
        // The newest page: the worst case for a structure that walks from
        // the start.
        let start = entries - 50;
        group.bench_with_input(BenchmarkId::from_parameter(entries), &entries, |b, _| {
            b.to_async(&tokio).iter(|| async {
                let page = rt
                    .transcript(
                        &id,
                        TranscriptQuery {
                            start: Some(start),
                            limit: Some(50),
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(page.entries.len(), 50);
                page
            });
        });
    }
    group.finish();
}

fn events_page(c: &mut Criterion) {
    let tokio = tokio_runtime();
    let mut group = c.benchmark_group("events_page_100");
    for events in [1_000u64, 1_000_000] {
        let rt = runtime(events as usize);
        // About 1.5 events per transcript entry, so this fills the log.
        let id = tokio.block_on(filled_worker(&rt, events));
        let last = tokio
            .block_on(rt.worker(&id))
            .unwrap()
            .summary
            .last_cursor
            .unwrap();
        // The embedded Runtime's cursors are `<seq>.<epoch>`.
        let (seq, epoch) = last.as_str().split_once('.').unwrap();
        let seq: u64 = seq.parse().unwrap();
        let after = EventCursor::new(format!("{}.{epoch}", seq - 200)).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(events), &events, |b, _| {
            b.to_async(&tokio).iter(|| async {
                let page = rt
                    .events(
                        &id,
                        EventQuery {
                            after: Some(after.clone()),
                            limit: Some(100),
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(page.events.len(), 100);
                page
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = send_input, create_worker, transcript_page, events_page
}
criterion_main!(benches);
