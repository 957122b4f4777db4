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

mod follow;
mod share;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use yoi_runtime_api::dto::{
    CreateWorkerRequest, Diagnostic, EventPage, EventQuery, ImplementationKind, InputAcceptance,
    InputRequest, ProfileList, RuntimeState, RuntimeStatus, RuntimeSummary, TranscriptPage,
    TranscriptQuery, UpdateWorkerRequest, WorkerCount, WorkerCounts, WorkerDetail, WorkerFilter,
    WorkerListQuery, WorkerPage,
};
use yoi_runtime_api::dto::{ForkRequest, RollbackRequest};

use self::follow::{Connector, Refused};
use self::share::{Joined, Shares};
use yoi_runtime_api::{
    CONTRACT_VERSION, CONTRACT_VERSION_HEADER, Capabilities, EventCursor, EventStream, InputId,
    Problem, Result, Runtime, RuntimeError, RuntimeId, WorkerId,
};

/// Why a call failed when the connection broke before the answer ended.
const MID_ANSWER: &str = "the connection ended mid-answer";
/// The largest response body read from a peer; larger is an error.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
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

    /// Reads the Runtime's view, refusing a peer that speaks another
    /// contract version.
    async fn handshake(&self) -> Result<RuntimeView> {
        let response = self
            .request(Method::GET, "")
            .timeout(self.deadline)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let version = response
            .headers()
            .get(CONTRACT_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok());
        if version != Some(CONTRACT_VERSION) {
            let found = version.map_or("none".to_owned(), |v| v.to_string());
            return Err(self.unavailable(&format!(
                "it speaks contract version {found}; this client speaks {CONTRACT_VERSION}"
            )));
        }
        let (status, body) = self.read(response).await?;
        if !status.is_success() {
            return Err(self.failure(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|_| self.unavailable("it answered something that is not the expected JSON"))
    }

    fn unreachable(&self, err: &reqwest::Error) -> RuntimeError {
        // reqwest's errors name the URL: none of them is passed on.
        self.unavailable(if err.is_timeout() {
            "it did not answer in time"
        } else {
            "unreachable"
        })
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

    fn unavailable(&self, why: &str) -> RuntimeError {
        RuntimeError::RuntimeUnavailable {
            runtime_id: self.id.clone(),
            message: why.to_owned(),
        }
    }

    /// A request to `/api/runtimes/{id}{path}`.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.authorized(self.http.request(method, self.runtime_url(path)))
    }

    /// The URL of `/api/runtimes/{id}{path}` (`path` may end in a query).
    fn runtime_url(&self, path: &str) -> Url {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.base.clone();
        url.set_path(&[self.runtime_path.as_str(), path].concat());
        url.set_query(query);
        url
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    fn worker_path(worker_id: &WorkerId, rest: &str) -> String {
        format!("/workers/{worker_id}{rest}")
    }

    /// Sends `request` under the deadline; reads a bounded body. The flag
    /// of an error says whether repeating the request could help: the peer
    /// was not reached, or the connection broke mid-answer.
    async fn send_once(
        &self,
        request: RequestBuilder,
    ) -> std::result::Result<(StatusCode, Vec<u8>), (RuntimeError, bool)> {
        let response = request
            .timeout(self.deadline)
            .send()
            .await
            .map_err(|e| (self.unreachable(&e), !e.is_timeout()))?;
        self.read(response).await.map_err(|err| {
            let broken = matches!(&err, RuntimeError::RuntimeUnavailable { message, .. }
                if message == MID_ANSWER);
            (err, broken)
        })
    }

    /// [`Self::send_once`], retried with backoff when the request is safe to
    /// repeat (`retry`) and the peer could not be reached or the answer was
    /// cut short. An answer, even an error, is never retried.
    async fn send(&self, request: RequestBuilder, retry: bool) -> Result<(StatusCode, Vec<u8>)> {
        let mut attempt = 0;
        loop {
            let Some(this) = request.try_clone() else {
                return self.send_once(request).await.map_err(|(err, _)| err);
            };
            match self.send_once(this).await {
                Err((_, true)) if retry && attempt < RETRIES.len() => {
                    tokio_sleep(RETRIES[attempt]).await;
                    attempt += 1;
                }
                other => return other.map_err(|(err, _)| err),
            }
        }
    }

    /// Reads a response's body, at most [`MAX_BODY_BYTES`].
    async fn read(&self, mut response: reqwest::Response) -> Result<(StatusCode, Vec<u8>)> {
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| self.unavailable(MID_ANSWER))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(self.unavailable("it answered more than 16 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    /// The contract error a failed answer carries, rebuilt exactly.
    /// A peer that throttles this client's address (after wrong tokens
    /// from it) is unavailable to this client's callers: its throttle is
    /// about this client, not about them.
    fn failure(&self, status: StatusCode, body: &[u8]) -> RuntimeError {
        match serde_json::from_slice::<Problem>(body).map(Problem::into_error) {
            Ok(RuntimeError::TooManyAttempts { retry_after_secs }) => self.unavailable(&format!(
                "it refuses our token for {retry_after_secs} s after too many wrong tokens from our address"
            )),
            Ok(error) => error,
            Err(_) => self.unavailable(&format!("it answered HTTP {}", status.as_u16())),
        }
    }

    /// A read, or another request safe to repeat.
    async fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        self.call_once_or_retried(request, true).await
    }

    async fn call_once_or_retried<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        retry: bool,
    ) -> Result<T> {
        let (status, body) = self.send(request, retry).await?;
        if !status.is_success() {
            return Err(self.failure(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|_| self.unavailable("it answered something that is not the expected JSON"))
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        body: &impl serde::Serialize,
        retry: bool,
    ) -> Result<T> {
        let body = serde_json::to_vec(body)
            .map_err(|e| RuntimeError::internal("cannot encode a request", e))?;
        let request = request
            .header("content-type", "application/json")
            .body(body);
        self.call_once_or_retried(request, retry).await
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

/// Waits before attempts 2, 3, ... of a request safe to repeat.
const RETRIES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

async fn tokio_sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `?a=b&c=d`, percent-encoded, or nothing.
fn encoded_query(pairs: Vec<(String, String)>) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut out = form_urlencoded::Serializer::new(String::from("?"));
    out.extend_pairs(pairs);
    out.finish()
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
        // A merge patch sets values, so a repeat changes nothing more.
        let path = Self::worker_path(worker_id, "");
        self.call_json(self.request(Method::PATCH, &path), &request, true)
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

#[cfg(test)]
mod tests {
    use super::*;
    use yoi_runtime_api::ErrorCode;

    fn mock() -> RuntimeId {
        RuntimeId::new("mock").unwrap()
    }

    #[test]
    fn calls_go_under_the_base_urls_path_without_its_query() {
        let remote =
            RemoteRuntime::new("http://127.0.0.1:9/prefix/?q=1#top", mock(), None, None).unwrap();
        assert_eq!(
            remote.runtime_url("/workers?limit=5&after=w-1").as_str(),
            "http://127.0.0.1:9/prefix/api/runtimes/mock/workers?limit=5&after=w-1"
        );
        let plain = RemoteRuntime::new("https://host.example:7841", mock(), None, None).unwrap();
        assert_eq!(
            plain.runtime_url("").as_str(),
            "https://host.example:7841/api/runtimes/mock"
        );
    }

    #[test]
    fn a_base_that_is_not_an_http_address_is_refused() {
        for bad in [
            "",
            "127.0.0.1:7841",
            "ftp://host/",
            "http://",
            "unix:/tmp/socket",
        ] {
            let err = RemoteRuntime::new(bad, mock(), None, None).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Internal, "{bad:?}");
        }
    }
}
