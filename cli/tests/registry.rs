//! Registration, routing by runtime_id + worker_id, and central capability
//! checks.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{TestApp, embedded, record, temp_dir, write_record};
use serde_json::json;
use yoi_runtime_api::DynRuntime;
use yoi_runtime_api::dto::{
    ImplementationKind, InputRequest, RuntimeState, RuntimeStatus, RuntimeSummary, WorkerCounts,
    WorkerDetail,
};
use yoi_runtime_api::{Capabilities, ErrorCode, Result, Runtime, RuntimeId, WorkerId};
use yoi_workspace_server::RuntimeRegistry;
use yoi_workspace_server::registry::RegistryError;

fn entry(id: &str) -> Arc<DynRuntime> {
    Arc::new(embedded(id))
}

#[tokio::test]
async fn duplicate_ids_are_refused() {
    let mut registry = RuntimeRegistry::new();
    registry.register(entry("one")).await.unwrap();
    let err = registry.register(entry("one")).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Duplicate { ref runtime_id } if runtime_id.as_str() == "one")
    );
    assert_eq!(
        err.to_string(),
        "a runtime with id 'one' is already registered"
    );
    assert_eq!(registry.entries().len(), 1);
}

#[test]
fn unknown_runtime_is_a_typed_error() {
    let registry = RuntimeRegistry::new();
    let err = registry.get(&RuntimeId::new("ghost").unwrap()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownRuntime);
}

/// The summary of a test double.
fn fake_summary(runtime: &dyn Runtime, display_name: &str) -> RuntimeSummary {
    RuntimeSummary {
        runtime_id: runtime.id().clone(),
        display_name: display_name.into(),
        implementation: ImplementationKind::Remote,
        capabilities: runtime.capabilities(),
    }
}

/// A ready status with no Workers.
fn ready_status(runtime_id: &RuntimeId) -> RuntimeStatus {
    RuntimeStatus {
        runtime_id: runtime_id.clone(),
        state: RuntimeState::Ready,
        workers: WorkerCounts::default(),
    }
}

/// A Runtime that supports nothing and panics if a method is called anyway:
/// the registry must refuse before the call.
#[derive(Debug)]
struct Refuser(RuntimeId);

