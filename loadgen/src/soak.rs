//! Soak: mixed traffic from many clients; no 5xx, every accepted input
//! exactly once in its transcript, and memory back near its warm-up level.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{BoxError, Client, RT};
use crate::stats::rss_bytes;

/// Operations on one Worker before the client stops it and starts another.
const OPS_PER_WORKER: u32 = 100;

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    server_errors: AtomicU64,
    accepted: AtomicU64,
    verified_workers: AtomicU64,
    lost_or_duplicated: AtomicU64,
}

/// Reads the Worker's transcript and checks each accepted input is in it
/// exactly once, with its text.
async fn verify(
    client: &Client,
    worker: &str,
    accepted: &HashMap<String, String>,
    tally: &Tally,
) -> Result<(), BoxError> {
    let entries = client.transcript(worker).await?;
    let mut seen: HashMap<&str, (usize, &str)> = HashMap::new();
    for entry in entries.iter().filter(|e| e["role"] == "user") {
        let id = entry["input_id"].as_str().unwrap_or_default();
        let slot = seen
            .entry(id)
            .or_insert((0, entry["text"].as_str().unwrap_or_default()));
        slot.0 += 1;
    }
    let bad = accepted
        .iter()
        .filter(|(id, text)| seen.get(id.as_str()) != Some(&(1, text.as_str())))
        .count();
    tally
        .lost_or_duplicated
        .fetch_add(bad as u64, Ordering::Relaxed);
    tally.verified_workers.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn client_loop(
    client: Client,
    seed: u64,
    deadline: Instant,
    tally: Arc<Tally>,
) -> Result<(), BoxError> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut worker: Option<String> = None;
    let mut ops = 0;
    let mut accepted: HashMap<String, String> = HashMap::new();
    let mut last_client_id: Option<(String, String)> = None;
    while Instant::now() < deadline {
        let Some(id) = worker.clone().filter(|_| ops < OPS_PER_WORKER) else {
            if let Some(old) = worker.take() {
                let stop = client
                    .post(&format!("{RT}/workers/{old}/stop"), &Value::Null)
                    .await?;
                count(&tally, stop.status);
                verify(&client, &old, &accepted, &tally).await?;
            }
            tally.requests.fetch_add(1, Ordering::Relaxed);
            worker = Some(client.create_worker().await?);
            ops = 0;
            accepted.clear();
            continue;
        };
        ops += 1;
        let path = format!("{RT}/workers/{id}");
        let status = match rng.u64(..10) {
            0..=3 => {
                let policy = ["reject", "queue", "interrupt"][rng.u64(..3) as usize];
                // Now and then retry the previous input with its client id.
                let (client_id, text) = match (&last_client_id, rng.u64(..4)) {
                    (Some(previous), 0) => previous.clone(),
                    _ => (
                        format!("c-{seed}-{}", rng.u64(..)),
                        format!("soak {seed} {}", rng.u64(..)),
                    ),
                };
                let body = json!({ "text": text, "on_busy": policy, "client_input_id": client_id });
                let reply = client.post(&format!("{path}/input"), &body).await?;
                if reply.status == 202 {
                    let input_id = reply.json["input_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if accepted.insert(input_id, text.clone()).is_none() {
                        tally.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    last_client_id = Some((client_id, text));
                }
                reply.status
            }
            4 => {
                client
                    .post(&format!("{path}/cancel"), &Value::Null)
                    .await?
                    .status
            }
            5 | 6 => {
                client
                    .get(&format!("{path}/transcript?limit=50"))
                    .await?
                    .status
            }
            7 | 8 => {
                client
                    .get(&format!("{path}/events?limit=100"))
                    .await?
                    .status
            }
            _ => client.get(&path).await?.status,
        };
        count(&tally, status);
    }
    if let Some(old) = worker {
        client
            .post(&format!("{RT}/workers/{old}/stop"), &Value::Null)
            .await?;
        verify(&client, &old, &accepted, &tally).await?;
    }
    Ok(())
}

fn count(tally: &Tally, status: u16) {
    tally.requests.fetch_add(1, Ordering::Relaxed);
    if status >= 500 {
        tally.server_errors.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) async fn soak(
    client: &Client,
    clients: u64,
    duration: Duration,
    in_process: bool,
) -> Result<bool, BoxError> {
    let started = Instant::now();
    let deadline = started + duration;
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for n in 0..clients {
        tasks.push(tokio::spawn(client_loop(
            client.clone(),
            0x9E37_79B9 + n,
            deadline,
            tally.clone(),
        )));
    }
    // Warm-up is the first two fifths of the run: long enough for the
    // in-process server to reach its cap of retained stopped Workers, after
    // which memory should stay flat.
    tokio::time::sleep(duration * 2 / 5).await;
    let warm = rss_bytes();
    for task in tasks {
        task.await??;
    }
    let end = rss_bytes();
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let memory_ok;
    let memory = match (in_process, warm, end) {
        (true, Some(warm), Some(end)) => {
            let growth = end as f64 / warm as f64 - 1.0;
            memory_ok = growth <= 0.20;
            format!(
                "rss after warm-up {:.1} MiB, at end {:.1} MiB ({:+.1}%, limit +20%)",
                warm as f64 / 1048576.0,
                end as f64 / 1048576.0,
                growth * 100.0
            )
        }
        _ => {
            memory_ok = true;
            "rss not measured (server is not in this process)".to_owned()
        }
    };
    let ok = t(&tally.server_errors) == 0 && t(&tally.lost_or_duplicated) == 0 && memory_ok;
    println!(
        "soak: {} s, {clients} clients, {} requests ({:.0}/s), {} inputs accepted on {} workers, {} 5xx, {} lost or duplicated inputs, {memory}: {}",
        duration.as_secs(),
        t(&tally.requests),
        t(&tally.requests) as f64 / started.elapsed().as_secs_f64(),
        t(&tally.accepted),
        t(&tally.verified_workers),
        t(&tally.server_errors),
        t(&tally.lost_or_duplicated),
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}
