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
//! Cases panic on a violation and return [`Outcome::Skipped`] when the
//! capability they exercise is off. The busy, queue, interrupt and cancel
//! cases need turns that last a while: the Runtime under test must offer a
//! profile named [`SLOW_PROFILE`] whose turns take at least 300 ms and stream
//! at least two deltas. Turns on the default profile must finish within
//! [`TURN_TIMEOUT`]. Cases need a Tokio runtime with timers.

use std::time::Duration;

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

mod inputs;
mod reads;
mod support;
mod workers;

pub use inputs::{
    busy_interrupt, busy_queue, busy_reject, idempotent_retry, input_acceptance, invalid_input,
};
pub use reads::{event_cursor_ordering, subscribe_resume, transcript_bounds};
pub use workers::{
    create_list_detail, fallback_profile, invalid_ids, stop_cancel_idempotent, unknown_worker,
    unsupported_operations,
};

type Case = for<'a> fn(
    &'a DynRuntime,
)
    -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>>;

/// Every case, by name.
pub fn cases() -> Vec<(&'static str, Case)> {
    macro_rules! case {
        ($name:ident) => {
            (stringify!($name), (|rt| Box::pin($name(rt))) as Case)
        };
    }
    vec![
        case!(create_list_detail),
        case!(fallback_profile),
        case!(input_acceptance),
        case!(invalid_input),
        case!(busy_reject),
        case!(busy_queue),
        case!(busy_interrupt),
        case!(idempotent_retry),
        case!(stop_cancel_idempotent),
        case!(transcript_bounds),
        case!(event_cursor_ordering),
        case!(subscribe_resume),
        case!(unknown_worker),
        case!(invalid_ids),
        case!(unsupported_operations),
    ]
}

/// Runs every case in order and returns each outcome. Panics on the first
/// violation, naming the case.
pub async fn run_all(rt: &DynRuntime) -> Vec<(&'static str, Outcome)> {
    let mut outcomes = Vec::new();
    for (name, case) in cases() {
        eprintln!("conformance: {name}");
        outcomes.push((name, case(rt).await));
    }
    outcomes
}
