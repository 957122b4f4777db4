//! Helpers shared by the server's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod live;
pub mod process;

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;
use yoi::config::{FileConfig, Overrides};
use yoi_runtime_api::{ProfileName, RuntimeId, test_util};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, ProfileConfig};
use yoi_workspace_server::state::DEFAULT_MAX_BODY_BYTES;
use yoi_workspace_server::{AppState, RuntimeRegistry, app};

pub const EMBEDDED: &str = "backend-internal";

#[allow(unused_imports)]
pub use yoi_runtime_api::test_util::temp_dir;

/// Writes a worker record (and optionally a transcript) into a workspace.
pub fn write_record(workspace: &Path, name: &str, record: &Value, transcript: Option<&str>) {
    let dir = workspace.join(".yoi").join("workers").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("worker.json"), record.to_string()).unwrap();
    if let Some(lines) = transcript {
        std::fs::write(dir.join("transcript.jsonl"), lines).unwrap();
    }
}

pub fn record(name: &str, workspace: &Path) -> Value {
    serde_json::json!({
        "name": name,
        "profile": "default",
        "state": "running",
        "pid": 4242,
        "socket_path": workspace.join(format!("run/{name}.sock")),
        "session_path": workspace.join(format!("sessions/{name}")),
        "workspace": workspace,
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:06Z"
    })
}

pub fn embedded(id: &str) -> EmbeddedRuntime {
    EmbeddedRuntime::new(EmbeddedOptions {
        runtime_id: RuntimeId::new(id).unwrap(),
        profiles: vec![ProfileConfig::echo(
            ProfileName::new("slow").unwrap(),
            Duration::from_millis(800),
        )],
        ..EmbeddedOptions::default()
    })
    .unwrap()
}

/// Builds the app state with the embedded runtime and, when given, a local
/// compatibility runtime over `workspace`.
pub struct TestApp {
    pub state: AppState,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(None, None, DEFAULT_MAX_BODY_BYTES).await
    }

    /// The server as `yoi serve` builds it from a config file with a slow
    /// echo profile, the default Runtimes, and these overrides.
    pub async fn with(
        workspace: Option<&Path>,
        token: Option<&str>,
        max_body_bytes: usize,
    ) -> Self {
        let file = FileConfig::parse(
            Path::new("test.toml"),
            &format!(
                "[limits]\nmax_body_bytes = {max_body_bytes}\n\n\
                 [[profiles]]\nname = \"slow\"\nbackend = \"echo\"\necho_delay_ms = 800\n"
            ),
        )
        .unwrap();
        let config = file
            .resolve(
                Overrides {
                    workspace: workspace.map(Path::to_owned),
                    token: token.map(|t| SecretString::from(t.to_owned())),
                    ..Overrides::default()
                },
                |_| None,
            )
            .unwrap();
        Self {
            state: yoi::build_state(config).await.unwrap(),
        }
    }

    /// [`TestApp::with`] over a fresh workspace holding one local record,
    /// `local-one`, so that local-compat has a Worker.
    pub async fn with_local_one(label: &str) -> Self {
        let workspace = temp_dir(label);
        write_record(
            &workspace,
            "local-one",
            &record("local-one", &workspace),
            None,
        );
        Self::with(Some(&workspace), None, DEFAULT_MAX_BODY_BYTES).await
    }

    pub fn from_registry(
        registry: RuntimeRegistry,
        token: Option<&str>,
        max_body_bytes: usize,
    ) -> Self {
        let token = token.map(|t| SecretString::from(t.to_owned()));
        Self {
            state: AppState::new(registry, token, max_body_bytes),
        }
    }

    pub async fn request(&self, request: Request<Body>) -> Reply {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.request(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Reply {
        self.send(Method::POST, uri, Some(body)).await
    }

    pub async fn send(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        let builder = Request::builder().method(method).uri(uri);
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        self.request(request).await
    }

    /// `(runtime_id, worker_id)` of every Worker in `/api/workers`, in the
    /// order listed.
    pub async fn all_worker_pairs(&self) -> Vec<(String, String)> {
        let all = self.get("/api/workers").await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.text);
        all.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["runtime_id"].as_str().unwrap().to_owned(),
                    w["worker_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Creates a Worker with the default profile on `runtime_id`.
    pub async fn create_worker_in(&self, runtime_id: &str) -> String {
        let reply = self
            .post(
                &format!("/api/runtimes/{runtime_id}/workers"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json["worker_id"].as_str().unwrap().to_owned()
    }

    /// Creates a Worker on the embedded runtime; returns its id.
    pub async fn create_worker(&self, profile: Option<&str>) -> String {
        let body = match profile {
            Some(p) => serde_json::json!({ "profile": p }),
            None => serde_json::json!({}),
        };
        let reply = self
            .post(&format!("/api/runtimes/{EMBEDDED}/workers"), body)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json["worker_id"].as_str().unwrap().to_owned()
    }

    /// Waits until the Worker of the embedded runtime is idle with nothing
    /// queued, by its events.
    pub async fn wait_idle(&self, worker: &str) {
        let runtime_id = RuntimeId::new(EMBEDDED).unwrap();
        let entry = self.state.registry().get(&runtime_id).unwrap();
        test_util::wait_idle(entry.runtime(), &worker.parse().unwrap()).await;
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// Asserts a problem document with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        assert_eq!(self.json["code"], code, "{}", self.text);
        assert_eq!(self.json["status"], status);
        assert_eq!(self.json["type"], format!("urn:yoi:problem:{code}"));
        assert!(self.json["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

/// A state served by `yoi_workspace_server::serve` on a real listener at
/// 127.0.0.1, port 0: requests carry their client address, as in
/// `yoi serve`.
pub struct Listening {
    pub addr: std::net::SocketAddr,
    /// Sending (or dropping) this starts the shutdown.
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listening {
    pub async fn start(state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(yoi_workspace_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Self { addr, stop, server }
    }

    /// `http://` and the address.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A `MakeWriter` that keeps what is logged.
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Captures the log lines at info level and above that the current
    /// thread writes (and the tasks a current-thread runtime runs on it)
    /// until the guard is dropped.
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(logs.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("log lines are UTF-8")
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
