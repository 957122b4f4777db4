//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use yoi_runtime_api::ProfileName;
use yoi_runtime_api::conformance::SLOW_PROFILE;
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, ProfileConfig};

/// A runtime with the `conformance-slow` profile the suite needs.
pub fn runtime_with_slow_profile() -> EmbeddedRuntime {
    EmbeddedRuntime::new(EmbeddedOptions {
        profiles: vec![ProfileConfig::echo(
            ProfileName::new(SLOW_PROFILE).unwrap(),
            Duration::from_millis(600),
        )],
        ..EmbeddedOptions::default()
    })
    .unwrap()
}

/// Waits until the Worker is idle with nothing queued.
pub async fn wait_idle(rt: &EmbeddedRuntime, worker: &yoi_runtime_api::WorkerId) {
    use yoi_runtime_api::Runtime;
    for _ in 0..2000 {
        let s = rt.worker(worker).await.unwrap().summary;
        if s.state == yoi_runtime_api::dto::WorkerState::Idle && s.pending_inputs == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("worker {worker} never became idle");
}

/// Every retained transcript entry of a Worker, page by page.
pub async fn transcript(
    rt: &EmbeddedRuntime,
    worker: &yoi_runtime_api::WorkerId,
) -> Vec<yoi_runtime_api::dto::TranscriptEntry> {
    use yoi_runtime_api::Runtime;
    let mut entries = Vec::new();
    let mut start = Some(0);
    while let Some(s) = start {
        let query = yoi_runtime_api::dto::TranscriptQuery {
            start: Some(s),
            limit: Some(200),
        };
        let page = rt.transcript(worker, query).await.unwrap();
        entries.extend(page.entries);
        start = page.next_start;
    }
    entries
}

/// Creates a Worker with `profile` (the default when `None`); returns its id.
pub async fn create(rt: &EmbeddedRuntime, profile: Option<&str>) -> yoi_runtime_api::WorkerId {
    use yoi_runtime_api::Runtime;
    let request = yoi_runtime_api::dto::CreateWorkerRequest {
        profile: profile.map(|p| ProfileName::new(p).unwrap()),
        ..Default::default()
    };
    rt.create_worker(request).await.unwrap().summary.worker_id
}
