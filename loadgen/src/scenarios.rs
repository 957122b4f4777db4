//! The chat, read-path and fan-out scenarios.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use yoi_runtime_api::Timestamp;

use crate::client::{BoxError, Client, RT};
use crate::stats::{Latencies, ms};

/// One chat cycle: create, send, wait for `turn_completed`, read and check
/// the reply. The Worker is stopped afterwards, outside the timing.
async fn chat_cycle(client: &Client, n: u64) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let worker = client.create_worker().await?;
    let text = format!("chat cycle number {n}");
    client.send_and_wait(&worker, &text).await?;
    let page = client
        .get(&format!("{RT}/workers/{worker}/transcript"))
        .await?;
    let reply = &page.json["entries"][1];
    if reply["text"] != format!("echo: {text}") || reply["status"] != "complete" {
        return Err(format!("wrong reply: {reply}").into());
    }
    let elapsed = started.elapsed();
    client
        .post(&format!("{RT}/workers/{worker}/stop"), &Value::Null)
        .await?;
    Ok(elapsed)
}

pub(crate) async fn chat(
    client: &Client,
    concurrency: usize,
    duration: Duration,
) -> Result<bool, BoxError> {
    let deadline = Instant::now() + duration;
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                samples.push(chat_cycle(&client, n).await?);
            }
            Ok::<_, BoxError>(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let latencies = Latencies::new(samples);
    println!(
        "chat concurrency={concurrency}: {} cycles, {:.1} cycles/s, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(latencies.percentile(50.0)),
        ms(latencies.percentile(99.0)),
    );
    Ok(latencies.len() > 0)
}

/// Requests per second of `GET url` from `concurrency` tasks for `duration`.
async fn hammer(
    client: &Client,
    url: String,
    concurrency: usize,
    duration: Duration,
) -> Result<(f64, Latencies), BoxError> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let http = client.http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = http.get(&url).send().await?;
                if !response.status().is_success() {
                    return Err::<Vec<Duration>, BoxError>(
                        format!("GET answered {}", response.status()).into(),
                    );
                }
                response.bytes().await?;
                samples.push(t.elapsed());
            }
            Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    let rps = samples.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rps, Latencies::new(samples)))
}

/// A bare axum JSON handler, the baseline for the read path: the same
/// stack (axum on Tokio) answering with a worker-detail-sized JSON document
/// serialized once up front, so no registry, runtime, lock or serializer
/// runs per request.
async fn start_bare() -> Result<String, BoxError> {
    let body = json!({
        "runtime_id": "backend-internal", "worker_id": "w-0000000001", "display_name": "w-0000000001",
        "profile": {"name": "default", "fallback": true}, "state": "idle",
        "created_at": "2026-11-24T21:56:08.123456789Z", "updated_at": "2026-11-24T21:56:08.123456789Z",
        "transcript_len": 0, "pending_inputs": 0, "last_cursor": "1", "intent": null
    })
    .to_string();
    let body = axum::body::Bytes::from(body);
    let handler = move || {
        let body = body.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
        }
    };
    let app = axum::Router::new().route("/json", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/json"))
}

pub(crate) async fn read_path(
    client: &Client,
    concurrency: usize,
    duration: Duration,
) -> Result<bool, BoxError> {
    let worker = client.create_worker().await?;
    let bare = start_bare().await?;
    let detail = client.url(&format!("{RT}/workers/{worker}"));
    // Alternate the two, twice, so that neither profits from going second.
    let half = duration / 2;
    let (mut bare_rps, mut rps) = (0.0, 0.0);
    let (mut bare_samples, mut samples) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let (r, l) = hammer(client, bare.clone(), concurrency, half).await?;
        bare_rps += r / 2.0;
        bare_samples.push(l);
        let (r, l) = hammer(client, detail.clone(), concurrency, half).await?;
        rps += r / 2.0;
        samples.push(l);
    }
    let p99 = |ls: &[Latencies]| {
        ls.iter()
            .map(|l| ms(l.percentile(99.0)))
            .fold(0.0, f64::max)
    };
    let ratio = rps / bare_rps;
    println!(
        "read concurrency={concurrency}: worker detail {rps:.0} req/s (p99 {:.2} ms), bare axum {bare_rps:.0} req/s (p99 {:.2} ms), ratio {ratio:.2} (target >= 0.5): {}",
        p99(&samples),
        p99(&bare_samples),
        if ratio >= 0.5 { "met" } else { "MISSED" }
    );
    Ok(true)
}

