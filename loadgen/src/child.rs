//! `yoi serve` as a child process, measured from outside: CPU time and
//! resident memory from `/proc`, which do not depend on the client.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::client::BoxError;

/// A `yoi` server child on a free loopback port; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `yoi serve` with `args` (it is not waited for).
    pub(crate) fn start(bin: &Path, args: &[&str]) -> Result<Self, BoxError> {
        Self::spawn(bin, &["serve"], args)
    }

    /// Starts `yoi <command> --bind <free port> <args>` (not waited for).
    pub(crate) fn spawn(bin: &Path, command: &[&str], args: &[&str]) -> Result<Self, BoxError> {
        Self::spawn_logging(bin, command, args, "warn")
    }

    /// [`Server::spawn`] with this `RUST_LOG` (its output is discarded).
    pub(crate) fn spawn_logging(
        bin: &Path,
        command: &[&str],
        args: &[&str],
        log: &str,
    ) -> Result<Self, BoxError> {
        Self::spawn_under(&[], bin, command, args, log)
    }

    /// [`Server::spawn_logging`] as the last arguments of `wrapper` (a
    /// program and its arguments, such as valgrind's), when not empty.
    pub(crate) fn spawn_under(
        wrapper: &[&str],
        bin: &Path,
        command: &[&str],
        args: &[&str],
        log: &str,
    ) -> Result<Self, BoxError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut program = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut program = Command::new(program);
                program.args(wrapper_args).arg(bin);
                program
            }
            None => Command::new(bin),
        };
        let child = program
            .args(command)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match wrapper.first() {
                Some(program) => format!("cannot start {program}: {e}"),
                None => format!("cannot start {}: {e}", bin.display()),
            })?;
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The child's CPU time so far.
    pub(crate) fn cpu(&self) -> Result<Duration, BoxError> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')').ok_or("bad /proc stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // Linux reports in USER_HZ, which is 100 on every supported target.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// The child's CPU time so far, to the nanosecond: the sum over its
    /// threads of the time each has run (`/proc/<pid>/task/*/schedstat`),
    /// where [`Server::cpu`] counts 10 ms ticks. Time of threads that have
    /// exited is not in it, so it suits measurements during which the
    /// child keeps its threads (a server answering requests).
    pub(crate) fn cpu_precise(&self) -> Result<Duration, BoxError> {
        let mut nanos: u64 = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let path = task?.path().join("schedstat");
            // A thread that exits between the listing and the read is gone.
            let Ok(schedstat) = std::fs::read_to_string(path) else {
                continue;
            };
            let ran = schedstat
                .split_whitespace()
                .next()
                .ok_or("empty schedstat")?;
            nanos += ran.parse::<u64>()?;
        }
        Ok(Duration::from_nanos(nanos))
    }

    /// Context switches of the child's threads so far: voluntary (a
    /// thread waited) and involuntary (the kernel preempted it), summed
    /// over `/proc/<pid>/task/*/status`.
    pub(crate) fn switches(&self) -> Result<Switches, BoxError> {
        let mut switches = Switches::default();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                if let Some(count) = line.strip_prefix("voluntary_ctxt_switches:") {
                    switches.voluntary += count.trim().parse::<u64>()?;
                } else if let Some(count) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                    switches.involuntary += count.trim().parse::<u64>()?;
                }
            }
        }
        Ok(switches)
    }

    /// The port the child listens on.
    pub(crate) fn port(&self) -> u16 {
        self.base
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(0)
    }

    /// The child's resident memory, in bytes.
    pub(crate) fn rss(&self) -> Result<u64, BoxError> {
        rss(self.child.id()).ok_or_else(|| "no VmRSS".into())
    }

    /// SIGTERM, then waits up to `wait` for the exit code (`None` when it
    /// did not exit in time or died by a signal).
    pub(crate) fn terminate(&mut self, wait: Duration) -> Result<Option<i32>, BoxError> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !sent.success() {
            return Err("kill -TERM failed".into());
        }
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(None)
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Resident memory of process `pid`, in bytes.
pub(crate) fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib * 1024)
}

/// Context switches of a child's threads (see [`Server::switches`]).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Switches {
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

impl std::ops::Sub for Switches {
    type Output = Switches;

    fn sub(self, earlier: Switches) -> Switches {
        Switches {
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }
}
