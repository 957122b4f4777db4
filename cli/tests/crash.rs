//! Crash safety, proven by killing the server: `yoi serve --data-dir` is
//! driven with inputs in every busy policy, cancels and an SSE reader, and
//! killed with SIGKILL at random moments, then restarted on the same data.
//!
//! After every restart: a stream resumed with `Last-Event-ID` continues
//! exactly after it, or is refused with 410 (the cursor was past what had
//! reached the disk), never a gap. At the end: every input that was
//! answered 202 is in its Worker's transcript exactly once (unless it is
//! older than the entries the Worker keeps, `max_transcript_entries`,
//! which a long soak reaches on its first Worker), no input twice,
//! no Worker left running, every log's sequence numbers without holes, and
//! no id used twice. `CRASH_ROUNDS` sets the rounds (30 by default; the
//! documented soak runs more).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{CrashSetup, Server, all_entries, create_worker, get_json, worker_detail};
use futures_util::StreamExt;
use serde_json::{Value, json};

const RT: &str = "api/runtimes/backend-internal";

#[derive(Debug, Default)]
struct Truth {
    /// input_id -> (Worker, transcript index), for every input answered
    /// 202.
    accepted: HashMap<String, (String, u64)>,
    workers: Vec<String>,
}

fn seq(cursor: &str) -> u64 {
    cursor.split('.').next().unwrap().parse().unwrap()
}

async fn drive(base: String, truth: Arc<Mutex<Truth>>, seed: u64, until: Instant) {
    let client = reqwest::Client::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let worker = {
            let truth = truth.lock().unwrap();
            truth.workers[rng.u64(..truth.workers.len() as u64) as usize].clone()
        };
        if rng.u64(..10) == 0 {
            let _ = client
                .post(format!("{base}/{RT}/workers/{worker}/cancel"))
                .send()
                .await;
            continue;
        }
        let policy = ["reject", "queue", "interrupt"][rng.u64(..3) as usize];
        let reply = client
            .post(format!("{base}/{RT}/workers/{worker}/input"))
            .json(&json!({ "text": format!("input {seed}-{n}"), "on_busy": policy }))
            .send()
            .await;
        let Ok(reply) = reply else { return };
        if reply.status() == 202 {
            let Ok(body) = reply.json::<Value>().await else {
                return;
            };
            let input_id = body["input_id"].as_str().unwrap().to_owned();
            let index = body["transcript_index"].as_u64().unwrap();
            truth
                .lock()
                .unwrap()
                .accepted
                .insert(input_id, (worker, index));
        }
    }
}

/// How a stream resumed after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resumed {
    /// There was no cursor to resume from, or the server was gone.
    NotTried,
    /// It continued exactly after the cursor.
    Continued,
    /// 410: the cursor had not reached the disk.
    Refused,
}