/// One SSE subscriber: the cursors it received in order, and the delivery
/// latency of each event (receive time minus the event's `at`).
async fn subscriber(
    client: Client,
    worker: String,
) -> Result<(Vec<String>, Vec<Duration>), BoxError> {
    let response = client
        .http
        .get(client.url(&format!("{RT}/workers/{worker}/events/stream")))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("stream answered {}", response.status()).into());
    }
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let (mut cursors, mut latencies) = (Vec::new(), Vec::new());
    while let Some(chunk) = body.next().await {
        buffer.push_str(std::str::from_utf8(&chunk?)?);
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let event: Value = serde_json::from_str(data.trim())?;
            let at = event["at"]
                .as_str()
                .and_then(Timestamp::parse_rfc3339)
                .ok_or("event without at")?;
            let lag = Timestamp::now().as_offset_date_time() - at.as_offset_date_time();
            latencies.push(Duration::try_from(lag).unwrap_or(Duration::ZERO));
            cursors.push(
                event["cursor"]
                    .as_str()
                    .ok_or("event without cursor")?
                    .to_owned(),
            );
        }
    }
    Ok((cursors, latencies))
}

/// `live` is set while every subscriber is connected and the turns run,
/// for whoever samples the servers meanwhile.
pub(crate) async fn fanout(
    client: &Client,
    subscribers: usize,
    turns: usize,
    live: &AtomicBool,
) -> Result<bool, BoxError> {
    let worker = client.create_worker().await?;
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        readers.push(tokio::spawn(subscriber(client.clone(), worker.clone())));
    }
    // Let every subscriber connect before the turns start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    live.store(true, Ordering::Relaxed);
    for n in 0..turns {
        let accepted = client
            .post(
                &format!("{RT}/workers/{worker}/input"),
                &json!({ "text": format!("turn {n}") }),
            )
            .await?;
        let cursor = accepted.json["cursor"]
            .as_str()
            .ok_or("input not accepted")?
            .to_owned();
        client
            .wait_for(&worker, cursor, &["turn_completed"])
            .await?;
    }
    live.store(false, Ordering::Relaxed);
    client
        .post(&format!("{RT}/workers/{worker}/stop"), &Value::Null)
        .await?;
    let log: Vec<String> = client
        .events(&worker)
        .await?
        .iter()
        .map(|e| e["cursor"].as_str().unwrap_or("").to_owned())
        .collect();
    let mut complete = 0;
    let mut latencies = Vec::new();
    for reader in readers {
        let (cursors, lat) = reader.await??;
        if cursors == log {
            complete += 1;
        }
        // The first event (worker_created) was replayed, not delivered live.
        latencies.extend(lat.into_iter().skip(1));
    }
    let elapsed = started.elapsed();
    let latencies = Latencies::new(latencies);
    let ok = complete == subscribers;
    println!(
        "fanout: {subscribers} subscribers x {} events ({turns} turns) in {:.1} s; {complete}/{subscribers} received every event in order; delivery p50 {:.2} ms, p99 {:.2} ms: {}",
        log.len(),
        elapsed.as_secs_f64(),
        ms(latencies.percentile(50.0)),
        ms(latencies.percentile(99.0)),
        if ok { "ok" } else { "VIOLATION" }
    );
    Ok(ok)
}
