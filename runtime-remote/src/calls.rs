//! Calls to the peer: URLs, the bearer token, the deadline, retries
//! where safe, bounded answers, and errors rebuilt from problem documents.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use yoi_runtime_api::{
    CONTRACT_VERSION, CONTRACT_VERSION_HEADER, Problem, Result, RuntimeError, RuntimeId, WorkerId,
};

use crate::reach::Pass;
use crate::{RemoteRuntime, RuntimeView};

/// Why a call failed when the connection broke before the answer ended.
pub(crate) const MID_ANSWER: &str = "the connection ended mid-answer";

/// The largest response body read from a peer; larger is an error.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How far a request got before it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// The peer refused the connection (or it failed otherwise): worth
    /// another try soon.
    Unreached,
    /// No connection within the connect timeout: not tried again at once.
    ConnectTimeout,
    /// The connection broke before the answer ended.
    Broken,
    /// Anything else: the call's deadline, or an answer that is itself the
    /// error.
    Final,
}

/// Waits before attempts 2, 3, ... of a request safe to repeat.
pub(crate) const RETRIES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

pub(crate) async fn tokio_sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

pub(crate) fn query(pairs: &[(&str, Option<String>)]) -> String {
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
pub(crate) fn encoded_query(pairs: Vec<(String, String)>) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut out = form_urlencoded::Serializer::new(String::from("?"));
    out.extend_pairs(pairs);
    out.finish()
}

impl RemoteRuntime {
    /// Reads the Runtime's view, refusing a peer that speaks another
    /// contract version.
    pub(crate) async fn handshake(&self) -> Result<RuntimeView> {
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

    pub(crate) fn unreachable(&self, err: &reqwest::Error) -> RuntimeError {
        // reqwest's errors name the URL: none of them is passed on.
        self.unavailable(if err.is_timeout() {
            "it did not answer in time"
        } else {
            "unreachable"
        })
    }

    pub(crate) fn unavailable(&self, why: &str) -> RuntimeError {
        RuntimeError::RuntimeUnavailable {
            runtime_id: self.id.clone(),
            message: why.to_owned(),
        }
    }

    /// A request to `/api/runtimes/{id}{path}`.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.authorized(self.http.request(method, self.runtime_url(path)))
    }

    /// The URL of `/api/runtimes/{id}{path}` (`path` may end in a query).
    pub(crate) fn runtime_url(&self, path: &str) -> Url {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.base.clone();
        url.set_path(&[self.runtime_path.as_str(), path].concat());
        url.set_query(query);
        url
    }

    pub(crate) fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    pub(crate) fn worker_path(worker_id: &WorkerId, rest: &str) -> String {
        format!("/workers/{worker_id}{rest}")
    }

    /// Sends `request` under the deadline; reads a bounded body. An error
    /// says how far the request got.
    pub(crate) async fn send_once(
        &self,
        request: RequestBuilder,
    ) -> std::result::Result<(StatusCode, Vec<u8>), (RuntimeError, Failed)> {
        let response = request.timeout(self.deadline).send().await.map_err(|e| {
            let failed = match (e.is_connect(), e.is_timeout()) {
                (true, true) => Failed::ConnectTimeout,
                (true, false) => Failed::Unreached,
                (false, true) => Failed::Final,
                (false, false) => Failed::Broken,
            };
            (self.unreachable(&e), failed)
        })?;
        self.read(response).await.map_err(|err| {
            let broken = matches!(&err, RuntimeError::RuntimeUnavailable { message, .. }
                if message == MID_ANSWER);
            (
                err,
                if broken {
                    Failed::Broken
                } else {
                    Failed::Final
                },
            )
        })
    }

