//! A subscription survives its runtime server restarting: the stream
//! reconnects on its own with `Last-Event-ID` and hands out every event
//! once, in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use secrecy::SecretString;
use tokio::sync::oneshot;
use yoi_runtime_api::conformance::SLOW_PROFILE;
use yoi_runtime_api::dto::{InputRequest, WorkerEvent};
use yoi_runtime_api::{DynRuntime, ErrorCode, ProfileName, Runtime, RuntimeId, test_util};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, ProfileConfig};
use yoi_runtime_remote::RemoteRuntime;

const TOKEN: &str = "reconnect-token";

/// Serves `runtime` on `addr` until the returned sender fires.
async fn serve_on(
    addr: std::net::SocketAddr,
    runtime: Arc<DynRuntime>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(yoi_runtime_server::serve(
        listener,
        runtime,
        SecretString::from(TOKEN),
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, server)
}

/// A Runtime with the slow echo profile, served on a free port of
/// 127.0.0.1 until the returned sender fires, and a client of it.
struct Served {
    embedded: EmbeddedRuntime,
    runtime: Arc<DynRuntime>,
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    remote: RemoteRuntime,
}

async fn served(runtime_id: &str) -> Served {
    let embedded = EmbeddedRuntime::new(EmbeddedOptions {
        runtime_id: RuntimeId::new(runtime_id).unwrap(),
        profiles: vec![ProfileConfig::echo(
            ProfileName::new(SLOW_PROFILE).unwrap(),
            Duration::from_millis(800),
        )],
        ..EmbeddedOptions::default()
    })
    .unwrap();
    let runtime: Arc<DynRuntime> = Arc::new(embedded.clone());
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, server) = serve_on(addr, runtime.clone()).await;
    let remote = RemoteRuntime::connect(
        &format!("http://{addr}"),
        RuntimeId::new(runtime_id).unwrap(),
        Some(SecretString::from(TOKEN)),
    )
    .await
    .unwrap();
    Served {
        embedded,
        runtime,
        addr,
        stop,
        server,
        remote,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_across_a_server_restart_with_no_gap() {
    let served = served("restarts").await;
    let remote = &served.remote;
    let worker = test_util::create(remote, Some(SLOW_PROFILE)).await;
    let mut stream = remote.subscribe(&worker, None).await.unwrap();
    remote
        .send_input(&worker, InputRequest::new("keep talking"))
        .await
        .unwrap();
    let mut seen: Vec<WorkerEvent> = Vec::new();
    // Read up to the turn's start, then take the server away mid-turn.
    while !seen.iter().any(|e| e.kind_name() == "turn_started") {
        seen.push(stream.next().await.unwrap().unwrap());
    }
    served.stop.send(()).unwrap();
    served.server.await.unwrap().unwrap();
    // The turn goes on in the Runtime while no server is up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (stop, _server) = serve_on(served.addr, served.runtime.clone()).await;
    while !seen.iter().any(|e| e.kind_name() == "turn_completed") {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the stream came back")
            .unwrap()
            .unwrap();
        seen.push(next);
    }
    remote.stop(&worker).await.unwrap();
    let rest: Vec<WorkerEvent> =
        tokio::time::timeout(Duration::from_secs(20), stream.collect::<Vec<_>>())
            .await
            .expect("the stream ends after worker_stopped")
            .into_iter()
            .map(Result::unwrap)
            .collect();
    seen.extend(rest);
    // Exactly the Runtime's own log: nothing missed, nothing twice.
    let log = test_util::all_events(&served.embedded, &worker).await;
    assert_eq!(seen, log);
    assert_eq!(seen.last().unwrap().kind_name(), "worker_stopped");
    drop(stop);
}

/// A host that went down is not dialled (and backed off from) by every
/// call: after the first finds it down, calls fail at once, and one is let
/// through every second or so, so the host is used again soon after it is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_host_that_went_down_fail_at_once_until_it_is_back() {
    let served = served("comes-back").await;
    let remote = &served.remote;
    let worker = test_util::create(remote, None).await;
    served.stop.send(()).unwrap();
    served.server.await.unwrap().unwrap();

    // The first call tries (with its retries, 500 ms of backoff) and finds
    // the host down.
    let err = remote.worker(&worker).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RuntimeUnavailable, "{err}");
    // Twenty more, each of which would back off as long again if it tried.
    let started = Instant::now();
    for _ in 0..20 {
        let err = remote.worker(&worker).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::RuntimeUnavailable, "{err}");
        assert!(err.to_string().contains("unreachable"), "{err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "calls to a host known to be down did not fail at once: {:?}",
        started.elapsed()
    );

    // Back up: a call gets through within a few tries, and then all do.
    let (_stop, _server) = serve_on(served.addr, served.runtime).await;
    let mut answered = false;
    for _ in 0..50 {
        if remote.worker(&worker).await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "the host was not used again after it came back");
    remote.worker(&worker).await.unwrap();
}
