//! `hostile`: each attack from the hardening issue against a `yoi serve`
//! child on 127.0.0.1, with its resident memory sampled and `/healthz`
//! probed on fresh connections throughout. One verdict line per attack,
//! then whether the server stopped within its grace period under attack.
//!
//! Targets: RSS under 1 GiB during every attack; `/healthz` p99 under
//! 100 ms, except at the connection cap itself, where it must still answer
//! within 1 s (from the reserve).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::child::Server;
use crate::client::BoxError;

const MIB: u64 = 1024 * 1024;
const RSS_LIMIT: u64 = 1024 * MIB;
/// The limits the attacked server runs with (a small cap, so the cap is
/// reached with few sockets).
const HEADER_TIMEOUT_MS: u64 = 2_000;
const GRACE_MS: u64 = 2_000;

/// What one attack measured.
struct Measured {
    peak_rss: u64,
    probes: Vec<Duration>,
    failed_probes: usize,
}

impl Measured {
    fn p99(&self) -> Duration {
        let mut sorted = self.probes.clone();
        sorted.sort_unstable();
        sorted
            .get((sorted.len() * 99 / 100).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or(Duration::MAX)
    }
}

/// Samples RSS and probes `/healthz` until `stop` is set.
async fn watch(server_pid: u32, port: u16, stop: Arc<AtomicBool>) -> Measured {
    let mut measured = Measured {
        peak_rss: 0,
        probes: Vec::new(),
        failed_probes: 0,
    };
    while !stop.load(Ordering::Acquire) {
        if let Some(rss) = crate::child::rss(server_pid) {
            measured.peak_rss = measured.peak_rss.max(rss);
        }
        // Like a health checker: try again at once when refused, and
        // count the time to the first answer; fail after 2 s.
        let started = Instant::now();
        let answered = tokio::time::timeout(Duration::from_secs(2), async {
            while probe(port).await.is_err() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        match answered {
            Ok(()) => measured.probes.push(started.elapsed()),
            Err(_) => measured.failed_probes += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    measured
}

/// `GET /healthz` on a fresh connection; Ok on a 200.
async fn probe(port: u16) -> Result<(), BoxError> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    if answer.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err("not 200".into())
    }
}

/// Runs `attack` while watching the server; prints the verdict line.
async fn judge<F>(
    server: &Server,
    name: &str,
    p99_limit: Duration,
    attack: F,
) -> Result<bool, BoxError>
where
    F: Future<Output = Result<String, BoxError>>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch(server.pid(), server.port(), stop.clone()));
    let note = attack.await;
    stop.store(true, Ordering::Release);
    let measured = watcher.await?;
    let note = note?;
    let p99 = measured.p99();
    let ok = measured.peak_rss < RSS_LIMIT && p99 < p99_limit && measured.failed_probes == 0;
    println!(
        "hostile {name:<18} peak RSS {:>5} MiB, /healthz p99 {:>6.1} ms ({} probes, {} failed; limit {} ms); {note}: {}",
        measured.peak_rss / MIB,
        p99.as_secs_f64() * 1e3,
        measured.probes.len(),
        measured.failed_probes,
        p99_limit.as_millis(),
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}

/// Opens `n` connections; each sends a request line and then one header
/// byte pair every 500 ms for `hold`. Returns how many the server closed.
async fn drip_headers(port: u16, n: usize, hold: Duration) -> Result<String, BoxError> {
    let closed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let closed = closed.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
                closed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let deadline = Instant::now() + hold;
            let _ = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await;
            while Instant::now() < deadline {
                if stream.write_all(b"X-a: b\r\n").await.is_err() {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut byte = [0u8; 1];
                if let Ok(Ok(0) | Err(_)) =
                    tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await
                {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let closed = closed.load(Ordering::Relaxed);
    if closed < n as u64 * 9 / 10 {
        return Err(format!("only {closed} of {n} dripping connections were shed").into());
    }
    Ok(format!("{closed} of {n} dripping connections shed"))
}

/// Holds `n` idle connections open for `hold`.
async fn idle_flood(port: u16, n: usize, hold: Duration) -> Result<String, BoxError> {
    let mut held = Vec::new();
    for _ in 0..n {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    tokio::time::sleep(hold).await;
    Ok(format!("{} idle connections held", held.len()))
}

/// `n` clients each send 400 KB of headers.
async fn big_headers(port: u16, n: usize) -> Result<String, BoxError> {
    let refused = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let refused = refused.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            let _ = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await;
            let line = format!("X-filler: {}\r\n", "a".repeat(1000));
            for _ in 0..400 {
                if stream.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
            if !answer.starts_with(b"HTTP/1.1 200") {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let refused = refused.load(Ordering::Relaxed);
    if refused != n as u64 {
        return Err(format!(
            "{} of {n} oversized requests were served",
            n as u64 - refused
        )
        .into());
    }
    Ok(format!("{refused} of {n} oversized requests refused"))
}

/// `n` SSE subscribers on one Worker that never read, while it answers
/// `turns` inputs of 60 KB (so each reply is one 60 KB delta).
async fn non_reading_subscribers(
    base: &str,
    port: u16,
    n: usize,
    turns: usize,
) -> Result<String, BoxError> {
    let http = reqwest::Client::new();
    let runtime = format!("{base}/api/runtimes/backend-internal");
    let created = http
        .post(format!("{runtime}/workers"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await?
        .bytes()
        .await?;
    let created: serde_json::Value = serde_json::from_slice(&created)?;
    let worker = created["worker_id"]
        .as_str()
        .ok_or("no worker id")?
        .to_owned();
    let path = format!("/api/runtimes/backend-internal/workers/{worker}/events/stream");
    let mut held = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4()?;
        // A small receive window, so the server's writes back up at once.
        socket.set_recv_buffer_size(4096)?;
        let mut stream = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .await?;
        held.push(stream);
    }
    let text = "x".repeat(60_000);
    for _ in 0..turns {
        let answer = http
            .post(format!("{runtime}/workers/{worker}/input?wait_ms=10000"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "text": text, "on_busy": "queue" }).to_string())
            .send()
            .await?;
        if !answer.status().is_success() {
            return Err(format!("input answered {}", answer.status()).into());
        }
    }
    Ok(format!(
        "{} non-reading subscribers, {turns} replies of 60 KB",
        held.len()
    ))
}

/// `clients` clients, each filling Workers with 60 KB turns until the
/// server refuses with `503 capacity_exceeded` (its cap on the bytes all
/// Workers keep in memory), or `max_turns` in all.
async fn big_transcripts(base: &str, clients: usize, max_turns: u64) -> Result<String, BoxError> {
    let http = reqwest::Client::new();
    let runtime = format!("{base}/api/runtimes/backend-internal");
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, runtime) = (http.clone(), runtime.clone());
        let (accepted, refused) = (accepted.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let text = "z".repeat(60_000);
            let mut worker: Option<String> = None;
            let mut turns_here = 0;
            while accepted.load(Ordering::Relaxed) < max_turns {
                // A fresh Worker every 100 turns, so the cap that stops
                // this is the Runtime's, not one Worker's.
                if worker.is_none() || turns_here == 100 {
                    let created = http
                        .post(format!("{runtime}/workers"))
                        .header("content-type", "application/json")
                        .body("{}")
                        .send()
                        .await?;
                    if created.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        refused.fetch_add(1, Ordering::Relaxed);
                        return Ok::<(), BoxError>(());
                    }
                    let created: serde_json::Value =
                        serde_json::from_slice(&created.bytes().await?)?;
                    worker = created["worker_id"].as_str().map(str::to_owned);
                    turns_here = 0;
                }
                let id = worker.as_deref().ok_or("no worker id")?;
                let answer = http
                    .post(format!("{runtime}/workers/{id}/input?wait_ms=10000"))
                    .header("content-type", "application/json")
                    .body(serde_json::json!({ "text": text }).to_string())
                    .send()
                    .await?;
                match answer.status() {
                    s if s.is_success() => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        turns_here += 1;
                    }
                    reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    other => return Err(format!("input answered {other}").into()),
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let (accepted, refused) = (
        accepted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    Ok(format!(
        "{accepted} turns of 60 KB, then {refused} of {clients} clients refused with 503"
    ))
}

/// The hostile-load verdict. `attackers` scales every attack; the server
/// serves that many connections at once, so the connection-cap attack
/// opens more and the others stay below it.
pub(crate) async fn hostile(
    bin: PathBuf,
    attackers: usize,
    turns: usize,
) -> Result<bool, BoxError> {
    let dir = std::env::temp_dir().join(format!("yoi-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("hostile.toml");
    std::fs::write(
        &config,
        format!(
            "[limits]\nheader_timeout_ms = {HEADER_TIMEOUT_MS}\nshutdown_grace_ms = {GRACE_MS}\n\
             max_connections = {attackers}\nreserve_connections = 16\nmax_header_bytes = 65536\n",
        ),
    )?;
    let config = config.to_string_lossy().into_owned();
    let server = Server::start(&bin, &["--memory", "--config", &config])?;
    crate::client::Client::new(server.base.clone())
        .wait_ready()
        .await?;
    let port = server.port();
    let fast = Duration::from_millis(100);
    let mut ok = true;
    let hold = Duration::from_millis(HEADER_TIMEOUT_MS + 1_500);
    let below_cap = attackers.saturating_sub(50).max(1);
    ok &= judge(
        &server,
        "drip-headers",
        fast,
        drip_headers(port, below_cap, hold),
    )
    .await?;
    ok &= judge(
        &server,
        "connection-cap",
        Duration::from_secs(1),
        idle_flood(port, attackers + 200, Duration::from_secs(3)),
    )
    .await?;
    ok &= judge(
        &server,
        "big-headers",
        fast,
        big_headers(port, attackers / 10),
    )
    .await?;
    ok &= judge(
        &server,
        "non-reading-sse",
        fast,
        non_reading_subscribers(&server.base, port, below_cap, turns),
    )
    .await?;
    // Past the default cap on retained bytes (512 MiB), every client is
    // refused; the turn bound only stops a server that never refuses.
    ok &= judge(
        &server,
        "big-transcripts",
        fast,
        big_transcripts(&server.base, 8, 8_000),
    )
    .await?;
    ok &= shutdown_under_attack(server, port).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ok)
}

/// SIGTERM while clients hold a partial request and an event stream: the
/// process must exit 0 within the grace period (plus a second).
async fn shutdown_under_attack(mut server: Server, port: u16) -> Result<bool, BoxError> {
    let mut partial = TcpStream::connect(("127.0.0.1", port)).await?;
    partial
        .write_all(b"POST /api/runtimes/backend-internal/workers HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await?;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /api/runtimes/backend-internal/events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let started = Instant::now();
    let status = server.terminate(Duration::from_millis(GRACE_MS + 5_000))?;
    let took = started.elapsed();
    let ok = status == Some(0) && took < Duration::from_millis(GRACE_MS + 1_000);
    println!(
        "hostile {:<18} exit {:?} after {:.2} s (grace {:.1} s): {}",
        "shutdown",
        status,
        took.as_secs_f64(),
        GRACE_MS as f64 / 1e3,
        if ok { "PASS" } else { "FAIL" }
    );
    drop((partial, stream));
    Ok(ok)
}
