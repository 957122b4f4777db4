//! Many subscribers of one remote Worker share one upstream stream, and
//! each gets every event once, in order.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::SecretString;
use yoi_runtime_api::dto::{InputRequest, WorkerEvent};
use yoi_runtime_api::{Runtime, RuntimeId, test_util};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime};
use yoi_runtime_remote::RemoteRuntime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_subscribers_share_one_upstream_stream() {
    let embedded = EmbeddedRuntime::new(EmbeddedOptions {
        runtime_id: RuntimeId::new("shared").unwrap(),
        ..EmbeddedOptions::default()
    })
    .unwrap();
    let base = common::serve(Arc::new(embedded.clone()), "t").await;
    let remote = RemoteRuntime::connect(
        &base,
        RuntimeId::new("shared").unwrap(),
        Some(SecretString::from("t")),
    )
    .await
    .unwrap();
    let worker = test_util::create(&remote, None).await;
    let mut streams = Vec::new();
    for _ in 0..200 {
        streams.push(remote.subscribe(&worker, None).await.unwrap());
    }
    assert_eq!(remote.upstream_streams_opened(), 1);
    for n in 0..3 {
        remote
            .send_input(&worker, InputRequest::new(format!("turn {n}")))
            .await
            .unwrap();
        // Waited for on the Runtime itself, so no other subscription opens.
        test_util::wait_idle(&embedded, &worker).await;
    }
    // Once one subscriber has read the turns, the share holds them...
    let log = test_util::all_events(&embedded, &worker).await;
    let mut first = streams.remove(0);
    let mut read_first = Vec::new();
    while read_first.len() < log.len() {
        let event = tokio::time::timeout(Duration::from_secs(20), first.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        read_first.push(event);
    }
    assert_eq!(read_first, log);
    // ...so a late subscriber with a cursor the share holds joins it too.
    let late = remote
        .subscribe(&worker, Some(log[2].cursor.clone()))
        .await
        .unwrap();
    assert_eq!(remote.upstream_streams_opened(), 1);
    remote.stop(&worker).await.unwrap();
    let log = test_util::all_events(&embedded, &worker).await;
    for stream in streams {
        let got: Vec<WorkerEvent> =
            tokio::time::timeout(Duration::from_secs(20), stream.collect::<Vec<_>>())
                .await
                .expect("every stream ends after worker_stopped")
                .into_iter()
                .map(Result::unwrap)
                .collect();
        assert_eq!(got, log);
    }
    let got: Vec<WorkerEvent> = late.map(Result::unwrap).collect().await;
    assert_eq!(got, log[3..]);
    assert_eq!(remote.upstream_streams_opened(), 1);

    // After the end of a stopped Worker's log the host answers 204: the
    // subscription is empty and ends at once, with no reconnect attempts
    // (those would take the backoff's seconds and end in an error).
    let after_end = remote
        .subscribe(&worker, Some(log.last().unwrap().cursor.clone()))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(1), after_end.collect::<Vec<_>>())
        .await
        .expect("ends at once");
    assert!(got.is_empty(), "{got:?}");
}
