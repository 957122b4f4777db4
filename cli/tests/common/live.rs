//! A server on a real listener, and a Server-Sent Events reader.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::oneshot;
use yoi_workspace_server::AppState;

use super::TestApp;

pub struct Live {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub client: reqwest::Client,
}

impl Live {
    /// The default server (`TestApp::new`) on a real listener.
    pub async fn start() -> Self {
        Self::serve(TestApp::new().await.state).await
    }

    /// `state` on a real listener on 127.0.0.1, port 0.
    pub async fn serve(state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(yoi_workspace_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            server,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }
}

/// One parsed Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Value,
}

/// Reads SSE frames from a response until `stop` says so or it ends.
pub async fn read_sse(response: reqwest::Response, mut stop: impl FnMut(&Sse) -> bool) -> Vec<Sse> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut frames = Vec::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(10), body.next()).await {
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut sse = Sse {
                id: None,
                event: None,
                data: Value::Null,
            };
            let mut is_comment = true;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    sse.id = Some(v.trim().to_owned());
                    is_comment = false;
                } else if let Some(v) = line.strip_prefix("event:") {
                    sse.event = Some(v.trim().to_owned());
                    is_comment = false;
                } else if let Some(v) = line.strip_prefix("data:") {
                    sse.data = serde_json::from_str(v.trim()).unwrap();
                    is_comment = false;
                }
            }
            if is_comment {
                continue;
            }
            let done = stop(&sse);
            frames.push(sse);
            if done {
                return frames;
            }
        }
    }
    frames
}
