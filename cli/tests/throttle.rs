//! Wrong tokens are throttled per client address on a real listener: past
//! its budget an address gets `429 too_many_attempts` without its token
//! being compared, the right one included; other addresses are unaffected;
//! each refill gives one attempt back. Behind a trusted proxy each client
//! it names has its own budget, and a client that is not a trusted proxy
//! cannot choose its budget with a forwarding header.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Listening, TestApp};
use serde_json::{Value, json};
use yoi_workspace_server::state::DEFAULT_MAX_BODY_BYTES;
use yoi_workspace_server::{FailedAuthLimits, TrustedProxies};

const TOKEN: &str = "throttle-test-token-0123456789";

async fn serve(limits: FailedAuthLimits) -> Listening {
    serve_behind(limits, TrustedProxies::default()).await
}

async fn serve_behind(limits: FailedAuthLimits, proxies: TrustedProxies) -> Listening {
    let state = TestApp::with(None, Some(TOKEN), DEFAULT_MAX_BODY_BYTES)
        .await
        .state
        .with_failed_auth_limits(limits)
        .with_trusted_proxies(proxies);
    Listening::start(state).await
}

/// A client whose connections come from `127.0.0.last`.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

async fn runtimes(client: &reqwest::Client, base: &str, token: &str) -> reqwest::Response {
    runtimes_for(client, base, token, None).await
}

/// [`runtimes`] with `X-Forwarded-For: for_client` when given.
async fn runtimes_for(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    for_client: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .get(format!("{base}/api/runtimes"))
        .bearer_auth(token);
    if let Some(for_client) = for_client {
        request = request.header("x-forwarded-for", for_client);
    }
    request.send().await.unwrap()
}

async fn assert_throttled(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts", "{body}");
    assert_eq!(body["retry_after_secs"], retry_after, "{body}");
    retry_after
}

#[tokio::test]
async fn an_address_out_of_attempts_is_refused_even_the_right_token() {
    let server = serve(FailedAuthLimits {
        burst: 3,
        refill: Duration::from_secs(60),
    })
    .await;
    let base = server.base();
    let guesser = client_from(1);
    for _ in 0..3 {
        let answer = runtimes(&guesser, &base, "wrong").await;
        assert_eq!(answer.status(), 401);
    }
    let retry_after = assert_throttled(runtimes(&guesser, &base, "wrong").await).await;
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The right token is not compared either, on every way in.
    assert_throttled(runtimes(&guesser, &base, TOKEN).await).await;
    let sign_in = guesser
        .post(format!("{base}/api/session"))
        .json(&json!({ "token": TOKEN }))
        .send()
        .await
        .unwrap();
    assert_throttled(sign_in).await;
    let session: Value = guesser
        .get(format!("{base}/api/session"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["signed_in"], false, "{session}");

    // Another address has its own budget.
    let other = client_from(2);
    assert_eq!(runtimes(&other, &base, TOKEN).await.status(), 200);
    let _ = server.stop.send(());
}

#[tokio::test]
async fn wrong_sign_ins_spend_the_same_budget_and_a_refill_gives_one_back() {
    // Long enough that the few requests around each step fit in one refill
    // even on a loaded machine.
    let refill = Duration::from_secs(1);
    let server = serve(FailedAuthLimits { burst: 2, refill }).await;
    let base = server.base();
    let client = client_from(3);
    for _ in 0..2 {
        let answer = client
            .post(format!("{base}/api/session"))
            .json(&json!({ "token": "wrong" }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    assert_throttled(runtimes(&client, &base, TOKEN).await).await;
    tokio::time::sleep(refill + Duration::from_millis(100)).await;
    // One attempt back: the right token is compared, and costs nothing.
    assert_eq!(runtimes(&client, &base, TOKEN).await.status(), 200);
    assert_eq!(runtimes(&client, &base, TOKEN).await.status(), 200);
    assert_eq!(runtimes(&client, &base, "wrong").await.status(), 401);
    assert_throttled(runtimes(&client, &base, TOKEN).await).await;
    let _ = server.stop.send(());
}

#[tokio::test]
async fn requests_without_a_token_spend_nothing() {
    let server = serve(FailedAuthLimits {
        burst: 1,
        refill: Duration::from_secs(60),
    })
    .await;
    let base = server.base();
    let client = client_from(4);
    for _ in 0..5 {
        let answer = client
            .get(format!("{base}/api/runtimes"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    assert_eq!(runtimes(&client, &base, TOKEN).await.status(), 200);
    let _ = server.stop.send(());
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    // 127.0.0.5 is the proxy; 127.0.0.6 is not trusted.
    let proxies = TrustedProxies::parse(["127.0.0.5"]).unwrap();
    let server = serve_behind(
        FailedAuthLimits {
            burst: 2,
            refill: Duration::from_secs(60),
        },
        proxies,
    )
    .await;
    let base = server.base();
    let proxy = client_from(5);
    let guesser = Some("6.6.6.6, 203.0.113.1");
    for _ in 0..2 {
        let answer = runtimes_for(&proxy, &base, "wrong", guesser).await;
        assert_eq!(answer.status(), 401);
    }
    assert_throttled(runtimes_for(&proxy, &base, TOKEN, guesser).await).await;
    // What the guesser writes left of the proxy's entry changes nothing.
    assert_throttled(runtimes_for(&proxy, &base, TOKEN, Some("198.51.100.9, 203.0.113.1")).await)
        .await;
    // Another client behind the same proxy, on the same connection pool.
    assert_eq!(
        runtimes_for(&proxy, &base, TOKEN, Some("203.0.113.2"))
            .await
            .status(),
        200
    );

    // A peer that is not a trusted proxy is its own client, whatever it
    // forwards.
    let direct = client_from(6);
    for n in 0..2 {
        let forged = format!("203.0.113.{}", 10 + n);
        let answer = runtimes_for(&direct, &base, "wrong", Some(&forged)).await;
        assert_eq!(answer.status(), 401);
    }
    assert_throttled(runtimes_for(&direct, &base, TOKEN, Some("203.0.113.99")).await).await;
    let _ = server.stop.send(());
}
