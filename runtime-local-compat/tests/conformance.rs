//! The conformance suite against the local-compat Runtime, with Workers
//! seeded by writing their record files.

mod common;

use std::sync::Arc;

use yoi_runtime_api::DynRuntime;
use yoi_runtime_api::conformance::{Outcome, cases, run_all_with};
use yoi_runtime_local_compat::LocalCompatRuntime;

/// What a read-only Runtime can show; every other case needs a capability
/// it does not have.
const READ_ONLY_PASSES: [&str; 6] = [
    "summary_and_status",
    "seeded_list_detail",
    "transcript_bounds",
    "unknown_worker",
    "invalid_ids",
    "unsupported_operations",
];

async fn check(rt: &DynRuntime, seeder: &common::FileSeeder) {
    let outcomes = run_all_with(rt, seeder).await;
    assert_eq!(outcomes.len(), cases().len());
    // Everything else is skipped for a missing capability, never failed.
    for (name, outcome) in &outcomes {
        if READ_ONLY_PASSES.contains(name) {
            assert_eq!(*outcome, Outcome::Passed, "{name}");
        } else {
            assert!(
                matches!(outcome, Outcome::Skipped(_)),
                "{name}: {outcome:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_compat_passes_the_read_cases_on_seeded_workers() {
    let workspace = common::workspace("conformance");
    let seeder = common::FileSeeder {
        workspace: workspace.clone(),
    };
    check(&LocalCompatRuntime::new(workspace.clone()), &seeder).await;
    let shared: Arc<DynRuntime> = Arc::new(LocalCompatRuntime::new(workspace));
    check(shared.as_ref(), &seeder).await;
}
