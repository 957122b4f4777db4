//! Registry routing overhead: the same call through `RuntimeRegistry` and
//! `Arc<dyn Runtime>` against a direct call on `EmbeddedRuntime`.
//!
//! `cargo bench -p yoi --bench registry`
//!
//! Target (docs/benchmarks.md): under 10% added.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use yoi_runtime_api::dto::{CreateWorkerRequest, InputRequest, TranscriptQuery, WorkerState};
use yoi_runtime_api::{Runtime, RuntimeId};
use yoi_runtime_embedded::EmbeddedRuntime;
use yoi_workspace_server::RuntimeRegistry;

fn routing(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let embedded = EmbeddedRuntime::with_defaults();
    let mut registry = RuntimeRegistry::new();
    // A few siblings, so the lookup is not trivially the only entry.
    for n in 0..4 {
        let other = EmbeddedRuntime::new(yoi_runtime_embedded::EmbeddedOptions {
            runtime_id: RuntimeId::new(format!("sibling-{n}")).unwrap(),
            ..Default::default()
        })
        .unwrap();
        tokio.block_on(registry.register(Arc::new(other))).unwrap();
    }
    tokio
        .block_on(registry.register(Arc::new(embedded.clone())))
        .unwrap();
    let rid = embedded.id().clone();
    let wid = tokio
        .block_on(embedded.create_worker(CreateWorkerRequest::default()))
        .unwrap()
        .summary
        .worker_id;

    // The fixed cost the registry adds: find the entry, check a capability.
    c.bench_function("registry_lookup_and_check", |b| {
        b.iter(|| {
            let entry = registry.get(std::hint::black_box(&rid)).unwrap();
            entry
                .capabilities()
                .check(&rid, yoi_runtime_api::Operation::Transcript)
                .unwrap();
        });
    });

    let mut group = c.benchmark_group("worker_detail");
    group.bench_function("direct", |b| {
        b.to_async(&tokio)
            .iter(|| async { embedded.worker(&wid).await.unwrap() });
    });
    group.bench_function("registry", |b| {
        b.to_async(&tokio)
            .iter(|| async { registry.worker(&rid, &wid).await.unwrap() });
    });
    group.finish();

    // A Worker with a 50-entry transcript: a page a browser really reads.
    let busy = tokio.block_on(async {
        let id = embedded
            .create_worker(CreateWorkerRequest::default())
            .await
            .unwrap()
            .summary
            .worker_id;
        for n in 0..25 {
            embedded
                .send_input(&id, InputRequest::new(format!("message {n}")))
                .await
                .unwrap();
            while embedded.worker(&id).await.unwrap().summary.state != WorkerState::Idle {
                tokio::task::yield_now().await;
            }
        }
        id
    });
    let mut group = c.benchmark_group("transcript_page_of_50");
    group.bench_function("direct", |b| {
        b.to_async(&tokio).iter(|| async {
            embedded
                .transcript(&busy, TranscriptQuery::default())
                .await
                .unwrap()
        });
    });
    group.bench_function("registry", |b| {
        b.to_async(&tokio).iter(|| async {
            registry
                .transcript(&rid, &busy, TranscriptQuery::default())
                .await
                .unwrap()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("transcript_page_empty");
    group.bench_function("direct", |b| {
        b.to_async(&tokio).iter(|| async {
            embedded
                .transcript(&wid, TranscriptQuery::default())
                .await
                .unwrap()
        });
    });
    group.bench_function("registry", |b| {
        b.to_async(&tokio).iter(|| async {
            registry
                .transcript(&rid, &wid, TranscriptQuery::default())
                .await
                .unwrap()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = routing
}
criterion_main!(benches);
