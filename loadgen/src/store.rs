//! The durable store's cost, measured from outside the server.
//!
//! `store`: server CPU per chat cycle (four requests) with the SQLite store
//! against the memory store, two `yoi serve` children, alternating rounds
//! in one run. Target: at most 1.5x.
//!
//! `startup`: `yoi serve --data-dir DIR` over a data directory made by
//! `cargo run --release -p yoi-runtime-embedded --example store_fill`:
//! time until `/healthz` answers and resident memory, before and after
//! reading 1,000 Workers (which loads them). Targets: under 2 s and under
//! 300 MiB.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::child::Server;
use crate::client::{BoxError, Client, RT};
use crate::turn::{CONCURRENCY, Cycle, ROUNDS, run};

/// Server CPU per chat cycle, SQLite against memory.
pub(crate) async fn store(bin: PathBuf, seconds: u64) -> Result<bool, BoxError> {
    let data = std::env::temp_dir().join(format!("yoi-loadgen-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let data_arg = data.display().to_string();
    let memory = Server::start(&bin, &["--memory"])?;
    let sqlite = Server::start(&bin, &["--data-dir", &data_arg])?;
    let clients = [
        Client::new(memory.base.clone()),
        Client::new(sqlite.base.clone()),
    ];
    for client in &clients {
        client.wait_ready().await?;
    }
    let servers = [&memory, &sqlite];
    let slice = Duration::from_secs(seconds.max(2)) / (2 * ROUNDS);
    let mut totals = [(Duration::ZERO, 0u64); 2];
    for _ in 0..ROUNDS {
        for slot in 0..2 {
            let before = servers[slot].cpu()?;
            let cycles = run(&clients[slot], Cycle::FourRequests, slice).await?;
            totals[slot].0 += servers[slot].cpu()? - before;
            totals[slot].1 += cycles;
        }
    }
    let per_cycle = |(cpu, cycles): (Duration, u64)| cpu.as_secs_f64() * 1e6 / cycles.max(1) as f64;
    let (on_memory, on_sqlite) = (per_cycle(totals[0]), per_cycle(totals[1]));
    let ratio = on_sqlite / on_memory;
    let disk = dir_bytes(&data);
    // Sustained events: long replies streamed by 8 Workers at once.
    let mut events = [(0u64, Duration::ZERO, Duration::ZERO); 2];
    for slot in 0..2 {
        let before = servers[slot].cpu()?;
        let started = Instant::now();
        let count = stream_events(&clients[slot], slice * 2).await?;
        events[slot] = (count, started.elapsed(), servers[slot].cpu()? - before);
    }
    let rate = |(n, elapsed, _): (u64, Duration, Duration)| n as f64 / elapsed.as_secs_f64();
    let per_k =
        |(n, _, cpu): (u64, Duration, Duration)| cpu.as_secs_f64() * 1e6 / (n.max(1) as f64 / 1e3);
    println!(
        "store: events streamed (8 Workers, 200-word replies): memory {:.0}/s ({:.0} us CPU per 1,000), \
         sqlite {:.0}/s ({:.0} us CPU per 1,000)",
        rate(events[0]),
        per_k(events[0]),
        rate(events[1]),
        per_k(events[1])
    );
    let ok = ratio <= 1.5;
    println!(
        "store: server CPU per chat cycle, concurrency {CONCURRENCY}, {ROUNDS} alternating rounds: \
         memory {on_memory:.0} us ({} cycles), sqlite {on_sqlite:.0} us ({} cycles), \
         ratio {ratio:.2} (target at most 1.50): {}; data dir {:.1} MiB",
        totals[0].1,
        totals[1].1,
        if ok { "PASS" } else { "FAIL" },
        disk as f64 / (1 << 20) as f64
    );
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&data);
    Ok(ok)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Start-up time and memory over a large data directory.
pub(crate) async fn startup(bin: PathBuf, data_dir: PathBuf) -> Result<bool, BoxError> {
    let data_arg = data_dir.display().to_string();
    let started = Instant::now();
    let server = Server::start(&bin, &["--data-dir", &data_arg])?;
    let client = Client::new(server.base.clone());
    client.wait_ready().await?;
    let ready = started.elapsed();
    let rss_started = server.rss()?;
    // Read 1,000 Workers from the first pages: each is loaded on access.
    let mut read = 0;
    let mut after: Option<String> = None;
    while read < 1000 {
        let path = match &after {
            Some(after) => format!("{RT}/workers?limit=500&after={after}"),
            None => format!("{RT}/workers?limit=500"),
        };
        let page = client.get(&path).await?;
        let items = page.json["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        for item in &items {
            let id = item["worker_id"].as_str().ok_or("no id")?;
            client.get(&format!("{RT}/workers/{id}/transcript")).await?;
            read += 1;
        }
        after = page.json["next_after"].as_str().map(str::to_owned);
        if after.is_none() {
            break;
        }
    }
    let rss_after = server.rss()?;
    let status = client.get("/api/runtimes").await?;
    let total = status.json["items"][0]["status"]["workers"].clone();
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let ok = ready <= Duration::from_secs(2) && rss_after < 300 << 20;
    println!(
        "startup: /healthz after {:.0} ms (target under 2,000), RSS {:.1} MiB at start, \
         {:.1} MiB after reading {read} Workers (target under 300): {}; workers {total}",
        ready.as_secs_f64() * 1e3,
        mib(rss_started),
        mib(rss_after),
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}

/// Sends inputs whose echo replies stream about 200 deltas each, from 8
/// Workers at once, for `duration`; returns the events the server logged.
async fn stream_events(client: &Client, duration: Duration) -> Result<u64, BoxError> {
    let deadline = Instant::now() + duration;
    let text: String = (0..200).map(|n| format!("w{n} ")).collect();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, text) = (client.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            let worker = client.create_worker().await?;
            while Instant::now() < deadline {
                let done = client
                    .post(
                        &format!("{RT}/workers/{worker}/input?wait_ms=30000"),
                        &serde_json::json!({ "text": text }),
                    )
                    .await?;
                if done.status != 200 {
                    return Err(format!("input answered {}", done.status).into());
                }
            }
            let detail = client.get(&format!("{RT}/workers/{worker}")).await?;
            let cursor = detail.json["last_cursor"].as_str().unwrap_or("0");
            let seq: u64 = cursor.split('.').next().unwrap_or("0").parse()?;
            Ok::<_, BoxError>(seq)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}