/// Reads the watched Worker's stream from `resume` until the server dies;
/// returns the cursor of the last event read and how the resumption went,
/// checking that it left no gap.
async fn watch(base: String, worker: String, resume: Option<String>) -> (Option<String>, Resumed) {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{base}/{RT}/workers/{worker}/events/stream"));
    if let Some(cursor) = &resume {
        request = request.header("last-event-id", cursor);
    }
    let Ok(response) = request.send().await else {
        return (resume, Resumed::NotTried);
    };
    if response.status() == 410 {
        // The cursor was past what reached the disk: start over, as a
        // client must.
        return (None, Resumed::Refused);
    }
    assert_eq!(response.status(), 200);
    let how = if resume.is_some() {
        Resumed::Continued
    } else {
        Resumed::NotTried
    };
    let mut last = resume.clone();
    let mut expected_next = resume.as_deref().map(|c| seq(c) + 1);
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id:")) else {
                continue;
            };
            let id = id.trim().to_owned();
            if let Some(expected) = expected_next {
                assert_eq!(seq(&id), expected, "no gap and no duplicate after a resume");
            }
            expected_next = Some(seq(&id) + 1);
            last = Some(id);
        }
    }
    (last, how)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_accepted() {
    let CrashSetup {
        rounds,
        mut rng,
        args,
    } = CrashSetup::new("crash test", 30, 120);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let truth = Arc::new(Mutex::new(Truth::default()));
    let client = reqwest::Client::new();
    let mut watched_cursor: Option<String> = None;
    let mut resumes: HashMap<&'static str, u64> = HashMap::new();
    for round in 0..rounds {
        let server = Server::start(&args).await;
        if round % 5 == 0 {
            let id = create_worker(&client, &server.base, json!({ "profile": "slow" })).await;
            truth.lock().unwrap().workers.push(id);
        }
        let watched = truth.lock().unwrap().workers[0].clone();
        let until = Instant::now() + Duration::from_millis(20 + rng.u64(..300));
        let drivers: Vec<_> = (0..3)
            .map(|_| {
                tokio::spawn(drive(
                    server.base.clone(),
                    truth.clone(),
                    rng.u64(..),
                    until,
                ))
            })
            .collect();
        let watcher = tokio::spawn(watch(server.base.clone(), watched, watched_cursor.clone()));
        tokio::time::sleep_until(until.into()).await;
        server.kill();
        for driver in drivers {
            driver.await.unwrap();
        }
        let (cursor, how) = watcher.await.unwrap();
        watched_cursor = cursor;
        *resumes
            .entry(match how {
                Resumed::NotTried => "not tried",
                Resumed::Continued => "continued",
                Resumed::Refused => "refused (410)",
            })
            .or_default() += 1;
    }

    // A last start: let every queue drain, then check everything.
    let server = Server::start(&args).await;
    // Every driver has finished: take the truth out of its lock.
    let truth = std::mem::take(&mut *truth.lock().unwrap());
    let mut seen_inputs = HashSet::new();
    // The first entry each Worker still keeps: a long run can pass
    // `max_transcript_entries`, and what retention dropped is not lost.
    let mut first_kept: HashMap<&str, u64> = HashMap::new();
    // Every entry read, to say what stands where a lost input should be.
    let mut at_index: HashMap<(&str, u64), Value> = HashMap::new();
    for worker in &truth.workers {
        let detail = wait_settled(&client, &server.base, worker).await;
        assert_eq!(detail["state"], "idle", "{detail}");
        let entries = all_entries(&client, &server.base, worker).await;
        first_kept.insert(
            worker,
            entries.first().map_or(0, |e| e["index"].as_u64().unwrap()),
        );
        for entry in &entries {
            at_index.insert((worker, entry["index"].as_u64().unwrap()), entry.clone());
        }
        for entry in &entries {
            assert_ne!(
                entry["status"], "partial",
                "nothing left running or queued: {entry}"
            );
            if entry["role"] == "user" {
                let input_id = entry["input_id"].as_str().unwrap().to_owned();
                assert!(
                    seen_inputs.insert(input_id.clone()),
                    "input {input_id} twice"
                );
            }
        }
        let events: Value = get_json(
            &client,
            format!("{}/{RT}/workers/{worker}/events?limit=1000", server.base),
        )
        .await;
        let seqs: Vec<u64> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| seq(e["cursor"].as_str().unwrap()))
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "{seqs:?}");
    }
    let mut dropped_by_retention = 0;
    for (input_id, (worker, index)) in &truth.accepted {
        if *index < first_kept[worker.as_str()] {
            dropped_by_retention += 1;
            continue;
        }
        assert!(
            seen_inputs.contains(input_id),
            "input {input_id} to {worker} was answered 202 but is lost; at its index {index} \
             stands {:?} (the Worker keeps entries from {})",
            at_index.get(&(worker.as_str(), *index)),
            first_kept[worker.as_str()]
        );
    }
    let ids: HashSet<&String> = truth.workers.iter().collect();
    assert_eq!(ids.len(), truth.workers.len(), "no Worker id reused");
    let longest = at_index
        .keys()
        .map(|(_, index)| index + 1)
        .max()
        .unwrap_or(0);
    eprintln!(
        "crash test: {} rounds, {} Workers, {} accepted inputs, all present once \
         ({dropped_by_retention} older than the entries a Worker keeps; the longest \
         transcript {longest} entries); stream resumes across restarts: {resumes:?}",
        rounds,
        truth.workers.len(),
        truth.accepted.len()
    );
    assert!(
        resumes.get("continued").copied().unwrap_or(0) > 0,
        "no stream ever resumed across a restart: {resumes:?}"
    );
}

/// Waits until the Worker is idle with nothing queued, following its
/// events by long poll; returns its detail.
async fn wait_settled(client: &reqwest::Client, base: &str, worker: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = worker_detail(client, base, worker).await;
        if detail["state"] != "running" && detail["pending_inputs"] == 0 {
            return detail;
        }
        assert!(
            Instant::now() < deadline,
            "{worker} never settled: {detail}"
        );
        let after = detail["last_cursor"].as_str().unwrap_or_default();
        let _ = client
            .get(format!(
                "{base}/{RT}/workers/{worker}/events?after={after}&wait_ms=2000"
            ))
            .send()
            .await;
    }
}
