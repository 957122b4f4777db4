//! Organising Workers survives `kill -9`: `yoi serve --data-dir` is driven
//! with renames, forks, deletes, rollbacks and inputs, killed with SIGKILL
//! at random moments, and restarted on the same data.
//!
//! After every restart: each Worker's name is the last one answered `200`
//! or the one in flight when the server died; each fork answered `201` is
//! there, with where it came from and at least the entries it was answered
//! with; each Worker whose `DELETE` was answered `204` is `404`. At the
//! end: each rollback answered `200` still holds its entries back, and no
//! id was used twice. `CRASH_ROUNDS` sets the rounds (20 by default).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{CrashSetup, Server, all_entries, create_worker};
use serde_json::{Value, json};

const RT: &str = "api/runtimes/backend-internal";
const DRIVERS: usize = 3;
/// Forks each driver keeps at once (it deletes some as it goes).
const MAX_FORKS: usize = 4;

/// A Worker the drivers change, and what they know of it.
#[derive(Debug)]
struct Known {
    /// The driver that changes it (one each, so its changes are in order).
    owner: usize,
    /// The name last answered `200` (or read after a restart).
    name: String,
    /// A rename sent but not answered when the server died.
    renaming: Option<String>,
    /// Rollbacks answered `200`.
    rollbacks: u64,
    /// Entries seen `rolled_back` after a rollback was answered.
    held_back: HashSet<u64>,
    /// For a fork: its source and the entries it was answered with.
    fork_of: Option<(String, u64)>,
}

#[derive(Debug, Default)]
struct Truth {
    known: HashMap<String, Known>,
    /// Deletes answered `204`.
    deleted: HashSet<String>,
    /// Every id the server answered, to check none comes twice.
    ids: Vec<String>,
}

/// Changes what the drivers know of `worker`.
fn change(truth: &Mutex<Truth>, worker: &str, change: impl FnOnce(&mut Known)) {
    change(truth.lock().unwrap().known.get_mut(worker).unwrap());
}

async fn drive(base: String, truth: Arc<Mutex<Truth>>, owner: usize, seed: u64, until: Instant) {
    let client = reqwest::Client::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let (mine, forks): (Vec<String>, Vec<String>) = {
            let truth = truth.lock().unwrap();
            let mine: Vec<String> = truth
                .known
                .iter()
                .filter(|(_, k)| k.owner == owner)
                .map(|(id, _)| id.clone())
                .collect();
            let forks = mine
                .iter()
                .filter(|id| truth.known[*id].fork_of.is_some())
                .cloned()
                .collect();
            (mine, forks)
        };
        let worker = mine[rng.usize(..mine.len())].clone();
        let url = format!("{base}/{RT}/workers/{worker}");
        match rng.u64(..20) {
            0..=7 => {
                let name = format!("name {owner}-{seed}-{n}");
                change(&truth, &worker, |known| known.renaming = Some(name.clone()));
                let Ok(reply) = client
                    .patch(&url)
                    .json(&json!({ "display_name": name }))
                    .send()
                    .await
                else {
                    return;
                };
                if reply.status() != 200 {
                    return;
                }
                change(&truth, &worker, |known| {
                    known.name = name;
                    known.renaming = None;
                });
            }
            8..=11 => {
                let Ok(reply) = client
                    .post(format!("{url}/input?wait_ms=2000"))
                    .json(&json!({ "text": format!("turn {n}"), "on_busy": "queue" }))
                    .send()
                    .await
                else {
                    return;
                };
                let _ = reply.bytes().await;
            }
            12..=13 => {
                let Ok(reply) = client
                    .post(format!("{url}/rollback"))
                    .json(&json!({ "turns": 1 }))
                    .send()
                    .await
                else {
                    return;
                };
                if reply.status() != 200 {
                    continue;
                }
                change(&truth, &worker, |known| known.rollbacks += 1);
                // Which entries it held back, read while the server lives:
                // they must stay held back across every kill.
                let Ok(detail) = reply.json::<Value>().await else {
                    return;
                };
                let len = detail["transcript_len"].as_u64().unwrap();
                let Ok(page) = client
                    .get(format!(
                        "{url}/transcript?start={}&limit=200",
                        len.saturating_sub(200)
                    ))
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(page) = page.json::<Value>().await else {
                    return;
                };
                let held: Vec<u64> = page["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["status"] == "rolled_back")
                    .map(|e| e["index"].as_u64().unwrap())
                    .collect();
                change(&truth, &worker, |known| known.held_back.extend(held));
            }
            14..=16 if forks.len() < MAX_FORKS => {
                let Ok(reply) = client
                    .post(format!("{url}/fork"))
                    .json(&json!({}))
                    .send()
                    .await
                else {
                    return;
                };
                if reply.status() != 201 {
                    return;
                }
                let Ok(fork) = reply.json::<Value>().await else {
                    return;
                };
                let id = fork["worker_id"].as_str().unwrap().to_owned();
                let mut truth = truth.lock().unwrap();
                truth.ids.push(id.clone());
                truth.known.insert(
                    id,
                    Known {
                        owner,
                        name: fork["display_name"].as_str().unwrap().to_owned(),
                        renaming: None,
                        rollbacks: 0,
                        held_back: HashSet::new(),
                        fork_of: Some((worker, fork["transcript_len"].as_u64().unwrap())),
                    },
                );
            }
            _ if !forks.is_empty() => {
                let fork = forks[rng.usize(..forks.len())].clone();
                // Whatever the answer, the drivers leave it alone now: a
                // delete in flight at the kill may or may not have landed.
                truth.lock().unwrap().known.remove(&fork);
                let Ok(reply) = client
                    .delete(format!("{base}/{RT}/workers/{fork}"))
                    .send()
                    .await
                else {
                    return;
                };
                if reply.status() == 204 {
                    truth.lock().unwrap().deleted.insert(fork);
                }
            }
            _ => {}
        }
    }
}

