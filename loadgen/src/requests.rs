//! The `requests` scenario: server CPU per request of `yoi serve` (every
//! layer on: Host check, cross-site guard, bearer token, request log line)
//! against a bare axum handler answering the same bytes, each in a child
//! process, measured from `/proc` so the client's speed does not matter
//! (each thread's run time in nanoseconds, not 10 ms ticks: a measurement
//! is only a few hundred milliseconds of CPU).
//! The two alternate in rounds in one run. Each round measures yoi and
//! then the bare handler; the verdict is the median of the rounds' ratios,
//! so a round the machine disturbed (a burst of other work, a change of
//! the host's clock speed) moves it less than it moves an average, and a
//! slow drift over the run cancels within each pair.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use serde_json::json;

use crate::child::Server;
use crate::client::{BoxError, RT};

pub(crate) const TOKEN: &str = "loadgen-requests-token";
/// The most per-request CPU of yoi relative to the bare handler.
const TARGET: f64 = 1.15;

/// One path and the bytes a bare handler answers for it.
pub(crate) struct Path {
    pub(crate) name: &'static str,
    pub(crate) path: String,
}

/// Serves `bodies` (path -> bytes) as JSON on `bind`: the bare handler.
/// With `floor`, the bare handler with a bearer check and a request log
/// line around it (`floor.rs`).
pub(crate) async fn bare(bind: String, bodies: PathBuf, floor: bool) -> Result<bool, BoxError> {
    let bodies: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(bodies)?)?;
    let mut router = Router::new();
    for (path, body) in bodies {
        let body = body.as_str().ok_or("bodies must be strings")?.to_owned();
        router = router.route(
            &path,
            get(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind(bind).await?;
    if floor {
        return crate::floor::serve(listener, router, TOKEN).await;
    }
    axum::serve(listener, router).await?;
    Ok(true)
}

/// Sends `n` GETs of `path` over `concurrency` keep-alive connections.
pub(crate) async fn load(
    base: &str,
    path: &str,
    token: Option<&str>,
    concurrency: usize,
    n: usize,
) -> Result<(), BoxError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = Arc::new(format!("{base}{path}"));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), url.clone());
        let token = token.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / concurrency {
                let mut request = client.get(url.as_str());
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await?;
                if !response.status().is_success() {
                    return Err::<(), BoxError>(format!("{url}: {}", response.status()).into());
                }
                response.bytes().await?;
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// One server's cost per request in one measurement.
#[derive(Debug, Clone, Copy, Default)]
struct PerRequest {
    /// CPU time in microseconds.
    us: f64,
    /// Context switches of the server's threads: voluntary (it waited)
    /// and involuntary (the kernel preempted it). Not part of the verdict;
    /// they show how much of a difference is the scheduler's.
    voluntary: f64,
    involuntary: f64,
}

/// Server CPU (and context switches) per request while `n` requests run.
async fn cpu_per_request(
    server: &Server,
    path: &str,
    token: Option<&str>,
    concurrency: usize,
    n: usize,
) -> Result<PerRequest, BoxError> {
    let (before, ticks_before) = (server.cpu_precise()?, server.cpu()?);
    let switches_before = server.switches()?;
    load(&server.base, path, token, concurrency, n).await?;
    let used = server.cpu_precise()? - before;
    let switches = server.switches()? - switches_before;
    // The tick count agrees within its 10 ms steps unless a thread that
    // ran exited (its time would be missing from the precise sum).
    let ticks = server.cpu()? - ticks_before;
    if ticks > used + Duration::from_millis(30) + used / 20 {
        return Err(format!("{path}: threads exited during the measurement").into());
    }
    Ok(PerRequest {
        us: used.as_secs_f64() * 1e6 / n as f64,
        voluntary: switches.voluntary as f64 / n as f64,
        involuntary: switches.involuntary as f64 / n as f64,
    })
}

/// `yoi serve --memory` with every layer on (the token, and the request
/// log line at info), ready, with a Worker that has had one turn; the
/// server and the paths to measure on it. Run under `wrapper` (a program
/// and its arguments) when that is not empty.
pub(crate) async fn start_yoi(
    wrapper: &[&str],
    bin: &std::path::Path,
    token_file: &str,
) -> Result<(Server, [Path; 3]), BoxError> {
    let yoi = Server::spawn_under(
        wrapper,
        bin,
        &["serve"],
        &["--memory", "--token-file", token_file],
        &std::env::var("YOI_REQUESTS_LOG").unwrap_or_else(|_| "info".to_owned()),
    )?;
    let client = reqwest::Client::new();
    wait_until_up(&client, &yoi, "yoi").await?;
    let created: serde_json::Value = serde_json::from_slice(
        &client
            .post(format!("{}{RT}/workers", yoi.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await?
            .bytes()
            .await?,
    )?;
    let worker = created["worker_id"].as_str().ok_or("no worker")?.to_owned();
    client
        .post(format!(
            "{}{RT}/workers/{worker}/input?wait_ms=10000",
            yoi.base
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(json!({ "text": "hello" }).to_string())
        .send()
        .await?;
    let paths = [
        Path {
            name: "/healthz",
            path: "/healthz".to_owned(),
        },
        Path {
            name: "worker detail",
            path: format!("{RT}/workers/{worker}"),
        },
        Path {
            name: "transcript page",
            path: format!("{RT}/workers/{worker}/transcript"),
        },
    ];
    Ok((yoi, paths))
}

/// Waits up to a minute for `server` to answer `/healthz`.
async fn wait_until_up(
    client: &reqwest::Client,
    server: &Server,
    name: &str,
) -> Result<(), BoxError> {
    let started = Instant::now();
    while client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{name} did not start").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The bare handler (this binary's `bare` mode, under `wrapper` when that
/// is not empty), answering each of `paths` with the bytes `yoi` answers,
/// ready; with `floor`, with a bearer check and a request log line around
/// it. Its bodies file is written in `dir`.
pub(crate) async fn start_bare(
    wrapper: &[&str],
    yoi: &Server,
    paths: &[Path],
    dir: &std::path::Path,
    floor: bool,
) -> Result<Server, BoxError> {
    let client = reqwest::Client::new();
    let mut bodies = serde_json::Map::new();
    for path in paths {
        let body = client
            .get(format!("{}{}", yoi.base, path.path))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .text()
            .await?;
        bodies.insert(path.path.clone(), body.into());
    }
    let bodies_file = dir.join("bodies.json");
    std::fs::write(&bodies_file, serde_json::to_vec(&bodies)?)?;
    let loadgen = std::env::current_exe()?;
    let bodies_file = bodies_file.to_string_lossy();
    let (args, log): (&[&str], _) = if floor {
        (&["--bodies", &bodies_file, "--floor"], "info")
    } else {
        (&["--bodies", &bodies_file], "warn")
    };
    let bare = Server::spawn_under(wrapper, &loadgen, &["bare"], args, log)?;
    wait_until_up(&client, &bare, "the bare server").await?;
    Ok(bare)
}

/// Runs the scenario for `bin`; with `compare`, another build of `yoi`
/// is measured in the same rounds, to compare builds.
pub(crate) async fn requests(
    bin: PathBuf,
    compare: Option<PathBuf>,
    seconds: u64,
    rounds: usize,
    floor: bool,
) -> Result<bool, BoxError> {
    let rounds = rounds.max(1);
    let dir = std::env::temp_dir().join(format!("yoi-requests-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let token_file = dir.join("token");
    std::fs::write(&token_file, TOKEN)?;
    let token_file = token_file.to_string_lossy().into_owned();
    let (yoi, paths) = start_yoi(&[], &bin, &token_file).await?;
    let other = match &compare {
        Some(other) => Some(start_yoi(&[], other, &token_file).await?),
        None => None,
    };
    let bare = start_bare(&[], &yoi, &paths, &dir, floor).await?;
    // The floor checks the token as yoi does, and is measured against the
    // bare handler alone in the same rounds.
    let bare_token = floor.then_some(TOKEN);
    let plain = match floor {
        true => Some(start_bare(&[], &yoi, &paths, &dir, false).await?),
        false => None,
    };
    // Requests per measurement: enough for the 10 ms CPU tick to be small.
    let n = (seconds as usize * 10_000).max(10_000);
    let mut ok = true;
    for concurrency in [1, 16] {
        for (index, path) in paths.iter().enumerate() {
            let mut measured = Vec::with_capacity(rounds);
            let mut switches = Vec::with_capacity(rounds);
            let mut compared = Vec::with_capacity(rounds);
            let mut floor_rounds = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let yoi = cpu_per_request(&yoi, &path.path, Some(TOKEN), concurrency, n).await?;
                if let Some((other, other_paths)) = &other {
                    let path = &other_paths[index].path;
                    compared.push(
                        cpu_per_request(other, path, Some(TOKEN), concurrency, n)
                            .await?
                            .us,
                    );
                }
                let bare = cpu_per_request(&bare, &path.path, bare_token, concurrency, n).await?;
                if let Some(plain) = &plain {
                    let plain = cpu_per_request(plain, &path.path, None, concurrency, n).await?;
                    floor_rounds.push(Round {
                        yoi_us: bare.us,
                        bare_us: plain.us,
                    });
                }
                measured.push(Round {
                    yoi_us: yoi.us,
                    bare_us: bare.us,
                });
                switches.push((yoi, bare));
            }
            let summary = Summary::of(&measured);
            let pass = summary.median <= TARGET;
            ok &= pass;
            println!(
                "requests c={concurrency:<2} {:<16} yoi {:>6.1} us/req, bare {:>6.1} us/req: {:.2}x median of {rounds} (rounds {:.2}-{:.2}x; target <= {TARGET}x) {}",
                path.name,
                summary.yoi_us,
                summary.bare_us,
                summary.median,
                summary.lowest,
                summary.highest,
                if pass { "PASS" } else { "FAIL" }
            );
            let mean = |pick: fn(&(PerRequest, PerRequest)) -> f64| {
                switches.iter().map(pick).sum::<f64>() / switches.len() as f64
            };
            println!(
                "    context switches per request (voluntary + involuntary): yoi {:.3} + {:.3}, bare {:.3} + {:.3}",
                mean(|(yoi, _)| yoi.voluntary),
                mean(|(yoi, _)| yoi.involuntary),
                mean(|(_, bare)| bare.voluntary),
                mean(|(_, bare)| bare.involuntary),
            );
            if !floor_rounds.is_empty() {
                let floor = Summary::of(&floor_rounds);
                println!(
                    "    the bare handler alone {:>6.1} us/req: the floor is {:.2}x it (median; rounds {:.2}-{:.2}x)",
                    floor.bare_us, floor.median, floor.lowest, floor.highest,
                );
            }
            if !compared.is_empty() {
                // The other build's rounds, each against one of this
                // round's figures.
                let against = |base: fn(&Round) -> f64| -> Vec<Round> {
                    measured
                        .iter()
                        .zip(&compared)
                        .map(|(round, other_us)| Round {
                            yoi_us: *other_us,
                            bare_us: base(round),
                        })
                        .collect()
                };
                let against_bare = against(|round| round.bare_us);
                let against_yoi = against(|round| round.yoi_us);
                let bare = Summary::of(&against_bare);
                println!(
                    "    compared build {:>6.1} us/req: {:.2}x bare (median; rounds {:.2}-{:.2}x), {:.3}x yoi",
                    bare.yoi_us,
                    bare.median,
                    bare.lowest,
                    bare.highest,
                    Summary::of(&against_yoi).median,
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ok)
}

/// One round: each server's CPU per request for the same path and load.
#[derive(Debug, Clone, Copy)]
struct Round {
    yoi_us: f64,
    bare_us: f64,
}

impl Round {
    fn ratio(self) -> f64 {
        self.yoi_us / self.bare_us
    }
}

/// What a line of the scenario prints for its rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    /// Mean CPU per request over the rounds.
    yoi_us: f64,
    bare_us: f64,
    /// The median of the rounds' ratios (the mean of the middle two for an
    /// even count): the verdict.
    median: f64,
    lowest: f64,
    highest: f64,
}

impl Summary {
    /// Summarises at least one round.
    fn of(rounds: &[Round]) -> Self {
        let count = rounds.len() as f64;
        let mut ratios: Vec<f64> = rounds.iter().map(|round| round.ratio()).collect();
        ratios.sort_by(f64::total_cmp);
        let middle = ratios.len() / 2;
        let median = if ratios.len() % 2 == 1 {
            ratios[middle]
        } else {
            (ratios[middle - 1] + ratios[middle]) / 2.0
        };
        Self {
            yoi_us: rounds.iter().map(|round| round.yoi_us).sum::<f64>() / count,
            bare_us: rounds.iter().map(|round| round.bare_us).sum::<f64>() / count,
            median,
            lowest: ratios[0],
            highest: ratios[ratios.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(yoi_us: f64, bare_us: f64) -> Round {
        Round { yoi_us, bare_us }
    }

    #[test]
    fn the_verdict_is_the_median_of_the_rounds_ratios() {
        // One disturbed round (the bare handler slowed by other work)
        // moves the mean ratio past the target but not the median.
        let rounds = [
            round(11.0, 10.0),
            round(11.2, 10.0),
            round(22.0, 10.0),
            round(10.8, 10.0),
            round(11.0, 10.0),
        ];
        let summary = Summary::of(&rounds);
        assert!((summary.median - 1.10).abs() < 1e-9, "{summary:?}");
        assert!((summary.lowest - 1.08).abs() < 1e-9, "{summary:?}");
        assert!((summary.highest - 2.2).abs() < 1e-9, "{summary:?}");
        assert!((summary.yoi_us - 13.2).abs() < 1e-9, "{summary:?}");
        assert!((summary.bare_us - 10.0).abs() < 1e-9, "{summary:?}");
    }

    #[test]
    fn an_even_count_takes_the_middle_two() {
        let rounds = [
            round(12.0, 10.0),
            round(11.0, 10.0),
            round(10.0, 10.0),
            round(13.0, 10.0),
        ];
        assert!((Summary::of(&rounds).median - 1.15).abs() < 1e-9);
        assert!((Summary::of(&[round(9.0, 10.0)]).median - 0.9).abs() < 1e-9);
    }
}