#[async_trait]
impl Runtime for Refuser {
    fn id(&self) -> &RuntimeId {
        &self.0
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn summary(&self) -> Result<RuntimeSummary> {
        Ok(fake_summary(self, "refuser"))
    }
    async fn status(&self) -> Result<RuntimeStatus> {
        Ok(ready_status(&self.0))
    }
    async fn worker(&self, _: &WorkerId) -> Result<WorkerDetail> {
        panic!("not reached in this test")
    }
    async fn send_input(
        &self,
        _: &WorkerId,
        _: InputRequest,
    ) -> Result<yoi_runtime_api::dto::InputAcceptance> {
        panic!("the registry called an unsupported operation")
    }
}

#[tokio::test]
async fn capabilities_are_checked_before_the_runtime_is_called() {
    let mut registry = RuntimeRegistry::new();
    registry
        .register(Arc::new(Refuser(RuntimeId::new("refuser").unwrap())))
        .await
        .unwrap();
    let rid = RuntimeId::new("refuser").unwrap();
    let wid = WorkerId::new("w").unwrap();
    let err = registry
        .send_input(&rid, &wid, InputRequest::new("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedOperation);
    // Over HTTP too: 501, not a panic or a 500.
    let app = TestApp::from_registry(registry, None, 1 << 20);
    app.post(
        "/api/runtimes/refuser/workers/w/input",
        json!({ "text": "hi" }),
    )
    .await
    .assert_problem(501, "unsupported_operation");
    app.post("/api/runtimes/refuser/workers", json!({}))
        .await
        .assert_problem(501, "unsupported_operation");
}

/// A Runtime that can only stream events (no pages, no details): every
/// stream is empty.
#[derive(Debug)]
struct StreamOnly(RuntimeId);

#[async_trait]
impl Runtime for StreamOnly {
    fn id(&self) -> &RuntimeId {
        &self.0
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            events_subscribe: true,
            ..Capabilities::default()
        }
    }
    async fn summary(&self) -> Result<RuntimeSummary> {
        Ok(fake_summary(self, "stream only"))
    }
    async fn status(&self) -> Result<RuntimeStatus> {
        Ok(ready_status(&self.0))
    }
    async fn worker(&self, _: &WorkerId) -> Result<WorkerDetail> {
        panic!("a stream-only Runtime is not asked for details")
    }
    async fn subscribe(
        &self,
        _: &WorkerId,
        _: Option<yoi_runtime_api::EventCursor>,
    ) -> Result<yoi_runtime_api::EventStream> {
        Ok(Box::pin(futures_util::stream::empty()))
    }
}

#[tokio::test]
async fn resuming_a_stream_needs_no_more_than_streams() {
    // Whether the log is closed (204) is asked only of Runtimes that can
    // read pages; others just stream.
    let mut registry = RuntimeRegistry::new();
    registry
        .register(Arc::new(StreamOnly(RuntimeId::new("streamer").unwrap())))
        .await
        .unwrap();
    let app = TestApp::from_registry(registry, None, 1 << 20);
    let request = axum::http::Request::get("/api/runtimes/streamer/workers/w/events/stream")
        .header("last-event-id", "3.abc")
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = app.request(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn queue_and_interrupt_need_their_own_capability() {
    // The local-compat runtime supports neither; the busy policy's
    // capability is named in the error.
    let workspace = temp_dir("policy");
    write_record(&workspace, "w1", &record("w1", &workspace), None);
    let app = TestApp::with(Some(&workspace), None, 1 << 20).await;
    let reply = app
        .post(
            "/api/runtimes/local-compat/workers/w1/input",
            json!({ "text": "x", "on_busy": "queue" }),
        )
        .await;
    reply.assert_problem(501, "unsupported_operation");
}

#[tokio::test]
async fn same_worker_id_in_two_runtimes_routes_by_runtime() {
    // Embedded ids never repeat, so the second Runtime with the same id is a
    // local-compat one whose record is named after the embedded Worker.
    let workspace = temp_dir("same-id");
    let mut registry = RuntimeRegistry::new();
    registry.register(entry("alpha")).await.unwrap();
    let beta = yoi_runtime_local_compat::LocalCompatRuntime::new(workspace.clone())
        .with_identity(RuntimeId::new("beta").unwrap(), "Beta".into());
    registry.register(Arc::new(beta)).await.unwrap();
    let app = TestApp::from_registry(registry, None, 1 << 20);
    let a = app
        .post(
            "/api/runtimes/alpha/workers",
            json!({ "display_name": "in alpha" }),
        )
        .await;
    let wid = a.json["worker_id"].as_str().unwrap();
    let mut in_beta = record(wid, &workspace);
    in_beta["display_name"] = json!("in beta");
    write_record(&workspace, wid, &in_beta, None);

    let from_alpha = app.get(&format!("/api/runtimes/alpha/workers/{wid}")).await;
    assert_eq!(
        (
            from_alpha.json["runtime_id"].as_str(),
            from_alpha.json["display_name"].as_str()
        ),
        (Some("alpha"), Some("in alpha"))
    );
    let from_beta = app.get(&format!("/api/runtimes/beta/workers/{wid}")).await;
    assert_eq!(
        (
            from_beta.json["runtime_id"].as_str(),
            from_beta.json["display_name"].as_str()
        ),
        (Some("beta"), Some("in beta"))
    );

    // Input to one does not touch the other.
    assert_eq!(
        app.post(
            &format!("/api/runtimes/alpha/workers/{wid}/input"),
            json!({ "text": "hi" })
        )
        .await
        .status,
        202
    );
    let beta_transcript = app
        .get(&format!("/api/runtimes/beta/workers/{wid}/transcript"))
        .await;
    assert_eq!(beta_transcript.json["total"], 0);

    // A second worker only in alpha is unknown_worker in beta.
    let only_alpha = app
        .post("/api/runtimes/alpha/workers", json!({}))
        .await
        .json["worker_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = app
        .get(&format!("/api/runtimes/beta/workers/{only_alpha}"))
        .await;
    reply.assert_problem(404, "unknown_worker");
    assert_eq!(reply.json["runtime_id"], "beta");

    // The aggregate list has both, each with its runtime.
    let pairs = app.all_worker_pairs().await;
    assert_eq!(pairs.len(), 3);
    assert!(
        pairs.contains(&("alpha".into(), wid.into()))
            && pairs.contains(&("beta".into(), wid.into()))
    );
}

#[tokio::test]
async fn embedded_and_local_compat_side_by_side() {
    let workspace = temp_dir("side-by-side");
    let app = TestApp::with(Some(&workspace), None, 1 << 20).await;
    let embedded_worker = app.create_worker(None).await;
    // A local Worker with the same id.
    write_record(
        &workspace,
        &embedded_worker,
        &record(&embedded_worker, &workspace),
        None,
    );
    let local = app
        .get(&format!(
            "/api/runtimes/local-compat/workers/{embedded_worker}"
        ))
        .await;
    assert_eq!(local.json["runtime_id"], "local-compat");
    assert_eq!(local.json["state"], "running");
    let embedded = app
        .get(&format!(
            "/api/runtimes/backend-internal/workers/{embedded_worker}"
        ))
        .await;
    assert_eq!(embedded.json["state"], "idle");

    let runtimes = app.get("/api/runtimes").await;
    let kinds: Vec<&str> = runtimes.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["implementation"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["embedded", "local_compat"]);
    let all = app.get("/api/workers").await;
    let kinds: Vec<&str> = all.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["implementation"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["embedded", "local_compat"]);
}

/// A Runtime that lists Workers but never answers status, list or
/// diagnostics: it stands for a peer that hangs.
#[derive(Debug)]
struct Hanging(RuntimeId);

#[async_trait]
impl Runtime for Hanging {
    fn id(&self) -> &RuntimeId {
        &self.0
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            list_workers: true,
            ..Capabilities::default()
        }
    }
    async fn summary(&self) -> Result<RuntimeSummary> {
        Ok(fake_summary(self, "Hangs"))
    }
    async fn status(&self) -> Result<RuntimeStatus> {
        std::future::pending().await
    }
    async fn list_workers(
        &self,
        _: yoi_runtime_api::dto::WorkerListQuery,
    ) -> Result<yoi_runtime_api::dto::WorkerPage> {
        std::future::pending().await
    }
    async fn diagnostics(&self) -> Result<Vec<yoi_runtime_api::dto::Diagnostic>> {
        std::future::pending().await
    }
    async fn worker(&self, _: &WorkerId) -> Result<WorkerDetail> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hanging_runtime_is_unavailable_in_aggregates_within_the_deadline() {
    let mut registry = RuntimeRegistry::new();
    registry.register(entry("alpha")).await.unwrap();
    registry
        .register(Arc::new(Hanging(RuntimeId::new("stuck").unwrap())))
        .await
        .unwrap();
    let mut app = TestApp::from_registry(registry, None, 1 << 20);
    app.state = app
        .state
        .with_aggregate_deadline(std::time::Duration::from_millis(200));
    app.create_worker_in("alpha").await;
    let answered = |reply: &common::Reply| assert_eq!(reply.status, 200, "{}", reply.text);
    // Each answers, bounded by the deadline, with the stuck one marked.
    let runtimes =
        tokio::time::timeout(std::time::Duration::from_secs(5), app.get("/api/runtimes"))
            .await
            .expect("answered within the deadline");
    answered(&runtimes);
    let states: Vec<(&str, &str)> = runtimes.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["runtime_id"].as_str().unwrap(),
                r["status"]["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [("alpha", "ready"), ("stuck", "unavailable")]);
    let workers = tokio::time::timeout(std::time::Duration::from_secs(5), app.get("/api/workers"))
        .await
        .expect("answered within the deadline");
    answered(&workers);
    assert_eq!(workers.json["unavailable"], json!(["stuck"]));
    assert_eq!(workers.json["items"].as_array().unwrap().len(), 1);
    let diagnostics = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.get("/api/diagnostics"),
    )
    .await
    .expect("answered within the deadline");
    answered(&diagnostics);
    assert_eq!(diagnostics.json["items"][1]["status"], "unavailable");
    assert_eq!(
        diagnostics.json["items"][1]["diagnostics"][0]["code"],
        "unavailable"
    );
}
