//! `yoi-loadgen`: load over HTTP against the workspace server.
//!
//! Starts the server in-process on 127.0.0.1 (or targets `--url`) and runs:
//! `chat` (create, input, wait for `turn_completed`, read the transcript) at
//! concurrency 1 and 16; `read` (worker detail at concurrency 64 against a
//! bare axum JSON handler served by this binary); `fanout` (1,000 SSE
//! subscribers, 100 turns); `soak` (mixed traffic from 32 clients); `turn`
//! (server CPU per chat cycle with `?wait_ms=` against four requests, the
//! server in a child process); `store` and `startup` (the durable store);
//! `remote` (a Runtime on another host against the embedded one);
//! `hostile` (each attack on connections, headers and subscribers);
//! `requests` (server CPU per request against a bare handler);
//! `instructions` (the same, counted in instructions by callgrind). Prints
//! figures and a verdict per scenario; exits non-zero on any violation.
//! Only loopback addresses are ever targeted by default.

mod child;
mod client;
mod floor;
mod forward;
mod hostile;
mod instructions;
mod remote;
mod requests;
mod scenarios;
mod soak;
mod stats;
mod store;
mod turn;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use yoi::config::{FileConfig, Overrides};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Chat,
    Read,
    Fanout,
    Soak,
    /// Server CPU per chat cycle, waited on the input request vs four
    /// requests; runs `yoi serve` as a child process (not part of `all`).
    Turn,
    /// Server CPU per chat cycle, SQLite store vs memory store (children).
    Store,
    /// Start-up time and RSS of `yoi serve` over `--data-dir` (a child).
    Startup,
    /// A Runtime on another host against the embedded one: per-call
    /// latency, chat-cycle CPU of both processes, fan-out (children).
    Remote,
    /// Each attack of the hardening issue against a child `yoi serve`:
    /// RSS and `/healthz` latency during each, and shutdown under attack.
    Hostile,
    /// Server CPU per request (`/healthz`, a worker detail, a transcript
    /// page) of `yoi serve` against a bare axum handler (both children).
    Requests,
    /// User-space instructions per request of `yoi serve` against the bare
    /// handler, both under valgrind's callgrind (children; needs valgrind).
    Instructions,
    /// The bare handler of `requests` (run by it; needs --bind, --bodies).
    #[value(hide = true)]
    Bare,
    /// The forwarding proxy of `remote` (run by it; needs --bind,
    /// --upstream).
    #[value(hide = true)]
    Forward,
    All,
}

/// Load generator for the yoi workspace server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// What to run.
    #[arg(value_enum, default_value = "all")]
    scenario: Scenario,
    /// Target this server instead of starting one in-process.
    #[arg(long)]
    url: Option<String>,
    /// Seconds for the chat and read scenarios (each run).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Seconds of soak.
    #[arg(long, default_value_t = 60)]
    soak_seconds: u64,
    /// SSE subscribers in the fan-out scenario.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Turns in the fan-out scenario.
    #[arg(long, default_value_t = 100)]
    turns: usize,
    /// The `yoi` binary the `turn` scenario runs (default: the one beside
    /// this binary, as `cargo build --release -p yoi -p yoi-loadgen` leaves
    /// it).
    #[arg(long)]
    yoi_bin: Option<std::path::PathBuf>,
    /// Connections per attack in the `hostile` scenario (the connection
    /// cap is half of it).
    #[arg(long, default_value_t = 2000)]
    attackers: usize,
    /// `requests` and `instructions`: another build of `yoi` to measure in
    /// the same run (its figures and its ratio to `--yoi-bin`'s are
    /// printed; the verdict stays `--yoi-bin`'s), to compare builds on one
    /// noisy machine.
    #[arg(long)]
    compare_bin: Option<std::path::PathBuf>,
    /// Alternating rounds per path and concurrency in the `requests`
    /// scenario; its verdict is the median of the rounds' ratios.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// `requests` and `instructions`: measure yoi against the bare handler
    /// with a bearer check and a request log line around it (the floor of
    /// the target) instead of the bare handler alone.
    #[arg(long)]
    bare_floor: bool,
    /// `bare`: serve as the floor (see `--bare-floor`).
    #[arg(long, hide = true)]
    floor: bool,
    /// `bare`: where to listen.
    #[arg(long, hide = true)]
    bind: Option<String>,
    /// `bare`: a JSON object of path to body.
    #[arg(long, hide = true)]
    bodies: Option<std::path::PathBuf>,
    /// `forward`: the server to pass requests to.
    #[arg(long, hide = true)]
    upstream: Option<String>,
    /// The data directory the `startup` scenario serves (made by the
    /// `store_fill` example of yoi-runtime-embedded).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("yoi-loadgen: {err}");
            ExitCode::from(2)
        }
    }
}

