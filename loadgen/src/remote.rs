//! The `remote` scenario: what a Runtime on another host costs, measured
//! with three `yoi` children on loopback:
//!
//! - *embedded*: `yoi serve --memory`, the baseline;
//! - *host*: `yoi runtime serve --id backend-internal --memory`;
//! - *front*: `yoi serve` whose only Runtime is the host, registered as
//!   `kind = "remote"` under the same id, so every path is the same.
//!
//! It reports, in one run: per-call latency (worker detail, `send_input`,
//! transcript page) through the front against the embedded server, with the
//! added microseconds and the ratio; server CPU per chat cycle of front and
//! host together against the embedded server (target at most 2.5x), and
//! beside it the same cycle through a forwarding proxy that only passes
//! each request on to the host (this binary's hidden `forward` mode): the
//! floor for any front that makes one host request per browser request;
//! and fan-out of SSE subscribers on one remote Worker: TCP connections to the
//! host, delivery p99 and resident memory of both processes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::child::{Server, rss};
use crate::client::{BoxError, Client, RT};
use crate::scenarios;
use crate::stats::Latencies;
use crate::turn::{CONCURRENCY, Cycle, ROUNDS, run};

/// Sequential samples of each call on each server.
const SAMPLES: usize = 300;

pub(crate) async fn remote(
    bin: PathBuf,
    seconds: u64,
    subscribers: usize,
    turns: usize,
) -> Result<bool, BoxError> {
    let embedded = Server::start(&bin, &["--memory"])?;
    let host = Server::spawn(
        &bin,
        &["runtime", "serve"],
        &["--id", "backend-internal", "--memory"],
    )?;
    let config =
        std::env::temp_dir().join(format!("yoi-loadgen-remote-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            // Room for every subscriber beside the earlier phases' idle
            // keep-alive connections: the fan-out measures sharing, not
            // the connection cap.
            "[limits]\nmax_connections = {}\n\n[[runtimes]]\nid = \"backend-internal\"\n\
             kind = \"remote\"\nurl = \"{}\"\n",
            subscribers + 1024,
            host.base
        ),
    )?;
    let config_arg = config.display().to_string();
    // The host first: a front that starts before its host lists it
    // unavailable until its next look, and its first calls answer 503.
    Client::new(host.base.clone()).wait_ready().await?;
    let front = Server::start(&bin, &["--memory", "--config", &config_arg])?;
    let forward = Server::spawn(
        &std::env::current_exe()?,
        &["forward"],
        &["--upstream", &host.base],
    )?;
    let clients = [
        Client::new(embedded.base.clone()),
        Client::new(front.base.clone()),
        Client::new(forward.base.clone()),
    ];
    for client in &clients {
        client.wait_ready().await?;
    }
    let _ = std::fs::remove_file(&config);

    let mut ok = per_call([&clients[0], &clients[1]]).await?;

    // Chat cycle: CPU of the embedded server against front + host, and
    // against the forwarding proxy + host.
    let slice = Duration::from_secs(seconds.max(2)) / (2 * ROUNDS);
    let mut totals = [(Duration::ZERO, 0u64); 3];
    let cpu = |slot: usize| -> Result<Duration, BoxError> {
        Ok(match slot {
            0 => embedded.cpu()?,
            1 => front.cpu()? + host.cpu()?,
            _ => forward.cpu()? + host.cpu()?,
        })
    };
    let mut on_host = [Duration::ZERO; 3];
    for _ in 0..ROUNDS {
        for slot in 0..3 {
            let (before, host_before) = (cpu(slot)?, host.cpu()?);
            let cycles = run(&clients[slot], Cycle::FourRequests, slice).await?;
            totals[slot].0 += cpu(slot)? - before;
            totals[slot].1 += cycles;
            on_host[slot] += host.cpu()? - host_before;
        }
    }
    let per_cycle = |(cpu, cycles): (Duration, u64)| cpu.as_secs_f64() * 1e6 / cycles.max(1) as f64;
    let (local, remote) = (per_cycle(totals[0]), per_cycle(totals[1]));
    let host_share = per_cycle((on_host[1], totals[1].1));
    let (floor, floor_host) = (per_cycle(totals[2]), per_cycle((on_host[2], totals[2].1)));
    println!(
        "remote: the same cycle through a forwarding proxy that only passes requests on \
         (the floor for one host request per browser request): proxy + host {floor:.0} us \
         ({} cycles; host {floor_host:.0} us), ratio {:.2}",
        totals[2].1,
        floor / local
    );
    // Its pooled connections to the host must not count in the fan-out.
    drop(forward);
    let ratio = remote / local;
    let cycle_ok = ratio <= 2.5;
    ok &= cycle_ok;
    println!(
        "remote: server CPU per chat cycle, concurrency {CONCURRENCY}, {ROUNDS} alternating rounds: \
         embedded {local:.0} us ({} cycles), front + host {remote:.0} us ({} cycles; \
         host {host_share:.0} us), ratio {ratio:.2} (target at most 2.50): {}",
        totals[0].1,
        totals[1].1,
        verdict(cycle_ok)
    );

    // Fan-out on one remote Worker, with the host's connections and both
    // processes' memory sampled while it runs.
    let done = Arc::new(AtomicBool::new(false));
    let live = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample(
        done.clone(),
        live.clone(),
        host.port(),
        [front.pid(), host.pid()],
    ));
    ok &= scenarios::fanout(&clients[1], subscribers, turns, &live).await?;
    done.store(true, Ordering::Relaxed);
    let peak = sampler.await?;
    // No sample while every subscriber was live would prove nothing.
    let connections_ok =
        peak.samples_while_live > 0 && peak.connections_while_live <= MAX_UPSTREAM_CONNECTIONS;
    ok &= connections_ok;
    println!(
        "remote: fan-out of {subscribers} subscribers on one remote Worker: TCP connections to the \
         host at most {} while every subscriber was live ({} samples; target at most \
         {MAX_UPSTREAM_CONNECTIONS}: one event stream plus the request pool), at most {} at any \
         time; peak RSS front {:.1} MiB, host {:.1} MiB: {}",
        peak.connections_while_live,
        peak.samples_while_live,
        peak.connections,
        peak.rss[0] as f64 / (1 << 20) as f64,
        peak.rss[1] as f64 / (1 << 20) as f64,
        verdict(connections_ok)
    );
    Ok(ok)
}

