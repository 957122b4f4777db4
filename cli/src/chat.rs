//! `yoi chat`: a terminal client of a running server. It creates or
//! attaches to a Worker through the remote client crate (the same routes the
//! browser uses) and prints replies as they stream in.
//!
//! Lines are read in the terminal's own line mode, so editing is the
//! terminal's (Backspace, Ctrl-U, Ctrl-W). Each line is one input, queued
//! behind a running turn. Ctrl-C cancels the running turn, or quits when
//! none runs; Ctrl-D quits.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, BufReader};
use yoi_runtime_api::dto::{BusyPolicy, CreateWorkerRequest, InputRequest, WorkerEventKind};
use yoi_runtime_api::{
    ErrorCode, EventCursor, EventStream, InputId, ProfileName, Runtime, RuntimeError, RuntimeId,
    WorkerId,
};
use yoi_runtime_remote::RemoteRuntime;

/// `yoi chat`'s flags.
#[derive(clap::Args)]
pub struct ChatArgs {
    /// The server's address.
    #[arg(long, env = "YOI_URL", default_value = "http://127.0.0.1:7840")]
    pub url: String,
    /// The Runtime to chat on.
    #[arg(long, default_value = "backend-internal")]
    pub runtime: RuntimeId,
    /// An existing Worker to attach to; without it a new one is created.
    #[arg(long, conflicts_with = "profile")]
    pub worker: Option<WorkerId>,
    /// The profile of the new Worker (default: the Runtime's default).
    #[arg(long)]
    pub profile: Option<ProfileName>,
    /// File holding the server's token (or YOI_TOKEN).
    #[arg(long, env = "YOI_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl std::fmt::Debug for ChatArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may name an internal host; the token file is a path.
        f.debug_struct("ChatArgs")
            .field("runtime", &self.runtime)
            .field("worker", &self.worker)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Why `yoi chat` stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The server answered with an error, or could not be reached.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The token file or the terminal failed.
    #[error("{0}")]
    Io(String),
    /// Nothing answered at `--url`, or the Runtime there is down (the two
    /// look alike from here). The address is the user's own, so it is
    /// named.
    #[error(
        "{source}; check that a yoi server runs at {url} (--url or YOI_URL) and that this \
         Runtime is up"
    )]
    Unavailable {
        /// What the first call answered.
        source: RuntimeError,
        /// The address given.
        url: String,
    },
    /// The server wants its token.
    #[error("{0}; give the server's token with --token-file FILE or YOI_TOKEN")]
    Unauthorized(RuntimeError),
}

/// `url` without a user name and password in it, for messages.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The first call's error, with what to do about the two a user meets
/// first: the wrong address and a missing token.
fn first_contact(err: RuntimeError, url: &str) -> ChatError {
    if yoi_runtime_remote::refused_our_token(&err) {
        return ChatError::Unauthorized(err);
    }
    match err.code() {
        ErrorCode::RuntimeUnavailable => ChatError::Unavailable {
            source: err,
            url: without_credentials(url),
        },
        _ => ChatError::Runtime(err),
    }
}

fn token(args: &ChatArgs) -> Result<Option<SecretString>, ChatError> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|err| ChatError::Io(format!("cannot read the token file: {err}")))?;
        return Ok(Some(SecretString::from(text.trim().to_owned())));
    }
    Ok(std::env::var("YOI_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(SecretString::from))
}

/// Runs the chat until Ctrl-D, or Ctrl-C with no turn running.
pub async fn run(args: ChatArgs) -> Result<(), ChatError> {
    let remote = RemoteRuntime::connect(&args.url, args.runtime.clone(), token(&args)?)
        .await
        .map_err(|err| first_contact(err, &args.url))?;
    let detail = match &args.worker {
        Some(worker) => remote.worker(worker).await?,
        None => {
            let request = CreateWorkerRequest {
                profile: args.profile.clone(),
                ..Default::default()
            };
            remote.create_worker(request).await?
        }
    };
    let worker = detail.summary.worker_id.clone();
    eprintln!(
        "Worker {worker} ({}, profile {}). Type a message and press Enter; \
         Ctrl-C cancels a reply, Ctrl-D quits.",
        detail.summary.display_name, detail.summary.profile.name
    );
    let remote = Arc::new(remote);
    let running = Arc::new(AtomicBool::new(false));
    // Inputs sent and not yet answered, so that Ctrl-D (or the end of piped
    // input) waits for their replies.
    let outstanding = Arc::new(Outstanding::default());
    let after = detail.summary.last_cursor.clone();
    let events = remote.subscribe(&worker, after.clone()).await?;
    let printer = tokio::spawn(print_replies(
        Replies {
            remote: remote.clone(),
            worker: worker.clone(),
            running: running.clone(),
            outstanding: outstanding.clone(),
        },
        events,
        after,
    ));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let line = line.map_err(|err| ChatError::Io(format!("cannot read the terminal: {err}")))?;
                let Some(line) = line else {
                    // Ctrl-D: wait for the replies still coming (Ctrl-C stops waiting).
                    tokio::select! {
                        () = outstanding.none_left() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                    break;
                };
                if line.trim().is_empty() {
                    continue;
                }
                let mut request = InputRequest::new(line);
                request.on_busy = BusyPolicy::Queue;
                match remote.send_input(&worker, request).await {
                    Ok(acceptance) => outstanding.sent(acceptance.input_id),
                    Err(err) => eprintln!("[not sent: {}]", err.public_message()),
                }
            }
            signal = tokio::signal::ctrl_c() => {
                signal.map_err(|err| ChatError::Io(format!("cannot wait for Ctrl-C: {err}")))?;
                if !running.load(Ordering::Acquire) {
                    break;
                }
                if let Err(err) = remote.cancel(&worker).await {
                    eprintln!("[not cancelled: {}]", err.public_message());
                }
            }
        }
    }
    printer.abort();
    eprintln!("Bye. The Worker stays: yoi chat --worker {worker}");
    Ok(())
}

