//! [`RemoteRuntime`]: a Runtime on another host, reached over HTTP.
//!
//! It speaks the workspace server's API (served for one Runtime by
//! `yoi-runtime-server`): every contract call is one request, errors come
//! back as the contract's problem documents and are rebuilt exactly, and
//! event streams are Server-Sent Events. **The peer's address and token
//! never appear in an error, a diagnostic or `Debug`**: a peer that cannot
//! be reached is `runtime_unavailable` ("unreachable").
//!
//! Built so far: every contract method, a deadline per call, bounded
//! response bodies. The peer must send the contract version this
//! client speaks (`yoi-contract-version`), or it is refused at connect.
//! Reads, cancel, stop and inputs are retried with
//! backoff when the peer could not be reached (an input always carries a
//! `client_input_id`, generated when the caller gave none, so a retry is
//! never recorded twice); create and delete are not. Subscriptions reconnect on their own
//! and resume after the last event they handed out (module `follow`), and
//! the subscribers of one Worker share one upstream stream (module
//! `share`). A client can be made without contacting the peer
//! ([`RemoteRuntime::new`]), for a peer that is down at start.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod calls;
mod follow;
mod reach;
mod share;

pub use calls::refused_our_token;

use async_trait::async_trait;
use reqwest::{Method, Url};
use secrecy::SecretString;
use serde::Deserialize;
use yoi_runtime_api::dto::{
    CreateWorkerRequest, Diagnostic, EventPage, EventQuery, ImplementationKind, InputAcceptance,
    InputRequest, ProfileList, RuntimeState, RuntimeStatus, RuntimeSummary, TranscriptPage,
    TranscriptQuery, UpdateWorkerRequest, WorkerCount, WorkerCounts, WorkerDetail, WorkerFilter,
    WorkerListQuery, WorkerPage,
};
use yoi_runtime_api::dto::{ForkRequest, RollbackRequest};

use self::calls::{encoded_query, query};
use self::follow::{Connector, Refused};
use self::share::{Joined, Shares};
use yoi_runtime_api::{
    Capabilities, EventCursor, EventStream, InputId, Result, Runtime, RuntimeError, RuntimeId,
    WorkerId,
};

/// How long one call may take.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// A Runtime served by another process.
pub struct RemoteRuntime {
    id: RuntimeId,
    /// The peer's address, parsed once: each call sets only its path and
    /// query on a copy.
    base: Url,
    /// The path of this Runtime's routes under `base`:
    /// `{base's path}/api/runtimes/{id}`.
    runtime_path: String,
    token: Option<SecretString>,
    http: reqwest::Client,
    /// Learned at the first successful handshake; never changes after.
    summary: OnceLock<RuntimeSummary>,
    /// Upstream Worker streams shared by their subscribers.
    shares: Shares,
    /// The name the workspace configured, shown instead of the peer's.
    display_name: Option<String>,
    deadline: Duration,
    /// Whether the peer could be reached lately.
    reach: reach::Reach,
}

impl fmt::Debug for RemoteRuntime {
    /// Never shows the peer's address or token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteRuntime")
            .field("id", &self.id)
            .field("capabilities", &self.capabilities())
            .finish_non_exhaustive()
    }
}

/// `GET /api/runtimes/{id}` as the peer answers it.
#[derive(Deserialize)]
struct RuntimeView {
    runtime_id: RuntimeId,
    display_name: String,
    status: StatusView,
    capabilities: Capabilities,
}

#[derive(Deserialize)]
struct StatusView {
    state: RuntimeState,
    workers: WorkerCounts,
}

/// `GET /api/diagnostics` as the peer answers it.
#[derive(Deserialize)]
struct DiagnosticsView {
    items: Vec<SourceDiagnostics>,
}

#[derive(Deserialize)]
struct SourceDiagnostics {
    runtime_id: RuntimeId,
    diagnostics: Vec<Diagnostic>,
}

