//! What a turn sends to the model: the system prompt, the newest earlier
//! exchanges up to `max_context_entries`, and the input last.

mod common;

use yoi_runtime_api::test_util;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use yoi_runtime_api::dto::{BusyPolicy, InputRequest};
use yoi_runtime_api::{ProfileName, Runtime};
use yoi_runtime_embedded::backend::{
    BackendError, ChatRequest, ChatRole, DeltaStream, ModelBackend,
};
use yoi_runtime_embedded::{
    BackendConfig, EmbeddedOptions, EmbeddedRuntime, Limits, ProfileConfig,
};

/// Records every request and answers "ok".
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<ChatRequest>>);

#[async_trait]
impl ModelBackend for Recorder {
    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, BackendError> {
        self.0.lock().unwrap().push(request);
        Ok(Box::pin(futures_util::stream::iter([Ok("ok".to_owned())])))
    }
}

fn runtime(recorder: Arc<Recorder>, max_context_entries: usize) -> EmbeddedRuntime {
    EmbeddedRuntime::new(EmbeddedOptions {
        profiles: vec![ProfileConfig {
            name: ProfileName::new("rec").unwrap(),
            system_prompt: Some("be brief".into()),
            backend: BackendConfig::Custom(recorder),
        }],
        default_profile: ProfileName::new("rec").unwrap(),
        limits: Limits {
            max_context_entries,
            ..Limits::default()
        },
        ..EmbeddedOptions::default()
    })
    .unwrap()
}

fn shape(request: &ChatRequest) -> Vec<(ChatRole, &str)> {
    request
        .messages
        .iter()
        .map(|m| (m.role, m.content.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_is_bounded_to_the_newest_entries() {
    let recorder = Arc::new(Recorder::default());
    let rt = runtime(recorder.clone(), 3);
    let id = test_util::create(&rt, None).await;
    for text in ["one", "two", "three"] {
        rt.send_input(&id, InputRequest::new(text)).await.unwrap();
        test_util::wait_idle(&rt, &id).await;
    }
    let requests = recorder.0.lock().unwrap();
    assert_eq!(
        shape(&requests[0]),
        [(ChatRole::System, "be brief"), (ChatRole::User, "one")]
    );
    assert_eq!(
        shape(&requests[2]),
        [
            (ChatRole::System, "be brief"),
            (ChatRole::Assistant, "ok"),
            (ChatRole::User, "two"),
            (ChatRole::Assistant, "ok"),
            (ChatRole::User, "three"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_inputs_are_not_context_for_earlier_turns() {
    let recorder = Arc::new(Recorder::default());
    let rt = runtime(recorder.clone(), 200);
    let id = test_util::create(&rt, None).await;
    for text in ["a", "b", "c"] {
        rt.send_input(&id, InputRequest::new(text).on_busy(BusyPolicy::Queue))
            .await
            .unwrap();
    }
    test_util::wait_idle(&rt, &id).await;
    let requests = recorder.0.lock().unwrap();
    assert_eq!(requests.len(), 3);
    // The reply to "b" sees "a" and its reply, never "c", which was still queued.
    assert_eq!(
        shape(&requests[1]),
        [
            (ChatRole::System, "be brief"),
            (ChatRole::User, "a"),
            (ChatRole::Assistant, "ok"),
            (ChatRole::User, "b")
        ]
    );
    assert_eq!(shape(&requests[2]).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_turns_leave_the_context() {
    let recorder = Arc::new(Recorder::default());
    let rt = runtime(recorder.clone(), 200);
    let id = test_util::create(&rt, None).await;
    for text in ["keep", "drop one", "drop two"] {
        rt.send_input(&id, InputRequest::new(text)).await.unwrap();
        test_util::wait_idle(&rt, &id).await;
    }
    rt.rollback(&id, yoi_runtime_api::dto::RollbackRequest { turns: 2 })
        .await
        .unwrap();
    rt.send_input(&id, InputRequest::new("again"))
        .await
        .unwrap();
    test_util::wait_idle(&rt, &id).await;
    let requests = recorder.0.lock().unwrap();
    assert_eq!(
        shape(requests.last().unwrap()),
        [
            (ChatRole::System, "be brief"),
            (ChatRole::User, "keep"),
            (ChatRole::Assistant, "ok"),
            (ChatRole::User, "again"),
        ]
    );
}