/// What the printer of replies needs.
struct Replies {
    remote: Arc<RemoteRuntime>,
    worker: WorkerId,
    running: Arc<AtomicBool>,
    outstanding: Arc<Outstanding>,
}

/// How long to wait before opening the stream of replies again.
const REOPEN_AFTER: Duration = Duration::from_secs(2);

/// Prints the Worker's events, `events` first (opened after `after`),
/// until the stream ends after `worker_stopped`. A stream that breaks (the
/// server away for longer than the client's own reconnection) is opened
/// again every [`REOPEN_AFTER`] from the last event printed; if the server
/// no longer has that event (a restart lost it), from the Worker's newest,
/// saying that replies were missed.
async fn print_replies(replies: Replies, mut events: EventStream, mut after: Option<EventCursor>) {
    let Replies {
        remote,
        worker,
        running,
        outstanding,
    } = replies;
    loop {
        let mut broke = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    after = Some(event.cursor.clone());
                    if print_event(&event.kind, &running)
                        && let Some(input_id) = event.kind.input_id()
                    {
                        outstanding.answered(input_id.clone());
                    }
                }
                Err(err) => {
                    broke = Some(err);
                    break;
                }
            }
        }
        let Some(err) = broke else {
            // Ended after `worker_stopped`: no more replies can come.
            outstanding.clear();
            return;
        };
        eprintln!(
            "[the stream of replies broke ({}); reconnecting]",
            err.public_message()
        );
        events = loop {
            tokio::time::sleep(REOPEN_AFTER).await;
            match remote.subscribe(&worker, after.clone()).await {
                Ok(events) => break events,
                Err(err) if err.code() == ErrorCode::CursorExpired => {
                    if let Ok(detail) = remote.worker(&worker).await {
                        eprintln!("[replies were missed while the server was away]");
                        outstanding.clear();
                        after = detail.summary.last_cursor;
                    }
                }
                Err(err) if err.code() == ErrorCode::UnknownWorker => {
                    eprintln!("[{}]", err.public_message());
                    outstanding.clear();
                    return;
                }
                Err(_) => {}
            }
        };
        eprintln!("[reconnected]");
    }
}

/// Inputs sent whose turns have not ended. A turn can end before its
/// acceptance comes back, so early ends are kept until it does.
#[derive(Default)]
struct Outstanding {
    inputs: std::sync::Mutex<Inputs>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Inputs {
    pending: HashSet<InputId>,
    ended_early: HashSet<InputId>,
}

impl Outstanding {
    fn sent(&self, input_id: InputId) {
        let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        if !inputs.ended_early.remove(&input_id) {
            inputs.pending.insert(input_id);
        }
    }

    fn answered(&self, input_id: InputId) {
        {
            let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
            if !inputs.pending.remove(&input_id) {
                // Turns of inputs sent elsewhere end here too; keep few.
                if inputs.ended_early.len() >= 1024 {
                    inputs.ended_early.clear();
                }
                inputs.ended_early.insert(input_id);
            }
        }
        self.changed.notify_waiters();
    }

    fn clear(&self) {
        self.inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending
            .clear();
        self.changed.notify_waiters();
    }

    /// Resolves once no sent input waits for its turn to end.
    async fn none_left(&self) {
        loop {
            // Armed before the check, so a change in between is not missed.
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self
                .inputs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending
                .is_empty()
            {
                return;
            }
            changed.await;
        }
    }
}

/// Prints what a person wants to see of one event; true when it ends a
/// turn.
fn print_event(kind: &WorkerEventKind, running: &AtomicBool) -> bool {
    let ends_turn = matches!(
        kind,
        WorkerEventKind::TurnCompleted { .. }
            | WorkerEventKind::TurnCancelled { .. }
            | WorkerEventKind::TurnFailed { .. }
    );
    let mut out = std::io::stdout().lock();
    // A closed stdout ends nothing here; the input loop notices first.
    let _ = match kind {
        WorkerEventKind::TurnStarted { .. } => {
            running.store(true, Ordering::Release);
            Ok(())
        }
        WorkerEventKind::TextDelta { delta, .. } => write!(out, "{delta}"),
        WorkerEventKind::TurnCompleted { .. } => {
            running.store(false, Ordering::Release);
            writeln!(out)
        }
        WorkerEventKind::TurnCancelled { .. } => {
            running.store(false, Ordering::Release);
            writeln!(out, "\n[cancelled]")
        }
        WorkerEventKind::TurnFailed { reason, .. } => {
            running.store(false, Ordering::Release);
            writeln!(out, "\n[the turn failed: {}]", reason.message)
        }
        WorkerEventKind::WorkerStopped {} => writeln!(out, "[the Worker was stopped]"),
        _ => Ok(()),
    };
    let _ = out.flush();
    ends_turn
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn messages_name_the_address_without_credentials() {
        assert_eq!(
            without_credentials("http://me:secret@host:7840/base?x=1"),
            "http://host:7840/base?x=1"
        );
        assert_eq!(
            without_credentials("http://host:7840/a@b"),
            "http://host:7840/a@b"
        );
        assert_eq!(without_credentials("not a url"), "not a url");
    }
}
