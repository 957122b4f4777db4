//! Finding Workers over HTTP: filters, sort orders, cursors and counts on a
//! Runtime's list, and the merged `/api/workers` with its composite cursor.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::{EMBEDDED, TestApp};
use serde_json::{Value, json};
use yoi_workspace_server::RuntimeRegistry;

const LOCAL: &str = "local-compat";

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every Worker of a paging pass over `uri` (which has a query already),
/// following `next_cursor`.
async fn page_all(app: &TestApp, uri: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page_uri = match &next {
            Some(cursor) => format!("{uri}&cursor={cursor}"),
            None => uri.to_owned(),
        };
        let page = app.get(&page_uri).await;
        assert_eq!(page.status, StatusCode::OK, "{page_uri}: {}", page.text);
        seen.extend(page.json["items"].as_array().unwrap().iter().cloned());
        match page.json["next_cursor"].as_str() {
            // Cursors are URL-safe as they are.
            Some(cursor) => next = Some(cursor.to_owned()),
            None => return seen,
        }
        assert!(seen.len() < 1000, "the pass does not end");
    }
}

/// The page of `uri` after `cursor` (answered 200), and its next cursor.
async fn next_page(app: &TestApp, uri: &str, cursor: &str) -> (Value, Option<String>) {
    let page = app.get(&format!("{uri}&cursor={cursor}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let next = page.json["next_cursor"].as_str().map(str::to_owned);
    (page.json, next)
}

async fn create(app: &TestApp, runtime_id: &str, metadata: Value) -> String {
    let reply = app
        .post(
            &format!("/api/runtimes/{runtime_id}/workers"),
            json!({ "metadata": metadata }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json["worker_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_runtime_list_filters_sorts_pages_and_counts() {
    let app = TestApp::with_local_one("search-http").await;
    let workers = format!("/api/runtimes/{EMBEDDED}/workers");
    let mut apollo = Vec::new();
    for n in 0..5 {
        let project = if n % 2 == 0 { "apollo" } else { "gemini" };
        let id = create(
            &app,
            EMBEDDED,
            json!({ "project": project, "n": n.to_string() }),
        )
        .await;
        if project == "apollo" {
            apollo.push(id);
        }
    }
    let found = page_all(&app, &format!("{workers}?metadata.project=apollo&limit=1")).await;
    let found_ids: Vec<&str> = found
        .iter()
        .map(|w| w["worker_id"].as_str().unwrap())
        .collect();
    assert_eq!(found_ids, apollo);
    let count = app
        .get(&format!(
            "{workers}/count?metadata.project=apollo&state=idle,stopped"
        ))
        .await;
    assert_eq!(count.status, StatusCode::OK, "{}", count.text);
    assert_eq!(count.json, json!({ "count": 3 }));
    let two_pairs = app
        .get(&format!("{workers}?metadata.project=apollo&metadata.n=2"))
        .await;
    assert_eq!(ids(&two_pairs.json), vec![apollo[1].clone()]);

    // Newest first: the last one created, then after an update, that one.
    let desc = app
        .get(&format!(
            "{workers}?metadata.project=apollo&sort=updated_at&order=desc"
        ))
        .await;
    assert_eq!(ids(&desc.json)[0], apollo[2]);
    let renamed = app
        .send(
            Method::PATCH,
            &format!("{workers}/{}", apollo[0]),
            Some(json!({ "display_name": "first, touched" })),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let desc = app
        .get(&format!(
            "{workers}?metadata.project=apollo&sort=updated_at&order=desc"
        ))
        .await;
    assert_eq!(ids(&desc.json)[0], apollo[0]);

    // Unknown names and bad values are refused, not ignored.
    for query in [
        "projet=apollo",
        "metadata.bad%20key=x",
        "sort=name",
        "order=up",
        "state=sleeping",
        "limit=1&limit=2",
        "cursor=c1.nonsense",
    ] {
        let reply = app.get(&format!("{workers}?{query}")).await;
        reply.assert_problem(400, "invalid_request");
    }
    app.get(&format!("{workers}/count?limit=1"))
        .await
        .assert_problem(400, "invalid_request");
    // A cursor is tied to its query.
    let first = app
        .get(&format!("{workers}?metadata.project=apollo&limit=1"))
        .await;
    let cursor = first.json["next_cursor"].as_str().unwrap();
    app.get(&format!(
        "{workers}?metadata.project=gemini&cursor={cursor}"
    ))
    .await
    .assert_problem(400, "invalid_request");

    // local-compat lists, but cannot filter or count.
    let local = format!("/api/runtimes/{LOCAL}/workers");
    assert_eq!(app.get(&local).await.status, StatusCode::OK);
    app.get(&format!("{local}?state=idle"))
        .await
        .assert_problem(501, "unsupported_operation");
    app.get(&format!("{local}/count"))
        .await
        .assert_problem(501, "unsupported_operation");

    // The merged list leaves it out of a filtered list and says so.
    let merged = app.get("/api/workers?metadata.project=apollo").await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    assert_eq!(merged.json["skipped"], json!([LOCAL]));
    assert_eq!(ids(&merged.json), apollo);
    let unfiltered = app.get("/api/workers").await;
    assert_eq!(unfiltered.json["skipped"], json!([]));
    assert!(ids(&unfiltered.json).contains(&"local-one".to_owned()));
}

#[tokio::test]
async fn all_workers_merges_runtimes_under_one_cursor() {
    let mut registry = RuntimeRegistry::new();
    for id in ["alpha", "beta"] {
        registry
            .register(Arc::new(common::embedded(id)))
            .await
            .unwrap();
    }
    let app = TestApp::from_registry(registry, None, 1 << 20);
    let mut made: Vec<(String, String)> = Vec::new();
    for n in 0..11 {
        let runtime_id = if n % 3 == 0 { "beta" } else { "alpha" };
        let id = create(&app, runtime_id, json!({ "pass": "one" })).await;
        made.push((runtime_id.to_owned(), id));
    }
    for (sort, order) in [
        ("created_at", "asc"),
        ("created_at", "desc"),
        ("updated_at", "asc"),
        ("updated_at", "desc"),
    ] {
        let uri = format!("/api/workers?metadata.pass=one&limit=3&sort={sort}&order={order}");
        let seen = page_all(&app, &uri).await;
        let mut times: BTreeMap<(String, String), usize> = BTreeMap::new();
        for worker in &seen {
            let key = (
                worker["runtime_id"].as_str().unwrap().to_owned(),
                worker["worker_id"].as_str().unwrap().to_owned(),
            );
            *times.entry(key).or_default() += 1;
        }
        for pair in &made {
            assert_eq!(times.get(pair), Some(&1), "{sort} {order}: {pair:?}");
        }
        assert_eq!(seen.len(), made.len(), "{sort} {order}");
        if sort == "created_at" {
            // Ids are made in creation order, so the merged order is
            // creation order across both Runtimes.
            let order_seen: Vec<&str> = seen
                .iter()
                .map(|w| w["worker_id"].as_str().unwrap())
                .collect();
            let mut expected: Vec<&str> = made.iter().map(|(_, id)| id.as_str()).collect();
            if order == "desc" {
                expected.reverse();
            }
            assert_eq!(order_seen, expected, "{sort} {order}");
        }
    }

    // Changes between pages: every Worker there throughout is shown once.
    let uri = "/api/workers?metadata.pass=one&limit=4";
    let first = app.get(uri).await;
    let mut seen = ids(&first.json);
    let mut cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    let late = create(&app, "alpha", json!({ "pass": "one" })).await;
    let (gone_runtime, gone) = made.last().unwrap().clone();
    let deleted = app
        .send(
            Method::DELETE,
            &format!("/api/runtimes/{gone_runtime}/workers/{gone}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    loop {
        let (page, next) = next_page(&app, uri, &cursor).await;
        seen.extend(ids(&page));
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    for (_, id) in &made[..made.len() - 1] {
        assert_eq!(seen.iter().filter(|s| *s == id).count(), 1, "{id}");
    }
    assert!(!seen.contains(&gone));
    assert_eq!(seen.iter().filter(|s| **s == late).count(), 1);
    let count_alpha = app
        .get("/api/runtimes/alpha/workers/count?metadata.pass=one")
        .await;
    assert_eq!(
        count_alpha.json["count"],
        json!(
            made.iter().filter(|(r, _)| r == "alpha").count() + 1
                - usize::from(gone_runtime == "alpha")
        )
    );

    // An updated_at pass across both Runtimes, renaming a Worker before
    // each page in creation order (some already shown, which a pass by
    // current updated_at would show again; some not yet, which it would
    // skip): still each once.
    let uri = "/api/workers?metadata.pass=one&limit=3&sort=updated_at&order=asc";
    let first = app.get(uri).await;
    let mut seen = ids(&first.json);
    let mut cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    let mut renamed = 0;
    loop {
        if let Some((runtime_id, id)) = made[..made.len() - 1].get(renamed) {
            let reply = app
                .send(
                    Method::PATCH,
                    &format!("/api/runtimes/{runtime_id}/workers/{id}"),
                    Some(json!({ "display_name": format!("renamed {renamed}") })),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            renamed += 1;
        }
        let (page, next) = next_page(&app, uri, &cursor).await;
        seen.extend(ids(&page));
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert!(renamed >= 3, "renamed {renamed} during the pass");
    for (_, id) in &made[..made.len() - 1] {
        assert_eq!(seen.iter().filter(|s| *s == id).count(), 1, "{id}");
    }
    assert_eq!(seen.iter().filter(|s| **s == late).count(), 1);

    // A composite cursor is tied to its query too.
    app.get(&format!("/api/workers?sort=created_at&cursor={cursor}"))
        .await
        .assert_problem(400, "invalid_request");
    app.get("/api/workers?after=w-1")
        .await
        .assert_problem(400, "invalid_request");
}

/// An embedded Runtime that answers lists and its status with
/// `runtime_unavailable` while `down` is set.
#[derive(Debug)]
struct Flaky {
    inner: yoi_runtime_embedded::EmbeddedRuntime,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl yoi_runtime_api::Runtime for Flaky {
    fn id(&self) -> &yoi_runtime_api::RuntimeId {
        self.inner.id()
    }
    fn capabilities(&self) -> yoi_runtime_api::Capabilities {
        self.inner.capabilities()
    }
    async fn summary(&self) -> yoi_runtime_api::Result<yoi_runtime_api::dto::RuntimeSummary> {
        self.inner.summary().await
    }
    async fn status(&self) -> yoi_runtime_api::Result<yoi_runtime_api::dto::RuntimeStatus> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(yoi_runtime_api::RuntimeError::RuntimeUnavailable {
                runtime_id: self.id().clone(),
                message: "down for the test".into(),
            });
        }
        self.inner.status().await
    }
    async fn worker(
        &self,
        worker_id: &yoi_runtime_api::WorkerId,
    ) -> yoi_runtime_api::Result<yoi_runtime_api::dto::WorkerDetail> {
        self.inner.worker(worker_id).await
    }
    async fn create_worker(
        &self,
        request: yoi_runtime_api::dto::CreateWorkerRequest,
    ) -> yoi_runtime_api::Result<yoi_runtime_api::dto::WorkerDetail> {
        self.inner.create_worker(request).await
    }
    async fn list_workers(
        &self,
        query: yoi_runtime_api::dto::WorkerListQuery,
    ) -> yoi_runtime_api::Result<yoi_runtime_api::dto::WorkerPage> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(yoi_runtime_api::RuntimeError::RuntimeUnavailable {
                runtime_id: self.id().clone(),
                message: "down for the test".into(),
            });
        }
        self.inner.list_workers(query).await
    }
}

#[tokio::test]
async fn a_runtime_down_mid_pass_is_named_and_resumed_where_it_stood() {
    let flaky = Arc::new(Flaky {
        inner: common::embedded("beta"),
        down: std::sync::atomic::AtomicBool::new(false),
    });
    let mut registry = RuntimeRegistry::new();
    registry
        .register(Arc::new(common::embedded("alpha")))
        .await
        .unwrap();
    registry.register(flaky.clone()).await.unwrap();
    let app = TestApp::from_registry(registry, None, 1 << 20);
    let mut made = Vec::new();
    for n in 0..8 {
        let runtime_id = if n % 2 == 0 { "alpha" } else { "beta" };
        made.push(create(&app, runtime_id, json!({ "pass": "flaky" })).await);
    }
    let uri = "/api/workers?metadata.pass=flaky&limit=2";
    let first = app.get(uri).await;
    let mut seen = ids(&first.json);
    let mut cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    // beta goes down for one page: it is named, and alpha goes on.
    flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (page, next) = next_page(&app, uri, &cursor).await;
    assert_eq!(page["unavailable"], json!(["beta"]));
    seen.extend(ids(&page));
    cursor = next.unwrap();
    flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
    loop {
        let (page, next) = next_page(&app, uri, &cursor).await;
        assert_eq!(page["unavailable"], json!([]));
        seen.extend(ids(&page));
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    // beta's Workers come once its Runtime is back, each once.
    for id in &made {
        assert_eq!(seen.iter().filter(|s| *s == id).count(), 1, "{id}");
    }
}

/// A Runtime that stays down is warned about once, not on every request
/// that asks it, and said to be back once.
#[tokio::test]
async fn a_runtime_that_stays_down_is_warned_about_once() {
    let (logs, _guard) = common::LogBuffer::capture();
    let flaky = Arc::new(Flaky {
        inner: common::embedded("beta"),
        down: std::sync::atomic::AtomicBool::new(true),
    });
    let mut registry = RuntimeRegistry::new();
    registry.register(flaky.clone()).await.unwrap();
    let app = TestApp::from_registry(registry, None, 1 << 20);
    let warnings = |text: &str| text.lines().filter(|l| l.contains(" WARN ")).count();
    for _ in 0..3 {
        assert_eq!(app.get("/api/runtimes").await.status, 200);
        assert_eq!(
            app.get("/api/workers").await.json["unavailable"],
            json!(["beta"])
        );
    }
    let text = logs.text();
    assert_eq!(warnings(&text), 1, "{text}");
    assert!(
        text.contains("down for the test"),
        "the reason is in the warning: {text}"
    );
    flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..2 {
        assert_eq!(app.get("/api/workers").await.json["unavailable"], json!([]));
    }
    let text = logs.text();
    assert_eq!(
        text.matches("the runtime answers again").count(),
        1,
        "{text}"
    );
    // Down again: a new warning.
    flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
    app.get("/api/runtimes").await;
    assert_eq!(warnings(&logs.text()), 2, "{}", logs.text());
}
