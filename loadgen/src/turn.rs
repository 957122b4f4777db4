//! The `turn` scenario: what one chat cycle costs the server, with the
//! reply waited for on the input request (`?wait_ms=`) against the
//! four-request cycle (input, long-poll events until `turn_completed`,
//! transcript).
//!
//! The server runs as a child process (`yoi serve`), so its CPU time
//! (utime + stime from `/proc/<pid>/stat`) is measured apart from this
//! client's. The two cycles alternate in rounds in one run, so drift on a
//! noisy machine hits both alike.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::child::Server;
use crate::client::{BoxError, Client, RT};

pub(crate) const ROUNDS: u32 = 3;
pub(crate) const CONCURRENCY: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cycle {
    /// create, input (202), events until turn_completed, transcript.
    FourRequests,
    /// create, input with wait_ms (200 with the reply), transcript.
    Wait,
}

pub(crate) async fn cycle(client: &Client, kind: Cycle, n: u64) -> Result<(), BoxError> {
    let worker = client.create_worker().await?;
    let text = format!("turn {n}");
    let path = format!("{RT}/workers/{worker}/input");
    match kind {
        Cycle::FourRequests => client.send_and_wait(&worker, &text).await?,
        Cycle::Wait => {
            let done = client
                .post(&format!("{path}?wait_ms=10000"), &json!({ "text": text }))
                .await?;
            if done.status != 200 || done.json["outcome"] != "completed" {
                return Err(format!("waited input answered {}: {}", done.status, done.json).into());
            }
        }
    }
    let page = client
        .get(&format!("{RT}/workers/{worker}/transcript"))
        .await?;
    if page.json["entries"][1]["text"] != format!("echo: {text}") {
        return Err(format!("wrong reply: {}", page.json).into());
    }
    // Keep the server's memory flat; stop is outside neither cycle, so
    // both pay for it alike.
    client
        .post(&format!("{RT}/workers/{worker}/stop"), &Value::Null)
        .await?;
    Ok(())
}

/// Runs `kind` cycles for `duration`; returns how many completed.
pub(crate) async fn run(client: &Client, kind: Cycle, duration: Duration) -> Result<u64, BoxError> {
    let deadline = Instant::now() + duration;
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, done) = (client.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = done.fetch_add(1, Ordering::Relaxed);
                cycle(&client, kind, n).await?;
            }
            Ok::<_, BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed))
}

/// The scenario: prints server CPU per cycle for each kind and the ratio.
pub(crate) async fn turn(bin: PathBuf, seconds: u64) -> Result<bool, BoxError> {
    let server = Server::start(&bin, &["--memory"])?;
    let client = Client::new(server.base.clone());
    client.wait_ready().await?;
    let slice = Duration::from_secs(seconds.max(2)) / (2 * ROUNDS);
    let mut totals = [(Duration::ZERO, 0u64); 2];
    for _ in 0..ROUNDS {
        for (slot, kind) in [Cycle::FourRequests, Cycle::Wait].into_iter().enumerate() {
            let before = server.cpu()?;
            let cycles = run(&client, kind, slice).await?;
            totals[slot].0 += server.cpu()? - before;
            totals[slot].1 += cycles;
        }
    }
    let per_cycle = |(cpu, cycles): (Duration, u64)| cpu.as_secs_f64() * 1e6 / cycles.max(1) as f64;
    let four = per_cycle(totals[0]);
    let wait = per_cycle(totals[1]);
    let ratio = wait / four;
    let ok = ratio < 1.0;
    println!(
        "turn: server CPU per chat cycle, concurrency {CONCURRENCY}, {ROUNDS} alternating rounds: \
         four requests {four:.0} us ({} cycles), input with wait_ms {wait:.0} us ({} cycles), \
         ratio {ratio:.2} (target below 1.00): {}",
        totals[0].1,
        totals[1].1,
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}
