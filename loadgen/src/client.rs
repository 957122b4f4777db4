//! A thin JSON client for the server's API.

use std::time::Duration;

use serde_json::Value;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response: status and JSON body (`Null` when not JSON).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) json: Value,
}

#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

pub(crate) const RT: &str = "/api/runtimes/backend-internal";

impl Client {
    pub(crate) fn new(base: String) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("http client");
        Self { base, http }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn wait_ready(&self) -> Result<(), BoxError> {
        for _ in 0..100 {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the server never became ready".into())
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Reply, BoxError> {
        let response = self.http.get(self.url(path)).send().await?;
        Self::reply(response).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Reply, BoxError> {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        Self::reply(response).await
    }

    async fn reply(response: reqwest::Response) -> Result<Reply, BoxError> {
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, json })
    }

    /// Creates a Worker on the embedded runtime.
    pub(crate) async fn create_worker(&self) -> Result<String, BoxError> {
        let reply = self
            .post(&format!("{RT}/workers"), &serde_json::json!({}))
            .await?;
        if reply.status != 201 {
            return Err(format!("create answered {}", reply.status).into());
        }
        Ok(reply.json["worker_id"]
            .as_str()
            .ok_or("no worker_id")?
            .to_owned())
    }

    /// Long-polls events after `cursor` until one of `kinds` arrives;
    /// returns the cursor after it.
    /// Sends `text` (expecting `202`) and waits for `turn_completed`.
    pub(crate) async fn send_and_wait(&self, worker: &str, text: &str) -> Result<(), BoxError> {
        let accepted = self
            .post(
                &format!("{RT}/workers/{worker}/input"),
                &serde_json::json!({ "text": text }),
            )
            .await?;
        if accepted.status != 202 {
            return Err(format!("input answered {}", accepted.status).into());
        }
        let cursor = accepted.json["cursor"]
            .as_str()
            .ok_or("no cursor")?
            .to_owned();
        self.wait_for(worker, cursor, &["turn_completed"]).await?;
        Ok(())
    }

    pub(crate) async fn wait_for(
        &self,
        worker: &str,
        mut cursor: String,
        kinds: &[&str],
    ) -> Result<String, BoxError> {
        loop {
            let page = self
                .get(&format!(
                    "{RT}/workers/{worker}/events?after={cursor}&wait_ms=10000"
                ))
                .await?;
            if page.status != 200 {
                return Err(format!("events answered {}", page.status).into());
            }
            let events = page.json["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                return Err(format!("no event after {cursor} within 10 s").into());
            }
            cursor = page.json["next_cursor"]
                .as_str()
                .ok_or("no next_cursor")?
                .to_owned();
            if events
                .iter()
                .any(|e| kinds.contains(&e["kind"].as_str().unwrap_or_default()))
            {
                return Ok(cursor);
            }
        }
    }

    /// Every transcript entry of a Worker.
    pub(crate) async fn transcript(&self, worker: &str) -> Result<Vec<Value>, BoxError> {
        let mut entries = Vec::new();
        let mut start = 0u64;
        loop {
            let page = self
                .get(&format!(
                    "{RT}/workers/{worker}/transcript?start={start}&limit=200"
                ))
                .await?;
            if page.status != 200 {
                return Err(format!("transcript answered {}", page.status).into());
            }
            entries.extend(page.json["entries"].as_array().cloned().unwrap_or_default());
            match page.json["next_start"].as_u64() {
                Some(next) => start = next,
                None => return Ok(entries),
            }
        }
    }

    /// Every event of a Worker's log.
    pub(crate) async fn events(&self, worker: &str) -> Result<Vec<Value>, BoxError> {
        let mut events = Vec::new();
        let mut after = String::new();
        loop {
            let query = if after.is_empty() {
                String::new()
            } else {
                format!("&after={after}")
            };
            let page = self
                .get(&format!("{RT}/workers/{worker}/events?limit=1000{query}"))
                .await?;
            events.extend(page.json["events"].as_array().cloned().unwrap_or_default());
            if let Some(next) = page.json["next_cursor"].as_str() {
                after = next.to_owned();
            }
            if page.json["has_more"] != true {
                return Ok(events);
            }
        }
    }
}
