//! Measures resident memory per idle Worker and per transcript entry.
//!
//! `cargo run --release -p yoi-runtime-embedded --example memory [WORKERS] [ENTRIES]`
//!
//! Prints the figures and a verdict against the target of 100,000 idle
//! Workers in under 300 MiB of RSS; exits non-zero when it is missed.
//! Linux only (reads /proc/self/statm).

use std::sync::Arc;

use yoi_runtime_api::dto::{BusyPolicy, CreateWorkerRequest, InputRequest};
use yoi_runtime_api::{ProfileName, Runtime};
use yoi_runtime_embedded::backend::SilentBackend;
use yoi_runtime_embedded::{
    BackendConfig, EmbeddedOptions, EmbeddedRuntime, Limits, ProfileConfig,
};

const TARGET_BYTES: u64 = 300 * 1024 * 1024;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let workers: u64 = args
        .next()
        .map_or(100_000, |a| a.parse().expect("WORKERS is a number"));
    let entries: u64 = args
        .next()
        .map_or(100_000, |a| a.parse().expect("ENTRIES is a number"));

    let base = rss_bytes();
    let rt = EmbeddedRuntime::with_defaults();
    for _ in 0..workers {
        rt.create_worker(CreateWorkerRequest::default())
            .await
            .unwrap();
    }
    let with_workers = rss_bytes();
    let per_worker = (with_workers - base) as f64 / workers as f64;
    let scaled = base as f64 + per_worker * 100_000.0;
    println!("idle workers: {workers}");
    println!(
        "rss before: {:.1} MiB, after: {:.1} MiB",
        mib(base),
        mib(with_workers)
    );
    println!("bytes per idle worker: {per_worker:.0}");
    println!(
        "100,000 idle workers: {:.1} MiB RSS (target < 300 MiB): {}",
        mib(scaled as u64),
        if scaled < TARGET_BYTES as f64 {
            "met"
        } else {
            "MISSED"
        }
    );

    // Per transcript entry: one Worker, inputs that interrupt each other, so
    // each adds an input and a (cancelled, empty) reply entry plus events.
    let rt = EmbeddedRuntime::new(EmbeddedOptions {
        runtime_id: "memory".parse().unwrap(),
        profiles: vec![ProfileConfig {
            name: ProfileName::new("silent").unwrap(),
            system_prompt: None,
            backend: BackendConfig::Custom(Arc::new(SilentBackend)),
        }],
        default_profile: ProfileName::new("silent").unwrap(),
        limits: Limits {
            max_transcript_entries: entries as usize + 64,
            max_events_per_worker: 1,
            ..Limits::default()
        },
        ..EmbeddedOptions::default()
    })
    .unwrap();
    let id = rt
        .create_worker(CreateWorkerRequest::default())
        .await
        .unwrap()
        .summary
        .worker_id;
    let before = rss_bytes();
    for n in 0..entries / 2 {
        // About 40 bytes of text, a typical short chat message.
        let text = format!("message number {n:>8} with some words in it");
        rt.send_input(&id, InputRequest::new(text).on_busy(BusyPolicy::Interrupt))
            .await
            .unwrap();
        // Let the interrupted turn's task run to its end, as it would
        // between real requests, so only what the Worker keeps is counted.
        tokio::task::yield_now().await;
    }
    rt.cancel(&id).await.unwrap();
    let after = rss_bytes();
    println!(
        "bytes per transcript entry (40-byte texts, events retention 1): {:.0}",
        (after - before) as f64 / entries as f64
    );
    if scaled >= TARGET_BYTES as f64 {
        std::process::exit(1);
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
