//! The conformance suite: behaviour every [`Runtime`](crate::Runtime) must
//! show, as plain `async fn` cases over a [`DynRuntime`].
//!
//! An implementation runs it from its own tests, directly and through
//! `Arc<dyn Runtime>`:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn conformance() {
//!     let rt = my_runtime_with_a_slow_profile();
//!     yoi_runtime_api::conformance::run_all(&rt).await;
//! }
//! ```
//!
//! The read cases (list, detail, transcript) need Workers with a known
//! transcript. A [`Seeder`] makes them: by default [`ThroughInputs`]
//! creates a Worker and sends it input; a read-only Runtime passes its own
//! seeder (writing its source directly) to [`run_all_with`], so it runs the
//! read cases on seeded data instead of skipping them.
//!
//! Cases panic on a violation and return [`Outcome::Skipped`] when the
//! capability they exercise is off. The busy, queue, interrupt and cancel
//! cases need turns that last a while: the Runtime under test must offer a
//! profile named [`SLOW_PROFILE`] whose turns take at least 300 ms and stream
//! at least two deltas. Turns on the default profile must finish within
//! [`TURN_TIMEOUT`]. Cases need a Tokio runtime with timers.

use std::time::Duration;

use async_trait::async_trait;

use crate::dto::{BusyPolicy, WorkerState};
use crate::id::WorkerId;
use crate::runtime::DynRuntime;

/// The profile whose turns are slow enough to observe a running turn.
pub const SLOW_PROFILE: &str = "conformance-slow";
/// How long a case waits for a turn or a state before failing.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(20);

/// What a case did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and every assertion held.
    Passed,
    /// The capability it needs is off; it checked nothing.
    Skipped(&'static str),
}

macro_rules! require {
    ($caps:expr, $($flag:ident),+) => {
        $(if !$caps.$flag {
            return Outcome::Skipped(stringify!($flag));
        })+
    };
}

mod fork;
mod inputs;
mod reads;
mod rollback;
mod runtime_level;
mod search;
pub mod support;
mod update;
mod workers;

pub use fork::fork_worker;
pub use inputs::{
    busy_interrupt, busy_queue, busy_reject, idempotent_retry, input_acceptance, invalid_input,
};
pub use reads::{event_cursor_ordering, seeded_list_detail, subscribe_resume, transcript_bounds};
pub use rollback::rollback;
pub use runtime_level::{profile_list, runtime_stream, summary_and_status};
pub use search::{
    PassChange, PassFilter, check_paging_pass, page_all, paging_pass, search_workers,
};
pub use update::update_worker;
pub use workers::{
    create_list_detail, delete_worker, fallback_profile, invalid_ids, stop_cancel_idempotent,
    unknown_worker, unsupported_operations,
};

/// Makes Workers with a known transcript for the read cases.
#[async_trait]
pub trait Seeder: Send + Sync {
    /// Whether this seeder can make Workers in `rt`.
    fn can_seed(&self, rt: &DynRuntime) -> bool;

    /// Makes an idle Worker in `rt` named `display_name` whose transcript
    /// is, in order, each of `inputs` as a complete user entry followed by
    /// one complete assistant reply; returns its id.
    async fn seed(&self, rt: &DynRuntime, display_name: &str, inputs: &[&str]) -> WorkerId;
}

/// The seeder for Runtimes that create Workers and take input: create,
/// then send each input and wait for its reply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThroughInputs;

#[async_trait]
impl Seeder for ThroughInputs {
    fn can_seed(&self, rt: &DynRuntime) -> bool {
        let caps = rt.capabilities();
        caps.create_worker && caps.send_input
    }

    async fn seed(&self, rt: &DynRuntime, display_name: &str, inputs: &[&str]) -> WorkerId {
        let request = crate::dto::CreateWorkerRequest {
            display_name: Some(display_name.to_owned()),
            ..Default::default()
        };
        let worker = rt.create_worker(request).await.unwrap().summary.worker_id;
        for text in inputs {
            support::send(rt, &worker, text, BusyPolicy::Reject).await;
            support::wait_idle(rt, &worker).await;
        }
        let summary = rt.worker(&worker).await.unwrap().summary;
        assert_eq!(summary.state, WorkerState::Idle);
        worker
    }
}

type Case = for<'a> fn(
    &'a DynRuntime,
    &'a dyn Seeder,
)
    -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>>;

/// Every case, by name.
pub fn cases() -> Vec<(&'static str, Case)> {
    macro_rules! case {
        ($name:ident) => {
            (stringify!($name), (|rt, _| Box::pin($name(rt))) as Case)
        };
        ($name:ident, seeded) => {
            (
                stringify!($name),
                (|rt, seeder| Box::pin($name(rt, seeder))) as Case,
            )
        };
    }
    vec![
        case!(summary_and_status),
        case!(profile_list),
        case!(runtime_stream),
        case!(seeded_list_detail, seeded),
        case!(create_list_detail),
        case!(fallback_profile),
        case!(input_acceptance),
        case!(invalid_input),
        case!(busy_reject),
        case!(busy_queue),
        case!(busy_interrupt),
        case!(idempotent_retry),
        case!(stop_cancel_idempotent),
        case!(delete_worker),
        case!(update_worker),
        case!(rollback),
        case!(fork_worker),
        case!(search_workers),
        case!(paging_pass),
        case!(transcript_bounds, seeded),
        case!(event_cursor_ordering),
        case!(subscribe_resume),
        case!(unknown_worker),
        case!(invalid_ids),
        case!(unsupported_operations),
    ]
}

/// Runs every case in order, seeding through inputs, and returns each
/// outcome. Panics on the first violation, naming the case.
pub async fn run_all(rt: &DynRuntime) -> Vec<(&'static str, Outcome)> {
    run_all_with(rt, &ThroughInputs).await
}

/// [`run_all`] with another [`Seeder`], for Runtimes that cannot take input.
pub async fn run_all_with(rt: &DynRuntime, seeder: &dyn Seeder) -> Vec<(&'static str, Outcome)> {
    let mut outcomes = Vec::new();
    for (name, case) in cases() {
        eprintln!("conformance: {name}");
        outcomes.push((name, case(rt, seeder).await));
    }
    outcomes
}
