//! An OpenAI-compatible chat-completions client with streaming.
//!
//! Speaks `POST {base_url}/chat/completions` with `"stream": true` and reads
//! the Server-Sent Events reply (`data: {json}` chunks ending with
//! `data: [DONE]`), as OpenAI, Ollama, vLLM, llama.cpp server and LM Studio
//! serve it.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;
use yoi_runtime_api::dto::FailureCode;

use super::sse::{SseData, SseError};
use super::{BackendError, ChatRequest, DeltaStream, ModelBackend};

/// The default of [`OpenAiConfig::max_reply_bytes`]: 1 MiB.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 1 << 20;
/// The default of [`OpenAiConfig::max_turn`]: 10 minutes.
pub const DEFAULT_MAX_TURN: Duration = Duration::from_secs(600);
/// The longest line of the event stream read: 1 MiB.
const MAX_LINE_BYTES: usize = 1 << 20;

/// Settings of an [`OpenAiBackend`].
///
/// The API key is a [`SecretString`]: `Debug` prints it redacted, and it is
/// only ever exposed to build the `Authorization` header.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// The API root, for example `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1`. Must be http(s) without credentials.
    pub base_url: String,
    /// The model name sent with every request.
    pub model: String,
    /// The bearer token, if the endpoint wants one.
    pub api_key: Option<SecretString>,
    /// How long to wait for the response headers, and then for each chunk.
    pub timeout: Duration,
    /// Sent as `max_tokens` when set.
    pub max_tokens: Option<u32>,
    /// The longest reply kept, in bytes of text: a longer one ends the turn
    /// `failed` with `reply_too_large`. See [`DEFAULT_MAX_REPLY_BYTES`].
    pub max_reply_bytes: usize,
    /// How long a whole turn may take, however steadily chunks arrive. See
    /// [`DEFAULT_MAX_TURN`].
    pub max_turn: Duration,
}

impl OpenAiConfig {
    /// A configuration for `model` at `base_url` with no key and the
    /// default bounds.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(60),
            max_tokens: None,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            max_turn: DEFAULT_MAX_TURN,
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_tokens", &self.max_tokens)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .field("max_turn", &self.max_turn)
            .finish_non_exhaustive()
    }
}

/// An error in an [`OpenAiConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenAiConfigError {
    /// `base_url` is not an http(s) URL.
    #[error("base_url must be an absolute http or https URL")]
    InvalidBaseUrl,
    /// `base_url` has a user name or password in it.
    #[error("base_url must not contain credentials; put the key in the environment")]
    CredentialsInUrl,
    /// `model` is empty.
    #[error("model must not be empty")]
    EmptyModel,
}

/// The OpenAI-compatible backend.
pub struct OpenAiBackend {
    endpoint: reqwest::Url,
    model: String,
    api_key: Option<SecretString>,
    timeout: Duration,
    max_tokens: Option<u32>,
    max_reply_bytes: usize,
    max_turn: Duration,
    client: reqwest::Client,
}

impl fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OpenAiBackend {
    /// Checks `config` and builds a client for it.
    pub fn new(config: OpenAiConfig) -> Result<Self, OpenAiConfigError> {
        let base = reqwest::Url::parse(config.base_url.trim_end_matches('/'))
            .map_err(|_| OpenAiConfigError::InvalidBaseUrl)?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(OpenAiConfigError::InvalidBaseUrl);
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(OpenAiConfigError::CredentialsInUrl);
        }
        if config.model.trim().is_empty() {
            return Err(OpenAiConfigError::EmptyModel);
        }
        let endpoint = reqwest::Url::parse(&format!("{base}/chat/completions"))
            .map_err(|_| OpenAiConfigError::InvalidBaseUrl)?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .build()
            .map_err(|_| OpenAiConfigError::InvalidBaseUrl)?;
        Ok(Self {
            endpoint,
            model: config.model,
            api_key: config.api_key,
            timeout: config.timeout,
            max_tokens: config.max_tokens,
            max_reply_bytes: config.max_reply_bytes,
            max_turn: config.max_turn,
            client,
        })
    }

    fn body(&self, request: &ChatRequest) -> Vec<u8> {
        let messages: Vec<serde_json::Value> = request
            .messages
            .iter()
            .map(|m| serde_json::json!({ "role": m.role.as_str(), "content": m.content }))
            .collect();
        let mut body =
            serde_json::json!({ "model": self.model, "messages": messages, "stream": true });
        if let Some(max_tokens) = self.max_tokens {
            body["max_tokens"] = max_tokens.into();
        }
        body.to_string().into_bytes()
    }
}

