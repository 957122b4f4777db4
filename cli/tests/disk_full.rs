//! A full disk under `yoi serve --data-dir`, made real: the data directory
//! is a small tmpfs in a mount namespace of the test's own (so nothing of
//! it is left on the machine), filled from outside until it refuses.
//!
//! While the disk is full, what must last is refused with `503
//! runtime_unavailable`, `/readyz` says not ready and the diagnostics say
//! why; once space returns the server takes changes again on its own,
//! without a restart; and after a `kill -9` every input that was answered
//! `202`/`200`, and the one refused input retried with its
//! `client_input_id`, is in the transcript exactly once. And `SIGTERM`
//! while the disk is still full ends the server, which gives up on what it
//! could not write rather than waiting for space.
//!
//! Making a mount namespace needs root (CI runs as root); run as another
//! user, the test says it was skipped and passes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{Server, all_entries, create_worker, free_port, without_yoi_variables};
use serde_json::{Value, json};

const RT: &str = "api/runtimes/backend-internal";

/// A tmpfs of a few megabytes at `dir`, mounted in a mount namespace that a
/// sleeping process keeps; gone with that process.
struct SmallDisk {
    holder: Child,
    dir: PathBuf,
}

impl SmallDisk {
    fn new(label: &str, megabytes: u32) -> Self {
        let dir = yoi_runtime_api::test_util::temp_dir(label);
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={megabytes}m yoi-test '{}' && echo mounted && exec sleep 600",
                dir.display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare (util-linux) runs");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "mounted", "no tmpfs in a mount namespace");
        Self { holder, dir }
    }