/// Starts the server in-process. Stopped Workers are capped low so that a
/// soak reaches its memory plateau quickly.
async fn start_server() -> Result<SocketAddr, client::BoxError> {
    let file = FileConfig::parse(
        Path::new("loadgen.toml"),
        "[limits]\nmax_stopped_workers = 64\n",
    )?;
    let state = yoi::build_state(file.resolve(Overrides::default(), |_| None)?).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(yoi_workspace_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Ok(addr)
}

async fn run(cli: Cli) -> Result<bool, client::BoxError> {
    if cli.scenario == Scenario::Bare {
        let bind = cli.bind.clone().ok_or("bare needs --bind")?;
        let bodies = cli.bodies.clone().ok_or("bare needs --bodies")?;
        return requests::bare(bind, bodies, cli.floor).await;
    }
    if cli.scenario == Scenario::Forward {
        let bind = cli.bind.clone().ok_or("forward needs --bind")?;
        let upstream = cli.upstream.clone().ok_or("forward needs --upstream")?;
        return forward::forward(bind, upstream).await;
    }
    if matches!(
        cli.scenario,
        Scenario::Turn
            | Scenario::Store
            | Scenario::Startup
            | Scenario::Remote
            | Scenario::Hostile
            | Scenario::Requests
            | Scenario::Instructions
    ) {
        let bin = match cli.yoi_bin.clone() {
            Some(bin) => bin,
            None => std::env::current_exe()?
                .parent()
                .ok_or("no folder beside loadgen")?
                .join("yoi"),
        };
        let ok = match cli.scenario {
            Scenario::Turn => turn::turn(bin, cli.seconds).await?,
            Scenario::Store => store::store(bin, cli.seconds).await?,
            Scenario::Remote => {
                remote::remote(bin, cli.seconds, cli.subscribers, cli.turns).await?
            }
            Scenario::Hostile => hostile::hostile(bin, cli.attackers, cli.turns.min(20)).await?,
            Scenario::Requests => {
                requests::requests(
                    bin,
                    cli.compare_bin.clone(),
                    cli.seconds,
                    cli.rounds,
                    cli.bare_floor,
                )
                .await?
            }
            Scenario::Instructions => {
                instructions::instructions(bin, cli.compare_bin.clone(), cli.bare_floor).await?
            }
            _ => {
                let data_dir = cli.data_dir.clone().ok_or("startup needs --data-dir")?;
                store::startup(bin, data_dir).await?
            }
        };
        println!("loadgen: {}", if ok { "PASS" } else { "FAIL" });
        return Ok(ok);
    }
    let (base, in_process) = match &cli.url {
        Some(url) => (url.trim_end_matches('/').to_owned(), false),
        None => (format!("http://{}", start_server().await?), true),
    };
    let client = client::Client::new(base);
    client.wait_ready().await?;
    let duration = Duration::from_secs(cli.seconds);
    let all = cli.scenario == Scenario::All;
    let mut ok = true;
    if all || cli.scenario == Scenario::Chat {
        for concurrency in [1, 16] {
            ok &= scenarios::chat(&client, concurrency, duration).await?;
        }
    }
    if all || cli.scenario == Scenario::Read {
        ok &= scenarios::read_path(&client, 64, duration).await?;
    }
    if all || cli.scenario == Scenario::Fanout {
        let live = std::sync::atomic::AtomicBool::new(false);
        ok &= scenarios::fanout(&client, cli.subscribers, cli.turns, &live).await?;
    }
    if all || cli.scenario == Scenario::Soak {
        ok &= soak::soak(
            &client,
            32,
            Duration::from_secs(cli.soak_seconds),
            in_process,
        )
        .await?;
    }
    println!("loadgen: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}
