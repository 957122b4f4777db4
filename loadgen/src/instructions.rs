//! The `instructions` scenario: user-space instructions per request of
//! `yoi serve` (every layer on, as in `requests`) against the bare handler,
//! counted by valgrind's callgrind.
//!
//! `requests` measures what the target is about, CPU time, but on a small
//! shared machine its rounds spread by 0.1x or more. An instruction count
//! does not depend on what else the machine does: the same build, paths
//! and client give the same count to a fraction of a percent, so two
//! builds can be told apart by much less than `requests` can see. It
//! leaves out what CPU time has and it has not: the kernel's share of a
//! request (the same for both servers: the same syscalls), and how fast
//! each instruction runs (cache misses, waits for another core).
//!
//! Each server runs under callgrind, which serializes its threads, with
//! one connection: a warm-up, a dump that starts the count afresh, `n`
//! requests, and a dump whose total is divided by `n`. Needs `valgrind`
//! (with its `callgrind_control`) on the `PATH`.

use std::path::{Path as FsPath, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::child::Server;
use crate::client::BoxError;
use crate::requests::{Path, TOKEN, load, start_bare, start_yoi};

/// Requests measured per path.
const REQUESTS: usize = 2_000;
/// Requests sent before the count starts: connections made, caches and
/// lazy statics filled.
const WARM_UP: usize = 300;

/// A server under callgrind, and how many dumps it has written.
struct Counted {
    server: Server,
    /// The `--callgrind-out-file`; dump `k` is written to `<out>.<k>`.
    out: PathBuf,
    dumps: u32,
}

impl Counted {
    /// Instructions of the server since its last dump (or its start).
    fn dump(&mut self) -> Result<u64, BoxError> {
        let status = Command::new("callgrind_control")
            .args(["--dump", &self.server.pid().to_string()])
            .output()
            .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
        if !status.status.success() {
            return Err(format!(
                "callgrind_control failed: {}",
                String::from_utf8_lossy(&status.stderr)
            )
            .into());
        }
        self.dumps += 1;
        let file = PathBuf::from(format!("{}.{}", self.out.display(), self.dumps));
        // callgrind_control returns once the request is sent; the file is
        // complete when its last line, the totals, is there.
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some(total) = totals(&text)
            {
                return Ok(total);
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("no complete dump in {}", file.display()).into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Instructions per request for `n` requests of `path` on one
    /// connection, after a warm-up.
    async fn per_request(&mut self, path: &str, token: Option<&str>) -> Result<f64, BoxError> {
        load(&self.server.base, path, token, 1, WARM_UP).await?;
        self.dump()?;
        load(&self.server.base, path, token, 1, REQUESTS).await?;
        Ok(self.dump()? as f64 / REQUESTS as f64)
    }
}

/// The instruction total of a complete callgrind dump.
fn totals(dump: &str) -> Option<u64> {
    dump.lines()
        .rev()
        .find_map(|line| line.strip_prefix("totals:"))
        .and_then(|total| total.trim().parse().ok())
}

/// valgrind's arguments to run a server under callgrind writing to `out`.
fn callgrind(out: &FsPath) -> Vec<String> {
    vec![
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
    ]
}

/// Runs the scenario for `bin`; with `compare`, another build of `yoi` is
/// counted too, against the same bare handler.
pub(crate) async fn instructions(
    bin: PathBuf,
    compare: Option<PathBuf>,
    floor: bool,
) -> Result<bool, BoxError> {
    let dir = std::env::temp_dir().join(format!("yoi-instructions-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let token_file = dir.join("token");
    std::fs::write(&token_file, TOKEN)?;
    let token_file = token_file.to_string_lossy().into_owned();
    let start = |name: &str| {
        let out = dir.join(format!("{name}.callgrind"));
        (callgrind(&out), out)
    };

    let (wrapper, out) = start("yoi");
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let (server, paths) = start_yoi(&wrapper, &bin, &token_file).await?;
    let mut yoi = Counted {
        server,
        out,
        dumps: 0,
    };
    let mut other = match &compare {
        Some(other_bin) => {
            let (wrapper, out) = start("compared");
            let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
            let (server, paths) = start_yoi(&wrapper, other_bin, &token_file).await?;
            Some((
                Counted {
                    server,
                    out,
                    dumps: 0,
                },
                paths,
            ))
        }
        None => None,
    };
    let (wrapper, out) = start("bare");
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut bare = Counted {
        server: start_bare(&wrapper, &yoi.server, &paths, &dir, floor).await?,
        out,
        dumps: 0,
    };

    for (index, Path { name, path }) in paths.iter().enumerate() {
        let yoi_count = yoi.per_request(path, Some(TOKEN)).await?;
        // The floor checks the token as yoi does.
        let bare_count = bare.per_request(path, floor.then_some(TOKEN)).await?;
        println!(
            "instructions c=1  {name:<16} yoi {yoi_count:>8.0} per request, bare {bare_count:>8.0}: {:.2}x",
            yoi_count / bare_count
        );
        if let Some((other, other_paths)) = &mut other {
            let other_count = other
                .per_request(&other_paths[index].path, Some(TOKEN))
                .await?;
            println!(
                "    compared build {other_count:>8.0} per request: {:.2}x bare, {:.4}x yoi",
                other_count / bare_count,
                other_count / yoi_count
            );
        }
    }
    drop((yoi, other, bare));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_read_from_a_complete_dump_only() {
        let partial = "# callgrind format\nevents: Ir\nsummary: 1234\n\nfn=(1) main\n5 10\n";
        assert_eq!(totals(partial), None);
        let complete = format!("{partial}\ntotals: 1234\n");
        assert_eq!(totals(&complete), Some(1234));
    }
}
