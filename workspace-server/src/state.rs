//! What every handler can reach.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderValue;
use secrecy::SecretString;
use tokio::sync::watch;

use crate::forwarded::TrustedProxies;
use crate::frames::FrameCache;
use crate::host::HostPolicy;
use crate::limits::{ConnectionLimits, FailedAuthLimits};
use crate::registry::RuntimeRegistry;
use crate::request_log::RequestLog;
use crate::session::Sessions;
use crate::throttle::AuthThrottle;

/// The default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long the aggregate routes wait for any one Runtime by default.
pub const DEFAULT_AGGREGATE_DEADLINE: Duration = Duration::from_secs(2);

/// Shared state of the HTTP API. Cheap to clone: **one reference count**,
/// since every request clones it a few times and, under concurrency, each
/// count is a cache line the cores pass between them.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// A state's settings, and what it shares with the states derived from it
/// by the `with_` methods.
#[derive(Clone)]
struct Inner {
    shared: Arc<Shared>,
    settings: Settings,
}

#[derive(Clone)]
struct Settings {
    cors_allowed_origins: Arc<[HeaderValue]>,
    aggregate_deadline: Duration,
    host_policy: HostPolicy,
    connection_limits: ConnectionLimits,
    auth_throttle: Arc<AuthThrottle>,
    trusted_proxies: TrustedProxies,
    /// `None`: the line per request is a `tracing` event.
    request_log: Option<&'static dyn RequestLog>,
}

struct Shared {
    registry: RuntimeRegistry,
    token: Option<SecretString>,
    max_body_bytes: usize,
    shutdown: watch::Sender<bool>,
    sessions: Sessions,
    frames: Arc<FrameCache>,
    /// The OpenAPI document, serialized once by the first [`crate::app`].
    openapi: OnceLock<Bytes>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("runtimes", &self.inner.shared.registry.entries().len())
            .field(
                "token",
                &self.inner.shared.token.as_ref().map(|_| "<redacted>"),
            )
            .field("max_body_bytes", &self.inner.shared.max_body_bytes)
            .field(
                "cors_allowed_origins",
                &self.inner.settings.cors_allowed_origins,
            )
            .field(
                "aggregate_deadline",
                &self.inner.settings.aggregate_deadline,
            )
            .field("host_policy", &self.inner.settings.host_policy)
            .field("connection_limits", &self.inner.settings.connection_limits)
            .field("auth_throttle", &self.inner.settings.auth_throttle.limits())
            .field("trusted_proxies", &self.inner.settings.trusted_proxies)
            .field(
                "request_log",
                &self.inner.settings.request_log.map(|_| "<embedder's>"),
            )
            .field("sessions", &self.inner.shared.sessions)
            .finish()
    }
}

