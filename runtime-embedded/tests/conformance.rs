//! The runtime-api conformance suite against `EmbeddedRuntime`.

mod common;

use std::sync::Arc;

use yoi_runtime_api::conformance::{self, Outcome};
use yoi_runtime_api::{DynRuntime, Runtime};

fn assert_all_passed(outcomes: &[(&str, Outcome)]) {
    // The embedded runtime supports everything the suite checks.
    for (name, outcome) in outcomes {
        assert_eq!(*outcome, Outcome::Passed, "{name} was skipped");
    }
    assert_eq!(outcomes.len(), conformance::cases().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_direct() {
    let rt = common::runtime_with_slow_profile();
    let outcomes = conformance::run_all(&rt).await;
    assert_all_passed(&outcomes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_arc_dyn_runtime() {
    let rt: Arc<DynRuntime> = Arc::new(common::runtime_with_slow_profile());
    let outcomes = conformance::run_all(rt.as_ref()).await;
    assert_all_passed(&outcomes);
    // The forwarding impl is itself a Runtime.
    let boxed: Box<dyn Runtime> = Box::new(rt);
    assert_eq!(boxed.id().as_str(), "backend-internal");
}

#[tokio::test(flavor = "current_thread")]
async fn conformance_on_a_current_thread_runtime() {
    let rt = common::runtime_with_slow_profile();
    assert_all_passed(&conformance::run_all(&rt).await);
}