impl RemoteRuntime {
    /// A client of the Runtime `runtime_id` served at `base_url` (for
    /// example `http://127.0.0.2:7841`), without contacting it yet: its
    /// summary and capabilities are read at the first [`Runtime::summary`]
    /// call that reaches it (register it with the registry's
    /// `register_unavailable`, so a peer that is down at start joins when
    /// it comes up). Until then it has no capabilities.
    pub fn new(
        base_url: &str,
        runtime_id: RuntimeId,
        token: Option<SecretString>,
        display_name: Option<String>,
    ) -> Result<Self> {
        let mut base = Url::parse(base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                RuntimeError::internal("the runtime's url is not an http(s) address", "invalid url")
            })?;
        base.set_query(None);
        base.set_fragment(None);
        let runtime_path = format!(
            "{}/api/runtimes/{runtime_id}",
            base.path().trim_end_matches('/')
        );
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A runtime host does not redirect; one that does is not
            // followed (it answers an error this client reports).
            .redirect(reqwest::redirect::Policy::none())
            // Retries are this client's own (`send`), only where safe;
            // reqwest's would also copy every request in case of one.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()
            .map_err(|e| RuntimeError::internal("cannot build an HTTP client", e))?;
        Ok(Self {
            display_name,
            id: runtime_id,
            base,
            runtime_path,
            token,
            http,
            summary: OnceLock::new(),
            shares: Shares::default(),
            deadline: DEFAULT_DEADLINE,
            reach: reach::Reach::default(),
        })
    }

    /// A client that has read the peer's summary: [`RemoteRuntime::new`],
    /// then the handshake, whose failure is returned.
    pub async fn connect(
        base_url: &str,
        runtime_id: RuntimeId,
        token: Option<SecretString>,
    ) -> Result<Self> {
        let remote = Self::new(base_url, runtime_id, token, None)?;
        remote.summary().await?;
        Ok(remote)
    }

    /// Upstream Worker subscriptions this client has opened (shared ones
    /// count once), for monitoring and tests.
    pub fn upstream_streams_opened(&self) -> u64 {
        self.shares.opened.load(Ordering::Relaxed)
    }

    /// The summary shown before the peer has answered: no capabilities.
    pub fn placeholder(&self) -> RuntimeSummary {
        RuntimeSummary {
            runtime_id: self.id.clone(),
            display_name: self
                .display_name
                .clone()
                .unwrap_or_else(|| self.id.to_string()),
            implementation: ImplementationKind::Remote,
            capabilities: Capabilities::default(),
        }
    }

    /// Sets how long one call may take (default 30 s).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// A fresh `client_input_id` for an input the caller sent without one.
    fn client_input_id(&self) -> InputId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        InputId::new(format!("rc-{nanos:x}-{:x}-{n:x}", std::process::id()))
            .unwrap_or_else(|_| unreachable!("hex digits and dashes are a valid id"))
    }

    /// A stream at `path` (under the Runtime's URL) after `after`, that
    /// reconnects on its own.
    async fn stream(
        &self,
        path: &str,
        after: Option<EventCursor>,
        ends_on_stop: bool,
    ) -> Result<EventStream> {
        let connector = Connector {
            http: self.http.clone(),
            url: self.runtime_url(path).into(),
            token: self.token.clone(),
            runtime_id: self.id.clone(),
            ends_on_stop,
        };
        // The first connection's errors (an expired cursor, an unknown
        // Worker, a peer that is down) are the call's.
        let first = match connector.open(after.as_ref()).await {
            Ok(first) => first,
            // A stopped Worker with nothing after the cursor: an empty
            // stream, as a local subscription would be.
            Err(Refused::Closed) => return Ok(Box::pin(futures_util::stream::empty())),
            Err(Refused::Answer(err)) => return Err(err),
            Err(Refused::Unreachable) => return Err(self.unavailable("unreachable")),
        };
        Ok(follow::follow(connector, first, after))
    }
}

#[async_trait]
impl Runtime for RemoteRuntime {
    fn id(&self) -> &RuntimeId {
        &self.id
    }

    /// None until the peer has answered a handshake; then the peer's, for
    /// good (the one exception to "constant" this Runtime makes, and the
    /// registry reads them only once the peer has answered).
    fn capabilities(&self) -> Capabilities {
        self.summary
            .get()
            .map_or_else(Capabilities::default, |s| s.capabilities)
    }

    async fn summary(&self) -> Result<RuntimeSummary> {
        if let Some(summary) = self.summary.get() {
            return Ok(summary.clone());
        }
        let view = self.handshake().await?;
        if view.runtime_id != self.id {
            return Err(self.unavailable("it serves another runtime id"));
        }
        let summary = RuntimeSummary {
            runtime_id: self.id.clone(),
            display_name: self.display_name.clone().unwrap_or(view.display_name),
            implementation: ImplementationKind::Remote,
            capabilities: view.capabilities,
        };
        Ok(self.summary.get_or_init(|| summary).clone())
    }

    async fn status(&self) -> Result<RuntimeStatus> {
        let view: RuntimeView = self.call(self.request(Method::GET, "")).await?;
        Ok(RuntimeStatus {
            runtime_id: self.id.clone(),
            state: view.status.state,
            workers: view.status.workers,
        })
    }

    async fn list_workers(&self, q: WorkerListQuery) -> Result<WorkerPage> {
        let path = format!("/workers{}", encoded_query(q.to_query_pairs()));
        self.call(self.request(Method::GET, &path)).await
    }

    async fn count_workers(&self, filter: WorkerFilter) -> Result<WorkerCount> {
        let path = format!("/workers/count{}", encoded_query(filter.to_query_pairs()));
        self.call(self.request(Method::GET, &path)).await
    }