/// One shared event stream plus a few pooled request connections.
const MAX_UPSTREAM_CONNECTIONS: usize = 8;

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// Latency of worker detail, `send_input` and a transcript page, embedded
/// against remote, alternating call by call.
async fn per_call(clients: [&Client; 2]) -> Result<bool, BoxError> {
    let mut workers = Vec::new();
    for client in clients {
        let worker = client.create_worker().await?;
        client.send_and_wait(&worker, "warm up").await?;
        workers.push(worker);
    }
    let mut samples: [[Vec<Duration>; 3]; 2] = Default::default();
    for n in 0..SAMPLES {
        for slot in 0..2 {
            let (client, worker) = (&clients[slot], &workers[slot]);
            let started = Instant::now();
            let detail = client.get(&format!("{RT}/workers/{worker}")).await?;
            samples[slot][0].push(started.elapsed());
            if detail.status != 200 {
                return Err(format!("worker detail answered {}", detail.status).into());
            }
            let started = Instant::now();
            let accepted = client
                .post(
                    &format!("{RT}/workers/{worker}/input"),
                    &json!({ "text": format!("call {n}") }),
                )
                .await?;
            samples[slot][1].push(started.elapsed());
            let cursor = accepted.json["cursor"]
                .as_str()
                .ok_or_else(|| format!("input answered {}", accepted.status))?
                .to_owned();
            client.wait_for(worker, cursor, &["turn_completed"]).await?;
            let started = Instant::now();
            let page = client
                .get(&format!("{RT}/workers/{worker}/transcript?limit=50"))
                .await?;
            samples[slot][2].push(started.elapsed());
            if page.status != 200 {
                return Err(format!("transcript answered {}", page.status).into());
            }
        }
    }
    let [embedded, remote] = samples.map(|calls| calls.map(Latencies::new));
    for (name, (local, far)) in ["worker detail", "send_input", "transcript page"]
        .into_iter()
        .zip(embedded.iter().zip(remote.iter()))
    {
        let (l50, r50) = (local.percentile(50.0), far.percentile(50.0));
        println!(
            "remote: {name}, {SAMPLES} sequential calls: embedded p50 {:.0} us p99 {:.0} us, \
             remote p50 {:.0} us p99 {:.0} us; added {:.0} us at p50, ratio {:.2}",
            micros(l50),
            micros(local.percentile(99.0)),
            micros(r50),
            micros(far.percentile(99.0)),
            micros(r50) - micros(l50),
            micros(r50) / micros(l50).max(1.0)
        );
    }
    Ok(true)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Peak {
    connections: usize,
    connections_while_live: usize,
    samples_while_live: usize,
    rss: [u64; 2],
}

/// Samples every 50 ms until `done`: established TCP connections whose
/// server side is `port` (apart while `live`: every subscriber connected
/// and the turns running), and the resident memory of `pids`.
async fn sample(done: Arc<AtomicBool>, live: Arc<AtomicBool>, port: u16, pids: [u32; 2]) -> Peak {
    let mut peak = Peak {
        connections: 0,
        connections_while_live: 0,
        samples_while_live: 0,
        rss: [0; 2],
    };
    while !done.load(Ordering::Relaxed) {
        let connections = established(port);
        peak.connections = peak.connections.max(connections);
        if live.load(Ordering::Relaxed) {
            peak.connections_while_live = peak.connections_while_live.max(connections);
            peak.samples_while_live += 1;
        }
        for (slot, pid) in pids.into_iter().enumerate() {
            peak.rss[slot] = peak.rss[slot].max(rss(pid).unwrap_or(0));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    peak
}

/// Established IPv4 connections on loopback whose local port is `port`.
fn established(port: u16) -> usize {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3
                && fields[3] == "01"
                && fields[1]
                    .rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}