/// The most of a provider's error message passed on, in bytes.
pub(crate) const MAX_PROVIDER_MESSAGE: usize = 500;
/// The most of an error body read to find that message.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// A failed HTTP answer, with the provider's own message when it gave one.
fn status_error(status: StatusCode, provider_message: Option<String>) -> BackendError {
    let code = match status.as_u16() {
        401 | 403 => FailureCode::Unauthorized,
        429 => FailureCode::RateLimited,
        _ => FailureCode::UpstreamError,
    };
    let mut message = format!("the model endpoint answered HTTP {}", status.as_u16());
    if let Some(provider_message) = provider_message {
        message.push_str(": ");
        message.push_str(&provider_message);
    }
    BackendError::new(code, message).with_http_status(status.as_u16())
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of an error answer, within
/// `timeout`; whatever did not come in time is left.
async fn error_body(mut response: reqwest::Response, timeout: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = MAX_ERROR_BODY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    body
}

/// The provider's message in an error body (`{"error": {"message": ..}}`,
/// `{"error": ".."}`, `{"message": ..}` or plain text), made safe to show:
/// the key removed, control characters replaced, at most
/// [`MAX_PROVIDER_MESSAGE`] bytes.
pub(crate) fn provider_message(body: &[u8], key: Option<&SecretString>) -> Option<String> {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = match &json {
        Some(value) => [
            value.pointer("/error/message"),
            value.get("error"),
            value.get("message"),
            value.get("detail"),
        ]
        .into_iter()
        .flatten()
        .find_map(serde_json::Value::as_str)
        .map(str::to_owned),
        None => std::str::from_utf8(body).ok().map(str::to_owned),
    }?;
    let mut text = match key.map(ExposeSecret::expose_secret) {
        Some(key) if !key.is_empty() => text.replace(key, "<redacted>"),
        _ => text,
    };
    text = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.len() > MAX_PROVIDER_MESSAGE {
        let mut end = MAX_PROVIDER_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    (!text.is_empty()).then_some(text)
}

/// Turns a transport error into a failure without its `Display`, which can
/// name the URL.
fn transport_error(err: &reqwest::Error) -> BackendError {
    if err.is_timeout() {
        BackendError::new(FailureCode::Timeout, "the model endpoint timed out")
    } else if err.is_connect() {
        BackendError::new(
            FailureCode::Unavailable,
            "could not connect to the model endpoint",
        )
    } else {
        BackendError::new(
            FailureCode::ConnectionLost,
            "the connection to the model endpoint failed",
        )
    }
}

fn timeout_error(timeout: Duration) -> BackendError {
    BackendError::new(
        FailureCode::Timeout,
        format!(
            "the model endpoint sent nothing for {} ms",
            timeout.as_millis()
        ),
    )
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

/// What one `data:` payload means.
fn parse_chunk(data: &str) -> Result<Option<String>, BackendError> {
    let chunk: Chunk = serde_json::from_str(data).map_err(|_| {
        BackendError::new(
            FailureCode::MalformedResponse,
            "the model endpoint sent a chunk that is not valid JSON",
        )
    })?;
    if chunk.error.is_some() {
        return Err(BackendError::new(
            FailureCode::UpstreamError,
            "the model endpoint reported an error in the stream",
        ));
    }
    Ok(chunk
        .choices
        .into_iter()
        .filter_map(|c| c.delta.content)
        .reduce(|a, b| a + &b)
        .filter(|text| !text.is_empty()))
}

/// The reply being read: bytes in, deltas out, under the turn's bounds.
struct Reader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseData,
    /// Event data parsed but not handed out yet.
    pending: std::collections::VecDeque<String>,
    reply_bytes: usize,
    max_reply_bytes: usize,
    deadline: Instant,
    max_turn: Duration,
    timeout: Duration,
}

impl Reader {
    /// The next piece of text; `None` at `[DONE]`.
    async fn next_delta(&mut self) -> Result<Option<String>, BackendError> {
        loop {
            while let Some(data) = self.pending.pop_front() {
                if data.trim() == "[DONE]" {
                    return Ok(None);
                }
                let Some(text) = parse_chunk(&data)? else {
                    continue;
                };
                self.reply_bytes += text.len();
                if self.reply_bytes > self.max_reply_bytes {
                    return Err(BackendError::new(
                        FailureCode::ReplyTooLarge,
                        format!(
                            "the reply passed the profile's max_reply_bytes ({} bytes)",
                            self.max_reply_bytes
                        ),
                    ));
                }
                return Ok(Some(text));
            }
            // Each chunk within `timeout`, the whole turn within `max_turn`.
            let now = Instant::now();
            if now >= self.deadline {
                return Err(turn_deadline_error(self.max_turn));
            }
            let wait = self.timeout.min(self.deadline - now);
            let chunk = match tokio::time::timeout(wait, self.body.next()).await {
                Err(_) if Instant::now() >= self.deadline => {
                    return Err(turn_deadline_error(self.max_turn));
                }
                Err(_) => return Err(timeout_error(self.timeout)),
                Ok(None) => {
                    return Err(BackendError::new(
                        FailureCode::ConnectionLost,
                        "the model endpoint closed the stream before [DONE]",
                    ));
                }
                Ok(Some(Err(e))) => return Err(transport_error(&e)),
                Ok(Some(Ok(chunk))) => chunk,
            };
            let events = self.parser.push(&chunk).map_err(|err| {
                let message = match err {
                    SseError::LineTooLong(max) => {
                        format!("the model endpoint sent a line longer than {max} bytes")
                    }
                    SseError::NotUtf8 => "the model endpoint sent text that is not UTF-8".into(),
                };
                BackendError::new(FailureCode::MalformedResponse, message)
            })?;
            self.pending.extend(events);
        }
    }
}

fn turn_deadline_error(max_turn: Duration) -> BackendError {
    BackendError::new(
        FailureCode::Timeout,
        format!(
            "the turn took longer than the profile's max_turn_ms ({} ms)",
            max_turn.as_millis()
        ),
    )
}

#[async_trait]
impl ModelBackend for OpenAiBackend {
    fn kind(&self) -> &'static str {
        "openai"
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, BackendError> {
        let mut builder = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(self.body(&request));
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key.expose_secret());
        }
        let timeout = self.timeout;
        let response = tokio::time::timeout(timeout, builder.send())
            .await
            .map_err(|_| timeout_error(timeout))?
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            let body = error_body(response, timeout).await;
            let message = provider_message(&body, self.api_key.as_ref());
            return Err(status_error(status, message));
        }
        let reader = Reader {
            body: Box::pin(response.bytes_stream()),
            parser: SseData::new(MAX_LINE_BYTES),
            pending: std::collections::VecDeque::new(),
            reply_bytes: 0,
            max_reply_bytes: self.max_reply_bytes,
            deadline: Instant::now() + self.max_turn,
            max_turn: self.max_turn,
            timeout,
        };
        let deltas = futures_util::stream::unfold(Some(reader), |state| async move {
            let mut reader = state?;
            match reader.next_delta().await {
                Ok(Some(text)) => Some((Ok(text), Some(reader))),
                Ok(None) => None,
                Err(err) => Some((Err(err), None)),
            }
        });
        Ok(Box::pin(deltas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str) -> OpenAiConfig {
        OpenAiConfig {
            base_url: base_url.into(),
            model: "m".into(),
            api_key: Some(SecretString::from("sk-SENTINEL-debug")),
            timeout: Duration::from_secs(1),
            ..OpenAiConfig::new(base_url, "m")
        }
    }

    #[test]
    fn rejects_bad_base_urls() {
        let err = |url| OpenAiBackend::new(config(url)).unwrap_err();
        assert_eq!(err("not a url"), OpenAiConfigError::InvalidBaseUrl);
        assert_eq!(err("ftp://host/v1"), OpenAiConfigError::InvalidBaseUrl);
        assert_eq!(
            err("http://user:pw@host/v1"),
            OpenAiConfigError::CredentialsInUrl
        );
        let backend = OpenAiBackend::new(config("http://127.0.0.1:1/v1/")).unwrap();
        assert_eq!(
            backend.endpoint.as_str(),
            "http://127.0.0.1:1/v1/chat/completions"
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let cfg = config("http://127.0.0.1:1/v1");
        let backend = OpenAiBackend::new(cfg.clone()).unwrap();
        for text in [format!("{cfg:?}"), format!("{backend:?}")] {
            assert!(!text.contains("SENTINEL"), "{text}");
        }
    }

    #[test]
    fn parses_chunks() {
        let delta = r#"{"choices":[{"delta":{"content":"Hi"}}]}"#;
        assert_eq!(parse_chunk(delta).unwrap().as_deref(), Some("Hi"));
        let role_only = r#"{"choices":[{"delta":{"role":"assistant"}}]}"#;
        assert_eq!(parse_chunk(role_only).unwrap(), None);
        assert_eq!(
            parse_chunk("{not json").unwrap_err().code,
            FailureCode::MalformedResponse
        );
        assert_eq!(
            parse_chunk(r#"{"error":{"message":"boom"}}"#)
                .unwrap_err()
                .code,
            FailureCode::UpstreamError
        );
    }
}
