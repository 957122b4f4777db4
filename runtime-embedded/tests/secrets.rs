//! A sentinel API key planted where a credential could travel must never
//! appear in a DTO's JSON, an error, or `Debug` output.

mod mock_openai;

use std::time::Duration;

use futures_util::StreamExt;
use mock_openai::{MockServer, Reply};
use secrecy::SecretString;
use yoi_runtime_api::dto::{
    CreateWorkerRequest, EventQuery, InputRequest, TranscriptQuery, WorkerListQuery, WorkerState,
};
use yoi_runtime_api::{ProfileName, Runtime};
use yoi_runtime_embedded::backend::OpenAiConfig;
use yoi_runtime_embedded::{BackendConfig, EmbeddedOptions, EmbeddedRuntime, ProfileConfig};

const SENTINEL: &str = "sk-SENTINEL-5b2e77d1";

fn options(base_url: String) -> EmbeddedOptions {
    EmbeddedOptions {
        profiles: vec![ProfileConfig {
            name: ProfileName::new("remote").unwrap(),
            system_prompt: None,
            backend: BackendConfig::OpenAi(OpenAiConfig {
                base_url,
                model: "m".into(),
                api_key: Some(SecretString::from(SENTINEL)),
                timeout: Duration::from_secs(2),
                ..OpenAiConfig::new("", "")
            }),
        }],
        ..EmbeddedOptions::default()
    }
}

#[test]
fn debug_output_is_redacted() {
    let options = options("http://127.0.0.1:9/v1".into());
    insta::assert_snapshot!(format!("{:#?}", options.profiles[0]));
    let rt = EmbeddedRuntime::new(options).unwrap();
    insta::assert_snapshot!(format!("{rt:#?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_key_appears_in_no_output() {
    let server = MockServer::start().await;
    let rt = EmbeddedRuntime::new(options(server.base_url())).unwrap();
    let mut runtime_events = rt.subscribe_runtime(None).await.unwrap();
    let mut outputs: Vec<String> = vec![
        format!("{rt:?}"),
        format!("{:?}", options(server.base_url())),
    ];

    let worker = rt
        .create_worker(CreateWorkerRequest {
            profile: Some(ProfileName::new("remote").unwrap()),
            ..CreateWorkerRequest::default()
        })
        .await
        .unwrap();
    let id = worker.summary.worker_id.clone();
    // The provider echoes the key in its error body; then a good turn.
    server.push(Reply::Status(
        401,
        format!("{{\"error\":\"invalid key {SENTINEL}\"}}"),
    ));
    rt.send_input(&id, InputRequest::new("one")).await.unwrap();
    for _ in 0..400 {
        if rt.worker(&id).await.unwrap().summary.state == WorkerState::Idle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = rt
        .send_input(&id, InputRequest::new(" "))
        .await
        .unwrap_err();
    outputs.push(format!(
        "{err} {err:?} {}",
        serde_json::to_string(&err).unwrap()
    ));
    rt.stop(&id).await.unwrap();

    outputs.push(json(&rt.summary().await.unwrap()));
    outputs.push(json(&rt.status().await.unwrap()));
    outputs.push(json(
        &rt.list_workers(WorkerListQuery::default()).await.unwrap(),
    ));
    outputs.push(json(&rt.worker(&id).await.unwrap()));
    outputs.push(json(
        &rt.transcript(&id, TranscriptQuery::default())
            .await
            .unwrap(),
    ));
    let events = rt.events(&id, EventQuery::default()).await.unwrap();
    outputs.push(json(&events));
    outputs.push(format!("{events:?}"));
    let live: Vec<_> = rt.subscribe(&id, None).await.unwrap().collect().await;
    outputs.push(format!("{live:?}"));
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(50), runtime_events.next()).await
    {
        outputs.push(json(&event.unwrap()));
    }

    // The key did reach the provider, so it was really in play...
    let seen = server.seen.lock().unwrap().clone();
    assert!(seen[0].head.contains(SENTINEL));
    // ...and went nowhere else.
    assert!(outputs.len() > 10);
    for output in &outputs {
        assert!(!output.contains(SENTINEL), "sentinel leaked: {output}");
        assert!(!output.contains("SENTINEL"), "sentinel leaked: {output}");
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}
