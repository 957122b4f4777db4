//! Browser defences over HTTP: the `Host` allow-list, cross-site refusals,
//! and the session cookie with its CSRF check.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::live::{Live, read_sse};
use common::{EMBEDDED, Reply, TestApp};
use serde_json::json;
use std::net::SocketAddr;
use yoi_workspace_server::HostPolicy;

const TOKEN: &str = "browser-test-token";

/// Request headers, as (name, value) pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// A request with `headers`, and a JSON body when given.
fn request(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    match body {
        Some(body) => builder.body(Body::from(body.to_owned())).unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// The server as bound to 127.0.0.1:7840, so that `Host` is checked.
async fn loopback_app(token: Option<&str>) -> TestApp {
    let app = TestApp::with(
        None,
        token,
        yoi_workspace_server::state::DEFAULT_MAX_BODY_BYTES,
    )
    .await;
    let policy =
        HostPolicy::new(["yoi.lan".to_owned()]).bound_to(SocketAddr::from(([127, 0, 0, 1], 7840)));
    TestApp {
        state: app.state.with_host_policy(policy),
    }
}

async fn worker_state(app: &TestApp, worker: &str) -> String {
    let detail = app
        .request(request(
            Method::GET,
            &format!("/api/runtimes/{EMBEDDED}/workers/{worker}"),
            &[
                ("host", "localhost:7840"),
                ("authorization", &format!("Bearer {TOKEN}")),
            ],
            None,
        ))
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    detail.json["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_loopback_server_answers_loopback_and_listed_hosts_only() {
    let app = loopback_app(None).await;
    for host in [
        "localhost:7840",
        "127.0.0.1:7840",
        "[::1]:7840",
        "yoi.lan:7840",
    ] {
        let reply = app
            .request(request(
                Method::GET,
                "/api/runtimes",
                &[("host", host)],
                None,
            ))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{host}: {}", reply.text);
    }
    for path in ["/api/runtimes", "/healthz", "/api/session", "/nowhere"] {
        let reply = app
            .request(request(
                Method::GET,
                path,
                &[("host", "evil.example:7840")],
                None,
            ))
            .await;
        reply.assert_problem(403, "host_not_allowed");
        assert!(
            reply.json["detail"]
                .as_str()
                .unwrap()
                .contains("allowed_hosts")
        );
    }
}

#[tokio::test]
async fn serve_checks_the_host_of_a_real_loopback_listener() {
    let live = Live::serve(TestApp::new().await.state).await;
    let refused = live
        .client
        .get(live.url("/api/runtimes"))
        .header("host", "rebound.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let answered = live
        .client
        .get(live.url("/api/runtimes"))
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
}

#[tokio::test]
async fn cross_site_requests_cannot_change_state_token_or_not() {
    let app = loopback_app(None).await;
    let worker = app.create_worker(Some("slow")).await;
    let stop = format!("/api/runtimes/{EMBEDDED}/workers/{worker}/stop");
    let host = ("host", "localhost:7840");

    let refusals: [(Headers<'_>, u16, &str); 5] = [
        (
            &[host, ("origin", "http://evil.example")],
            403,
            "cross_site_request",
        ),
        (&[host, ("origin", "null")], 403, "cross_site_request"),
        (
            &[host, ("origin", "http://localhost:7841")],
            403,
            "cross_site_request",
        ),
        (
            &[host, ("sec-fetch-site", "cross-site")],
            403,
            "cross_site_request",
        ),
        (
            &[host, ("content-type", "text/plain")],
            415,
            "unsupported_media_type",
        ),
    ];
    for (headers, status, code) in refusals {
        let reply = app
            .request(request(Method::POST, &stop, headers, None))
            .await;
        reply.assert_problem(status, code);
    }
    // A form post to create a Worker is refused the same way.
    let form = app
        .request(request(
            Method::POST,
            &format!("/api/runtimes/{EMBEDDED}/workers"),
            &[host, ("content-type", "application/x-www-form-urlencoded")],
            Some("profile=slow"),
        ))
        .await;
    form.assert_problem(415, "unsupported_media_type");
    assert_eq!(
        worker_state(&app, &worker).await,
        "idle",
        "nothing was stopped"
    );

    // Same-origin, and requests without Origin (curl), go through.
    let same_origin = app
        .request(request(
            Method::POST,
            &stop,
            &[
                host,
                ("origin", "http://localhost:7840"),
                ("sec-fetch-site", "same-origin"),
            ],
            None,
        ))
        .await;
    assert!(same_origin.status.is_success(), "{}", same_origin.text);
    assert_eq!(worker_state(&app, &worker).await, "stopped");
}

async fn sign_in(app: &TestApp, token: &str) -> Reply {
    app.request(request(
        Method::POST,
        "/api/session",
        &[
            ("host", "localhost:7840"),
            ("content-type", "application/json"),
        ],
        Some(&json!({ "token": token }).to_string()),
    ))
    .await
}

#[tokio::test]
async fn the_token_is_exchanged_for_a_strict_http_only_session_cookie() {
    let app = loopback_app(Some(TOKEN)).await;
    let host = ("host", "localhost:7840");
    let anonymous = app
        .request(request(Method::GET, "/api/session", &[host], None))
        .await;
    assert_eq!(
        anonymous.json,
        json!({ "token_required": true, "signed_in": false })
    );

    sign_in(&app, "wrong")
        .await
        .assert_problem(401, "unauthorized");
    let signed = sign_in(&app, TOKEN).await;
    assert_eq!(signed.status, StatusCode::NO_CONTENT, "{}", signed.text);
    let set_cookie = signed.headers["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["yoi_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains(TOKEN), "the cookie is not the token");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |extra: &[(&'static str, &'static str)]| {
        let mut headers = vec![host, ("cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        headers
    };

    let status = app
        .request(request(
            Method::GET,
            "/api/session",
            &with_cookie(&[]),
            None,
        ))
        .await;
    assert_eq!(
        status.json,
        json!({ "token_required": true, "signed_in": true })
    );
    let runtimes = app
        .request(request(
            Method::GET,
            "/api/runtimes",
            &with_cookie(&[]),
            None,
        ))
        .await;
    assert_eq!(runtimes.status, StatusCode::OK, "{}", runtimes.text);

    // Changing state by cookie needs the console's header or a same-origin Origin.
    let create = format!("/api/runtimes/{EMBEDDED}/workers");
    let json_type = ("content-type", "application/json");
    let bare = app
        .request(request(
            Method::POST,
            &create,
            &with_cookie(&[json_type]),
            Some("{}"),
        ))
        .await;
    bare.assert_problem(403, "cross_site_request");
    for proof in [("x-yoi-csrf", "1"), ("origin", "http://localhost:7840")] {
        let created = app
            .request(request(
                Method::POST,
                &create,
                &with_cookie(&[json_type, proof]),
                Some("{}"),
            ))
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{proof:?}: {}",
            created.text
        );
    }
    // A wrong bearer token is not rescued by a good cookie.
    let wrong_bearer = app
        .request(request(
            Method::GET,
            "/api/runtimes",
            &with_cookie(&[("authorization", "Bearer nope")]),
            None,
        ))
        .await;
    wrong_bearer.assert_problem(401, "unauthorized");

    // Signing out ends the session and clears the cookie.
    let out = app
        .request(request(
            Method::DELETE,
            "/api/session",
            &with_cookie(&[]),
            None,
        ))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    app.request(request(
        Method::GET,
        "/api/runtimes",
        &with_cookie(&[]),
        None,
    ))
    .await
    .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn behind_a_tls_proxy_the_session_cookie_is_secure() {
    let app = loopback_app(Some(TOKEN)).await;
    let cookie_of = |reply: &Reply| reply.headers["set-cookie"].to_str().unwrap().to_owned();
    let body = json!({ "token": TOKEN }).to_string();
    let plain = sign_in(&app, TOKEN).await;
    assert!(
        !cookie_of(&plain).contains("Secure"),
        "{}",
        cookie_of(&plain)
    );
    for proxy in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=192.0.2.60;proto=https"),
    ] {
        let signed = app
            .request(request(
                Method::POST,
                "/api/session",
                &[
                    ("host", "localhost:7840"),
                    ("content-type", "application/json"),
                    proxy,
                ],
                Some(&body),
            ))
            .await;
        assert_eq!(signed.status, StatusCode::NO_CONTENT, "{}", signed.text);
        assert!(
            cookie_of(&signed).ends_with("; Secure"),
            "{}",
            cookie_of(&signed)
        );
        let out = app
            .request(request(
                Method::DELETE,
                "/api/session",
                &[("host", "localhost:7840"), proxy],
                None,
            ))
            .await;
        assert!(cookie_of(&out).contains("Max-Age=0"), "{}", cookie_of(&out));
        assert!(cookie_of(&out).ends_with("; Secure"), "{}", cookie_of(&out));
    }
}

#[tokio::test]
async fn without_a_token_sign_in_is_a_no_op() {
    let app = loopback_app(None).await;
    let status = app
        .request(request(
            Method::GET,
            "/api/session",
            &[("host", "localhost")],
            None,
        ))
        .await;
    assert_eq!(
        status.json,
        json!({ "token_required": false, "signed_in": true })
    );
    let signed = sign_in(&app, "anything").await;
    assert_eq!(signed.status, StatusCode::NO_CONTENT);
    assert!(signed.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn an_event_stream_authenticates_by_cookie() {
    let state = TestApp::with(
        None,
        Some(TOKEN),
        yoi_workspace_server::state::DEFAULT_MAX_BODY_BYTES,
    )
    .await
    .state;
    let live = Live::serve(state).await;
    let signed = live
        .client
        .post(live.url("/api/session"))
        .header("content-type", "application/json")
        .body(json!({ "token": TOKEN }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 204);
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let created = live
        .client
        .post(live.url(&format!("/api/runtimes/{EMBEDDED}/workers")))
        .header("cookie", &cookie)
        .header("x-yoi-csrf", "1")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let worker: serde_json::Value = created.json().await.unwrap();
    let worker = worker["worker_id"].as_str().unwrap();
    let stream = live
        .client
        .get(live.url(&format!(
            "/api/runtimes/{EMBEDDED}/workers/{worker}/events/stream"
        )))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let events = read_sse(stream, |event| {
        event.event.as_deref() == Some("worker_created")
    })
    .await;
    assert!(
        events
            .iter()
            .any(|e| e.event.as_deref() == Some("worker_created")),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let app = loopback_app(Some(TOKEN)).await;
    let host = ("host", "localhost:7840");
    let index = app.request(request(Method::GET, "/", &[host], None)).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.headers["content-type"], "text/html; charset=utf-8");
    let policy = index.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert_eq!(index.headers["x-content-type-options"], "nosniff");
    assert!(
        index
            .text
            .contains("<script type=\"module\" src=\"/console/app.js\">")
    );
    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
    ] {
        let reply = app
            .request(request(
                Method::GET,
                &format!("/console/{file}"),
                &[host],
                None,
            ))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{file}");
        assert_eq!(reply.headers["content-type"], content_type, "{file}");
        // Nothing is fetched from anywhere else: no CDN, no other origin.
        for external in ["http://", "https://", "//cdn", "import(\"http"] {
            assert!(!reply.text.contains(external), "{file} mentions {external}");
        }
    }
    app.request(request(
        Method::GET,
        "/console/../Cargo.toml",
        &[host],
        None,
    ))
    .await
    .assert_problem(404, "route_not_found");
    app.request(request(Method::GET, "/console/missing.js", &[host], None))
        .await
        .assert_problem(404, "route_not_found");
    // The rebinding defence covers the console too.
    app.request(request(Method::GET, "/", &[("host", "evil.example")], None))
        .await
        .assert_problem(403, "host_not_allowed");
}