    async fn worker(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        self.call(self.request(Method::GET, &Self::worker_path(worker_id, "")))
            .await
    }

    async fn create_worker(&self, request: CreateWorkerRequest) -> Result<WorkerDetail> {
        // Not safe to repeat: a second create would make a second Worker.
        self.call_json(self.request(Method::POST, "/workers"), &request, false)
            .await
    }

    async fn send_input(
        &self,
        worker_id: &WorkerId,
        request: InputRequest,
    ) -> Result<InputAcceptance> {
        // Always with a client_input_id, so a retried input is recorded
        // once: the peer answers a repeat with the first acceptance.
        let mut request = request;
        if request.client_input_id.is_none() {
            request.client_input_id = Some(self.client_input_id());
        }
        let path = Self::worker_path(worker_id, "/input");
        self.call_json(self.request(Method::POST, &path), &request, true)
            .await
    }

    async fn cancel(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        self.call(self.request(Method::POST, &Self::worker_path(worker_id, "/cancel")))
            .await
    }

    async fn update_worker(
        &self,
        worker_id: &WorkerId,
        request: UpdateWorkerRequest,
    ) -> Result<WorkerDetail> {
        // Not repeated: a repeat of a rename that went through could undo
        // a rename another client made in between.
        let path = Self::worker_path(worker_id, "");
        self.call_json(self.request(Method::PATCH, &path), &request, false)
            .await
    }

    async fn rollback(
        &self,
        worker_id: &WorkerId,
        request: RollbackRequest,
    ) -> Result<WorkerDetail> {
        // Not repeated: a second rollback would take back more turns.
        let path = Self::worker_path(worker_id, "/rollback");
        self.call_json(self.request(Method::POST, &path), &request, false)
            .await
    }

    async fn fork_worker(
        &self,
        worker_id: &WorkerId,
        request: ForkRequest,
    ) -> Result<WorkerDetail> {
        // Not repeated: a second fork would make a second Worker.
        let path = Self::worker_path(worker_id, "/fork");
        self.call_json(self.request(Method::POST, &path), &request, false)
            .await
    }

    async fn stop(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        self.call(self.request(Method::POST, &Self::worker_path(worker_id, "/stop")))
            .await
    }

    async fn delete_worker(&self, worker_id: &WorkerId) -> Result<()> {
        let request = self.request(Method::DELETE, &Self::worker_path(worker_id, ""));
        // Not repeated: a repeat of a delete that went through would say
        // unknown_worker.
        let (status, body) = self.send(request, false).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(self.failure(status, &body))
        }
    }

    async fn transcript(&self, worker_id: &WorkerId, q: TranscriptQuery) -> Result<TranscriptPage> {
        let rest = format!(
            "/transcript{}",
            query(&[
                ("start", q.start.map(|s| s.to_string())),
                ("limit", q.limit.map(|l| l.to_string())),
            ])
        );
        self.call(self.request(Method::GET, &Self::worker_path(worker_id, &rest)))
            .await
    }

    async fn events(&self, worker_id: &WorkerId, q: EventQuery) -> Result<EventPage> {
        let rest = format!(
            "/events{}",
            query(&[
                ("after", q.after.map(|a| a.to_string())),
                ("limit", q.limit.map(|l| l.to_string())),
            ])
        );
        self.call(self.request(Method::GET, &Self::worker_path(worker_id, &rest)))
            .await
    }

    async fn subscribe(
        &self,
        worker_id: &WorkerId,
        after: Option<EventCursor>,
    ) -> Result<EventStream> {
        // Many subscribers of one Worker share one upstream stream.
        let path = Self::worker_path(worker_id, "/events/stream");
        match self.shares.join(worker_id, after.as_ref()) {
            Joined::Stream(stream) => Ok(stream),
            Joined::Elsewhere => {
                self.shares.opened.fetch_add(1, Ordering::Relaxed);
                self.stream(&path, after, true).await
            }
            Joined::NoShare => {
                let upstream = self.stream(&path, after.clone(), true).await?;
                Ok(self
                    .shares
                    .start(self.id.clone(), worker_id.clone(), after, upstream))
            }
        }
    }

    async fn subscribe_runtime(&self, after: Option<EventCursor>) -> Result<EventStream> {
        self.stream("/events/stream", after, false).await
    }

    async fn profiles(&self) -> Result<ProfileList> {
        self.call(self.request(Method::GET, "/profiles")).await
    }

    async fn diagnostics(&self) -> Result<Vec<Diagnostic>> {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/api/diagnostics",
            self.base.path().trim_end_matches('/')
        ));
        url.set_query(None);
        let view: DiagnosticsView = self.call(self.authorized(self.http.get(url))).await?;
        Ok(view
            .items
            .into_iter()
            .find(|item| item.runtime_id == self.id)
            .map(|item| item.diagnostics)
            .unwrap_or_default())
    }
}