impl AppState {
    /// State over `registry`, with an optional bearer token for `/api`.
    pub fn new(
        registry: RuntimeRegistry,
        token: Option<SecretString>,
        max_body_bytes: usize,
    ) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    registry,
                    token,
                    max_body_bytes,
                    shutdown,
                    sessions: Sessions::default(),
                    frames: Arc::default(),
                    openapi: OnceLock::new(),
                }),
                settings: Settings {
                    cors_allowed_origins: Arc::new([]),
                    aggregate_deadline: DEFAULT_AGGREGATE_DEADLINE,
                    host_policy: HostPolicy::default(),
                    connection_limits: ConnectionLimits::default(),
                    auth_throttle: Arc::new(AuthThrottle::new(FailedAuthLimits::default())),
                    trusted_proxies: TrustedProxies::default(),
                    request_log: None,
                },
            }),
        }
    }

    /// How many wrong tokens a client address may send (a fresh budget
    /// for every address).
    pub fn with_failed_auth_limits(mut self, limits: FailedAuthLimits) -> Self {
        Arc::make_mut(&mut self.inner).settings.auth_throttle = Arc::new(AuthThrottle::new(limits));
        self
    }

    /// The reverse proxies whose `X-Forwarded-For` (or `Forwarded`) names
    /// the client a request counts for in the wrong-token throttle. None
    /// by default: every connection is its own client.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        Arc::make_mut(&mut self.inner).settings.trusted_proxies = proxies;
        self
    }

    /// Writes the line per answered request with `log` instead of a
    /// `tracing` event (see [`crate::request_log`]). `'static`: one log
    /// serves the process, and the request layer holds it without a
    /// reference count.
    pub fn with_request_log(mut self, log: &'static dyn RequestLog) -> Self {
        Arc::make_mut(&mut self.inner).settings.request_log = Some(log);
        self
    }

    /// Where the line per answered request goes; `None` for a `tracing`
    /// event.
    pub(crate) fn request_log(&self) -> Option<&'static dyn RequestLog> {
        self.inner.settings.request_log
    }

    /// The reverse proxies whose forwarding headers are believed.
    pub(crate) fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.settings.trusted_proxies
    }

    /// The wrong-token budgets per client address.
    pub(crate) fn auth_throttle(&self) -> &AuthThrottle {
        &self.inner.settings.auth_throttle
    }

    /// The bounds [`crate::serve`] applies to connections.
    pub fn with_connection_limits(mut self, limits: ConnectionLimits) -> Self {
        Arc::make_mut(&mut self.inner).settings.connection_limits = limits;
        self
    }

    /// See [`AppState::with_connection_limits`].
    pub fn connection_limits(&self) -> ConnectionLimits {
        self.inner.settings.connection_limits
    }

    /// Which `Host` names are answered. [`crate::serve`] binds the policy to
    /// its listener's address; see [`HostPolicy`].
    pub fn with_host_policy(mut self, policy: HostPolicy) -> Self {
        Arc::make_mut(&mut self.inner).settings.host_policy = policy;
        self
    }

    /// See [`AppState::with_host_policy`].
    pub fn host_policy(&self) -> &HostPolicy {
        &self.inner.settings.host_policy
    }

    /// Encoded event frames shared between the followers of a stream.
    pub(crate) fn frames(&self) -> Arc<FrameCache> {
        self.inner.shared.frames.clone()
    }

    /// Keeps the OpenAPI document `build` makes, unless one is kept.
    pub(crate) fn set_openapi_document(&self, build: impl FnOnce() -> Bytes) {
        self.inner.shared.openapi.get_or_init(build);
    }

    /// The OpenAPI document (empty before [`crate::app`] made one).
    pub(crate) fn openapi_document(&self) -> Bytes {
        self.inner.shared.openapi.get().cloned().unwrap_or_default()
    }

    /// The browser sessions signed in with the token.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.shared.sessions
    }

    /// Allows these browser origins cross-origin access (CORS). Without any,
    /// the server sends no CORS headers, so only same-origin pages can call it.
    pub fn with_cors_allowed_origins(mut self, origins: Vec<HeaderValue>) -> Self {
        Arc::make_mut(&mut self.inner).settings.cors_allowed_origins = origins.into();
        self
    }

    /// How long the aggregate routes (`/api/runtimes`, `/api/workers`,
    /// `/api/diagnostics`) wait for any one Runtime.
    pub fn with_aggregate_deadline(mut self, deadline: Duration) -> Self {
        Arc::make_mut(&mut self.inner).settings.aggregate_deadline = deadline;
        self
    }

    /// See [`AppState::with_aggregate_deadline`].
    pub fn aggregate_deadline(&self) -> Duration {
        self.inner.settings.aggregate_deadline
    }

    /// The origins allowed cross-origin access.
    pub fn cors_allowed_origins(&self) -> &[HeaderValue] {
        &self.inner.settings.cors_allowed_origins
    }

    /// The Runtimes.
    pub fn registry(&self) -> &RuntimeRegistry {
        &self.inner.shared.registry
    }

    /// The bearer token `/api` requires, if any.
    pub fn token(&self) -> Option<&SecretString> {
        self.inner.shared.token.as_ref()
    }

    /// The request body limit.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.shared.max_body_bytes
    }

    /// Tells long-lived responses (SSE, long polls) to finish.
    pub fn begin_shutdown(&self) {
        self.inner.shared.shutdown.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shared.shutdown.borrow()
    }

    /// Resolves once shutdown has begun.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut rx = self.inner.shared.shutdown.subscribe();
        async move {
            // An error means the sender is gone, which is a shutdown too.
            let _ = rx.wait_for(|down| *down).await;
        }
    }
}
