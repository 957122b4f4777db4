//! A scripted OpenAI-compatible server on 127.0.0.1 for tests. It speaks
//! raw HTTP/1.1 so that it can misbehave exactly: wrong statuses, broken
//! chunks, dropped connections and stalls.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with these deltas streamed as chat-completion chunks, then [DONE].
    Stream(Vec<&'static str>),
    /// This status with this body.
    Status(u16, String),
    /// 200, these deltas, then a chunk that is not JSON.
    Malformed(Vec<&'static str>),
    /// 200, these deltas, then the connection is cut mid-chunk.
    Drop(Vec<&'static str>),
    /// 200, these deltas, then silence for this long.
    StallAfter(Vec<&'static str>, Duration),
    /// No response at all for this long.
    StallBeforeHeaders(Duration),
    /// 200, then exactly these body bytes, then the connection closes.
    Raw(Vec<u8>),
    /// 200, then a chunk with no text at this interval, forever.
    EmptyChunksEvery(Duration),
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub head: String,
    pub body: String,
}

#[derive(Clone)]
pub struct MockServer {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            addr: listener.local_addr().unwrap(),
            script: Arc::default(),
            seen: Arc::default(),
        };
        let handle = server.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let handle = handle.clone();
                tokio::spawn(async move { handle.serve(socket).await });
            }
        });
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn push(&self, reply: Reply) {
        self.script.lock().unwrap().push_back(reply);
    }

    async fn serve(&self, mut socket: TcpStream) {
        let Some(seen) = read_request(&mut socket).await else {
            return;
        };
        self.seen.lock().unwrap().push(seen);
        let reply = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Reply::Status(
                500,
                "{\"error\":\"no reply scripted\"}".into(),
            ));
        let _ = respond(&mut socket, reply).await;
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    Some(Seen { head, body })
}

fn sse_chunk(delta: &str) -> String {
    let json = serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{ "index": 0, "delta": { "content": delta }, "finish_reason": null }]
    });
    format!("data: {json}\n\n")
}

async fn write_chunk(socket: &mut TcpStream, data: &str) -> std::io::Result<()> {
    socket
        .write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
        .await?;
    socket.flush().await
}

async fn stream_head(socket: &mut TcpStream) -> std::io::Result<()> {
    socket
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )
        .await
}

async fn stream_deltas(socket: &mut TcpStream, deltas: &[&str]) -> std::io::Result<()> {
    stream_head(socket).await?;
    // The role-only first chunk real servers send.
    write_chunk(
        socket,
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n",
    )
    .await?;
    for delta in deltas {
        write_chunk(socket, &sse_chunk(delta)).await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

async fn respond(socket: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Stream(deltas) => {
            stream_deltas(socket, &deltas).await?;
            write_chunk(socket, "data: [DONE]\n\n").await?;
            socket.write_all(b"0\r\n\r\n").await?;
        }
        Reply::Status(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(body.as_bytes()).await?;
        }
        Reply::Malformed(deltas) => {
            stream_deltas(socket, &deltas).await?;
            write_chunk(socket, "data: {\"choices\": [ this is not json\n\n").await?;
            write_chunk(socket, "data: [DONE]\n\n").await?;
            socket.write_all(b"0\r\n\r\n").await?;
        }
        Reply::Drop(deltas) => {
            stream_deltas(socket, &deltas).await?;
            // Announce a 100-byte chunk, send 5 bytes, and hang up.
            socket.write_all(b"64\r\ndata:").await?;
            socket.flush().await?;
            socket.shutdown().await?;
        }
        Reply::StallAfter(deltas, pause) => {
            stream_deltas(socket, &deltas).await?;
            tokio::time::sleep(pause).await;
        }
        Reply::StallBeforeHeaders(pause) => tokio::time::sleep(pause).await,
        Reply::Raw(bytes) => {
            stream_head(socket).await?;
            socket
                .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
                .await?;
            socket.write_all(&bytes).await?;
            socket.write_all(b"\r\n0\r\n\r\n").await?;
        }
        Reply::EmptyChunksEvery(interval) => {
            stream_head(socket).await?;
            loop {
                write_chunk(
                    socket,
                    "data: {\"choices\":[{\"index\":0,\"delta\":{}}]}\n\n",
                )
                .await?;
                tokio::time::sleep(interval).await;
            }
        }
    }
    socket.flush().await
}