    /// [`Self::send_once`], retried with backoff when the request is safe to
    /// repeat (`retry`) and the peer refused the connection or the answer
    /// was cut short. An answer, even an error, is never retried. While the
    /// peer is known to be unreachable, calls fail at once (`reach.rs`).
    pub(crate) async fn send(
        &self,
        request: RequestBuilder,
        retry: bool,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let trial = match self.reach.pass() {
            Pass::Call => None,
            Pass::Trial(trial) => Some(trial),
            Pass::Refuse => return Err(self.unavailable("unreachable")),
        };
        let mut attempt = 0;
        loop {
            let Some(this) = request.try_clone() else {
                // A body that cannot be copied is sent once.
                let outcome = self.send_once(request).await;
                return self.settle(outcome);
            };
            let outcome = self.send_once(this).await;
            match outcome {
                Err((_, Failed::Unreached | Failed::Broken))
                    if retry && trial.is_none() && attempt < RETRIES.len() =>
                {
                    tokio_sleep(RETRIES[attempt]).await;
                    attempt += 1;
                }
                // A trial ends (it is dropped) once its outcome is noted.
                outcome => return self.settle(outcome),
            }
        }
    }

    /// Tells the peer's reachability how a call ended.
    fn settle(
        &self,
        outcome: std::result::Result<(StatusCode, Vec<u8>), (RuntimeError, Failed)>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        match &outcome {
            Ok(_) => self.reach.reached(),
            Err((_, Failed::Unreached | Failed::ConnectTimeout)) => self.reach.unreachable(),
            Err(_) => {}
        }
        outcome.map_err(|(err, _)| err)
    }

    /// Reads a response's body, at most [`MAX_BODY_BYTES`].
    pub(crate) async fn read(
        &self,
        mut response: reqwest::Response,
    ) -> Result<(StatusCode, Vec<u8>)> {
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

    /// The contract error a failed answer carries, rebuilt exactly (but
    /// see [`link_error`]); an answer that is not a problem document makes
    /// the peer unavailable.
    pub(crate) fn failure(&self, status: StatusCode, body: &[u8]) -> RuntimeError {
        match serde_json::from_slice::<Problem>(body) {
            Ok(problem) => link_error(&self.id, problem.into_error()),
            Err(_) => self.unavailable(&format!("it answered HTTP {}", status.as_u16())),
        }
    }

    /// A read, or another request safe to repeat.
    pub(crate) async fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        self.call_once_or_retried(request, true).await
    }

    pub(crate) async fn call_once_or_retried<T: DeserializeOwned>(
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

    pub(crate) async fn call_json<T: DeserializeOwned>(
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
}

/// How the reason of a `runtime_unavailable` for a refused token begins.
const TOKEN_REFUSED: &str = "it refuses our token";

/// Whether `err` says the peer refused this client's token (a wrong one,
/// or too many wrong ones from this address): for a program that was given
/// the token by a person and can tell them to check it.
pub fn refused_our_token(err: &RuntimeError) -> bool {
    matches!(err, RuntimeError::RuntimeUnavailable { message, .. } if message.starts_with(TOKEN_REFUSED))
}

/// `error` as this client's callers must see it. The errors that are about
/// this client rather than the caller's request (a wrong or throttled
/// token, a host name or route the peer does not answer for, a runtime id
/// it does not serve) make the Runtime unavailable: passed on, a `401`
/// would tell a browser that *its* sign-in failed, and a `404
/// unknown_runtime` that a listed Runtime does not exist. The reason names
/// no address or token, only what an operator must mend.
pub(crate) fn link_error(runtime_id: &RuntimeId, error: RuntimeError) -> RuntimeError {
    let why = match error {
        RuntimeError::TooManyAttempts { retry_after_secs } => format!(
            "{TOKEN_REFUSED} for {retry_after_secs} s after too many wrong tokens from our address"
        ),
        RuntimeError::Unauthorized => TOKEN_REFUSED.into(),
        RuntimeError::UnknownRuntime {
            runtime_id: ref asked,
        } if asked == runtime_id => {
            "the host serves no runtime with this id; the entry's id must be the host's --id".into()
        }
        RuntimeError::HostNotAllowed => "it does not answer for the host name in the entry's url; \
             add the name to the host's allowed_hosts"
            .into(),
        RuntimeError::RouteNotFound
        | RuntimeError::MethodNotAllowed
        | RuntimeError::UnsupportedMediaType
        | RuntimeError::CrossSiteRequest { .. } => "it does not answer like a runtime host".into(),
        other => return other,
    };
    RuntimeError::RuntimeUnavailable {
        runtime_id: runtime_id.clone(),
        message: why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yoi_runtime_api::{ErrorCode, RuntimeId};

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