    /// `path` (inside the disk) as this process reaches it: through the
    /// holder's root, which sees its namespace's mounts.
    fn seen_from_here(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root{}",
            self.holder.id(),
            self.dir.join(path).display()
        ))
    }

    /// `program` run in the disk's mount namespace.
    fn inside(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--", program]);
        command
    }

    /// Fills what is free with a file; its size.
    fn fill(&self) -> u64 {
        let mut filler = std::fs::File::create(self.seen_from_here(Path::new("filler"))).unwrap();
        let mut written = 0;
        for chunk in [64 * 1024, 4096, 512] {
            let bytes = vec![1u8; chunk];
            while filler.write_all(&bytes).is_ok() {
                written += chunk as u64;
            }
        }
        let _ = filler.sync_all();
        written
    }

    /// Frees what [`SmallDisk::fill`] took.
    fn free(&self) {
        std::fs::remove_file(self.seen_from_here(Path::new("filler"))).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Sends `text` as input with `client_input_id`, waiting for its turn; the
/// status and the answer.
async fn send(
    client: &reqwest::Client,
    base: &str,
    worker: &str,
    text: &str,
    client_input_id: &str,
) -> (u16, Value) {
    let reply = client
        .post(format!("{base}/{RT}/workers/{worker}/input?wait_ms=10000"))
        .json(&json!({ "text": text, "client_input_id": client_input_id, "on_busy": "queue" }))
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

async fn status_of(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

/// `yoi serve --data-dir` with its data on `disk`, on `bind`.
async fn start(disk: &SmallDisk, bind: &str) -> Server {
    let mut yoi = disk.inside(env!("CARGO_BIN_EXE_yoi"));
    yoi.args(["serve", "--bind", bind, "--data-dir"])
        .arg(disk.dir.join("data"));
    Server::start_prepared(without_yoi_variables(yoi), bind).await
}

/// Fills `disk`, then sends `worker` inputs of near the largest size until
/// one is refused for want of disk (each grows the store's journal; a few
/// may fit in what the store had already allocated). Pushes the texts
/// taken onto `taken`; the refused text and its `client_input_id`.
async fn fill_until_refused(
    disk: &SmallDisk,
    base: &str,
    worker: &str,
    taken: &mut Vec<String>,
) -> (String, String) {
    let client = reqwest::Client::new();
    let filled = disk.fill();
    assert!(filled > 1 << 20, "only {filled} bytes were free");
    let large = "x".repeat(60_000);
    let data = disk.dir.display().to_string();
    for n in 0..100 {
        let text = format!("{n} {large}");
        let (status, answer) = send(&client, base, worker, &text, &format!("c-{n}")).await;
        match status {
            200 | 202 => taken.push(text),
            503 => {
                assert_eq!(answer["code"], "runtime_unavailable", "{answer}");
                assert!(
                    !answer.to_string().contains(&data),
                    "the data directory leaked: {answer}"
                );
                return (text, format!("c-{n}"));
            }
            other => panic!("input {n}: {other} {answer}"),
        }
    }
    panic!("the full disk refused no input");
}

/// A 16 MiB disk and an address for a server on it; `None` (after saying
/// so) unless this process may make a mount namespace.
fn small_disk(label: &str) -> Option<(SmallDisk, String)> {
    if !is_root() {
        eprintln!("skipped: making a mount namespace for a small disk needs root");
        return None;
    }
    let bind = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    Some((SmallDisk::new(label, 16), bind))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_changes_until_space_returns_and_loses_nothing() {
    let Some((disk, bind)) = small_disk("disk-full") else {
        return;
    };
    let data = disk.dir.display().to_string();
    let server = start(&disk, &bind).await;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let worker = create_worker(&client, &base, json!({})).await;
    let (status, _) = send(&client, &base, &worker, "before", "c-before").await;
    assert_eq!(status, 200);
    let mut taken = vec!["before".to_owned()];
    let (refused_text, refused_id) = fill_until_refused(&disk, &base, &worker, &mut taken).await;

    // Not ready, and why; nothing new that must last is taken.
    assert_eq!(status_of(&client, format!("{base}/readyz")).await, 503);
    let diagnostics = client
        .get(format!("{base}/api/diagnostics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(diagnostics.contains("store_failed"), "{diagnostics}");
    assert!(!diagnostics.contains(&data), "{diagnostics}");
    let create = client
        .post(format!("{base}/{RT}/workers"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status().as_u16(), 503);
    // Reads go on: the Worker, and the lists of Workers.
    for path in [
        format!("{RT}/workers/{worker}"),
        format!("{RT}/workers"),
        "api/workers".to_owned(),
    ] {
        let reply = client.get(format!("{base}/{path}")).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 200, "{path}");
        assert!(reply.text().await.unwrap().contains(&worker), "{path}");
    }

    // Space returns: the server writes again by itself.
    disk.free();
    let freed = Instant::now();
    while status_of(&client, format!("{base}/readyz")).await != 200 {
        assert!(
            freed.elapsed() < Duration::from_secs(30),
            "not ready again after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{} inputs fit on the full disk; ready again {:?} after it was freed",
        taken.len() - 1,
        freed.elapsed()
    );
    let (status, _) = send(&client, &base, &worker, "after", "c-after").await;
    assert_eq!(status, 200);
    taken.push("after".to_owned());
    // The refused input, retried: taken once, whether or not its first
    // try was recorded before the disk refused it.
    let (status, _) = send(&client, &base, &worker, &refused_text, &refused_id).await;
    assert!(matches!(status, 200 | 202), "{status}");
    taken.push(refused_text);
    let (status, _) = send(&client, &base, &worker, &taken[0], "c-before").await;
    assert!(
        matches!(status, 200 | 202),
        "a retry of the first input: {status}"
    );

    // Everything answered is on disk: kill -9 and read it back.
    server.kill();
    let server = start(&disk, &bind).await;
    let entries = all_entries(&client, &server.base, &worker).await;
    let users: Vec<&str> = entries
        .iter()
        .filter(|entry| entry["role"] == "user")
        .map(|entry| entry["text"].as_str().unwrap())
        .collect();
    for text in &taken {
        let times = users.iter().filter(|user| *user == text).count();
        assert_eq!(
            times, 1,
            "{:.20}... is in the transcript {times} times",
            text
        );
    }
    assert_eq!(users.len(), taken.len(), "an input nobody was told about");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_disk_is_full_still_exits() {
    let Some((disk, bind)) = small_disk("disk-full-term") else {
        return;
    };
    let server = start(&disk, &bind).await;
    let client = reqwest::Client::new();
    let worker = create_worker(&client, &server.base, json!({})).await;
    fill_until_refused(&disk, &server.base, &worker, &mut Vec::new()).await;
    // The writer is retrying the batch it cannot commit; shutdown gives up
    // on it instead of waiting for space that may never come.
    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
