//! The conformance suite against `RemoteRuntime` -> runtime server ->
//! `EmbeddedRuntime`, over loopback, directly and through
//! `Arc<dyn Runtime>`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use yoi_runtime_api::conformance::{self, Outcome, SLOW_PROFILE};
use yoi_runtime_api::{DynRuntime, ErrorCode, ProfileName, Runtime, RuntimeId};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, ProfileConfig};
use yoi_runtime_remote::RemoteRuntime;

const TOKEN: &str = "remote-test-token";

/// A runtime server on 127.0.0.1 over an embedded Runtime with the slow
/// profile the suite needs; returns its base URL.
async fn runtime_server() -> String {
    let embedded = EmbeddedRuntime::new(EmbeddedOptions {
        runtime_id: RuntimeId::new("far-away").unwrap(),
        profiles: vec![ProfileConfig::echo(
            ProfileName::new(SLOW_PROFILE).unwrap(),
            Duration::from_millis(600),
        )],
        ..EmbeddedOptions::default()
    })
    .unwrap();
    common::serve(Arc::new(embedded), TOKEN).await
}

fn assert_all_passed(outcomes: &[(&str, Outcome)]) {
    for (name, outcome) in outcomes {
        assert_eq!(*outcome, Outcome::Passed, "{name} was skipped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_a_runtime_server() {
    let base = runtime_server().await;
    let id = RuntimeId::new("far-away").unwrap();
    let remote = RemoteRuntime::connect(&base, id.clone(), Some(SecretString::from(TOKEN)))
        .await
        .unwrap();
    assert_all_passed(&conformance::run_all(&remote).await);
    let shared: Arc<DynRuntime> = Arc::new(remote);
    assert_all_passed(&conformance::run_all(shared.as_ref()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_or_a_dead_peer_never_leaks_its_address() {
    let base = runtime_server().await;
    let id = RuntimeId::new("far-away").unwrap();
    let err = RemoteRuntime::connect(&base, id.clone(), Some(SecretString::from("wrong")))
        .await
        .unwrap_err();
    // Not `unauthorized`: that would tell this client's callers that their
    // own credentials failed.
    assert_eq!(err.code(), ErrorCode::RuntimeUnavailable, "{err}");
    assert!(yoi_runtime_remote::refused_our_token(&err), "{err}");
    // Past the host's wrong-token budget for this address (10 by default),
    // the host refuses the address: this client's callers see the host
    // unavailable, never the host's throttle as their own.
    let mut last = err;
    for _ in 0..10 {
        last = RemoteRuntime::connect(&base, id.clone(), Some(SecretString::from("wrong")))
            .await
            .unwrap_err();
    }
    assert_eq!(last.code(), ErrorCode::RuntimeUnavailable, "{last}");
    assert!(last.to_string().contains("wrong tokens"), "{last}");
    assert!(yoi_runtime_remote::refused_our_token(&last), "{last}");
    // Nothing listens on port 9 of 127.0.0.1.
    let err = RemoteRuntime::connect("http://127.0.0.1:9", id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RuntimeUnavailable);
    let text = format!("{err} {err:?}");
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert!(text.contains("unreachable"), "{text}");
    // The Debug of a connected client names no address or token either
    // (after the host gave this address an attempt back: one a second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let remote = RemoteRuntime::connect(
        &base,
        RuntimeId::new("far-away").unwrap(),
        Some(SecretString::from(TOKEN)),
    )
    .await
    .unwrap();
    let debug = format!("{remote:?}");
    assert!(!debug.contains(TOKEN) && !debug.contains(&base), "{debug}");
    assert_eq!(
        remote.summary().await.unwrap().implementation,
        yoi_runtime_api::dto::ImplementationKind::Remote
    );
}
