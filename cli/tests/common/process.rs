//! `yoi serve` as a child process, for tests that kill it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `yoi serve`; killed (SIGKILL) on drop.
pub struct Server {
    child: Child,
    pub base: String,
}

/// The `yoi` command with no `YOI_*` variables from the environment.
pub fn yoi() -> Command {
    without_yoi_variables(Command::new(env!("CARGO_BIN_EXE_yoi")))
}

/// `command` with no `YOI_*` variables from the environment.
pub fn without_yoi_variables(mut command: Command) -> Command {
    for (var, _) in std::env::vars() {
        if var.starts_with("YOI_") {
            command.env_remove(var);
        }
    }
    command
}

impl Server {
    /// Starts `yoi serve` on a free loopback port with `args`, and waits
    /// until it answers `/healthz`.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_command(&["serve"], "127.0.0.1", args, &[]).await
    }

    /// Starts `yoi <command> --bind HOST:PORT ARGS` with `envs` set, on a
    /// free port.
    pub async fn start_command(
        command: &[&str],
        host: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let port = free_port(host);
        Self::start_at(command, &format!("{host}:{port}"), args, envs).await
    }

    /// Starts `yoi <command> --bind BIND ARGS` with `envs` set.
    pub async fn start_at(
        command: &[&str],
        bind: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let mut yoi = yoi();
        yoi.args(command)
            .args(["--bind", bind])
            .args(args)
            .envs(envs.iter().copied());
        Self::start_prepared(yoi, bind).await
    }

    /// Starts `command` (which runs `yoi` listening on `bind`, perhaps
    /// through another program that execs it), quietly, and waits until it
    /// answers `/healthz`.
    pub async fn start_prepared(mut command: Command, bind: &str) -> Self {
        let child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://{bind}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(reply) = client.get(format!("{}/healthz", server.base)).send().await
                && reply.status().is_success()
            {
                return server;
            }
            assert!(Instant::now() < deadline, "yoi serve did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits (at most 30 s) for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.signal_terminate();
        self.wait_for_exit(Duration::from_secs(30))
    }

    /// Sends SIGTERM and returns at once.
    pub fn signal_terminate(&self) {
        let pid = self.child.id();
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits (at most `limit`) for the exit status.
    pub fn wait_for_exit(mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "yoi did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now, on `host`.
pub fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config file with a slow echo profile, written into `dir`.
pub fn slow_profile_config(dir: &Path, delay_ms: u64) -> String {
    let path = dir.join("yoi.toml");
    std::fs::write(
        &path,
        format!("[[profiles]]\nname = \"slow\"\nbackend = \"echo\"\necho_delay_ms = {delay_ms}\n"),
    )
    .unwrap();
    path.display().to_string()
}

/// POSTs `body` as JSON to `url`, asserts a success status, and parses
/// the JSON answer.
pub async fn post_json(
    client: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> serde_json::Value {
    let reply = client.post(url).json(&body).send().await.unwrap();
    assert!(reply.status().is_success(), "{}", reply.status());
    reply.json().await.unwrap()
}

/// GETs `url` and parses its JSON body.
pub async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// What a crash test starts from: its rounds (`CRASH_ROUNDS`, else
/// `default_rounds`), a random generator seeded from the clock (the seed
/// is printed, to tell runs apart), and the arguments of `yoi serve` over
/// a fresh data directory with a `slow` echo profile of `delay_ms`.
pub struct CrashSetup {
    pub rounds: u64,
    pub rng: fastrand::Rng,
    pub args: Vec<String>,
}

impl CrashSetup {
    pub fn new(label: &str, default_rounds: u64, delay_ms: u64) -> Self {
        let rounds = std::env::var("CRASH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(default_rounds);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("{label} seed {seed}, {rounds} rounds");
        let dir = yoi_runtime_api::test_util::temp_dir(label);
        let config = slow_profile_config(&dir, delay_ms);
        let data = dir.join("data").display().to_string();
        Self {
            rounds,
            rng: fastrand::Rng::with_seed(seed),
            args: vec!["--config".into(), config, "--data-dir".into(), data],
        }
    }
}

/// Every entry of `worker`'s transcript that `base` keeps, oldest first,
/// read page by page.
pub async fn all_entries(
    client: &reqwest::Client,
    base: &str,
    worker: &str,
) -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    let mut start = 0u64;
    loop {
        let page = get_json(
            client,
            format!(
                "{base}/api/runtimes/backend-internal/workers/{worker}/transcript?start={start}&limit=200"
            ),
        )
        .await;
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_start"].as_u64() {
            Some(next) => start = next,
            None => return entries,
        }
    }
}

/// Creates a Worker of `backend-internal` on `base` (`request` is the
/// create body); its id.
pub async fn create_worker(
    client: &reqwest::Client,
    base: &str,
    request: serde_json::Value,
) -> String {
    let created = post_json(
        client,
        format!("{base}/api/runtimes/backend-internal/workers"),
        request,
    )
    .await;
    created["worker_id"].as_str().unwrap().to_owned()
}

/// The detail of `worker` of `backend-internal` on `base`.
pub async fn worker_detail(
    client: &reqwest::Client,
    base: &str,
    worker: &str,
) -> serde_json::Value {
    get_json(
        client,
        format!("{base}/api/runtimes/backend-internal/workers/{worker}"),
    )
    .await
}