/// Checks what every answer promised against the restarted server, and
/// takes the names it reads as the new truth.
async fn check(client: &reqwest::Client, base: &str, truth: &Mutex<Truth>) {
    let (known, deleted): (Vec<String>, Vec<String>) = {
        let truth = truth.lock().unwrap();
        (
            truth.known.keys().cloned().collect(),
            truth.deleted.iter().cloned().collect(),
        )
    };
    for worker in known {
        let reply = client
            .get(format!("{base}/{RT}/workers/{worker}"))
            .send()
            .await
            .unwrap();
        let status = reply.status();
        let detail: Value = reply.json().await.unwrap();
        assert_eq!(status, 200, "{worker}, made with 201, is gone: {detail}");
        let name = detail["display_name"].as_str().unwrap();
        let mut truth = truth.lock().unwrap();
        let known = truth.known.get_mut(&worker).unwrap();
        assert!(
            name == known.name || Some(name) == known.renaming.as_deref(),
            "{worker} is named {name:?}: neither {:?} (answered) nor {:?} (in flight)",
            known.name,
            known.renaming
        );
        known.name = name.to_owned();
        known.renaming = None;
        if let Some((source, len)) = &known.fork_of {
            assert_eq!(
                detail["forked_from"]["worker_id"],
                source.as_str(),
                "{detail}"
            );
            let now = detail["transcript_len"].as_u64().unwrap();
            assert!(
                now >= *len,
                "fork {worker} answered with {len} entries, has {now}"
            );
        }
    }
    for worker in deleted {
        let reply = client
            .get(format!("{base}/{RT}/workers/{worker}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            reply.status(),
            404,
            "{worker} was deleted (204) but answers"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_organising_keeps_every_answer() {
    let CrashSetup {
        rounds,
        mut rng,
        args,
    } = CrashSetup::new("organise crash test", 20, 20);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let client = reqwest::Client::new();
    let truth = Arc::new(Mutex::new(Truth::default()));
    for round in 0..rounds {
        let server = Server::start(&args).await;
        check(&client, &server.base, &truth).await;
        if round == 0 {
            for owner in 0..DRIVERS {
                let id = create_worker(&client, &server.base, json!({ "profile": "slow" })).await;
                let mut truth = truth.lock().unwrap();
                truth.ids.push(id.clone());
                truth.known.insert(
                    id.clone(),
                    Known {
                        owner,
                        name: id,
                        renaming: None,
                        rollbacks: 0,
                        held_back: HashSet::new(),
                        fork_of: None,
                    },
                );
            }
        }
        let until = Instant::now() + Duration::from_millis(50 + rng.u64(..400));
        let drivers: Vec<_> = (0..DRIVERS)
            .map(|owner| {
                tokio::spawn(drive(
                    server.base.clone(),
                    truth.clone(),
                    owner,
                    rng.u64(..),
                    until,
                ))
            })
            .collect();
        tokio::time::sleep_until(until.into()).await;
        server.kill();
        for driver in drivers {
            driver.await.unwrap();
        }
    }

    let server = Server::start(&args).await;
    check(&client, &server.base, &truth).await;
    let truth = std::mem::take(&mut *truth.lock().unwrap());
    let mut forks = 0;
    for (worker, known) in &truth.known {
        forks += usize::from(known.fork_of.is_some());
        let held_back: HashSet<u64> = all_entries(&client, &server.base, worker)
            .await
            .iter()
            .filter(|e| e["status"] == "rolled_back")
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        let lost: Vec<&u64> = known.held_back.difference(&held_back).collect();
        assert!(
            lost.is_empty(),
            "{worker}: entries {lost:?} were rolled back (answered 200) and are not now"
        );
    }
    let ids: HashSet<&String> = truth.ids.iter().collect();
    assert_eq!(ids.len(), truth.ids.len(), "no Worker id reused");
    eprintln!(
        "organise crash test: {rounds} rounds, {} Workers made, {forks} forks kept, {} deleted, \
         {} rollbacks; every answer held",
        truth.ids.len(),
        truth.deleted.len(),
        truth.known.values().map(|k| k.rollbacks).sum::<u64>()
    );
    assert!(!truth.deleted.is_empty(), "no delete was answered");
}
