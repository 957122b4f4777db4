//! The task that runs one turn.
//!
//! A turn is the only thing a Worker spawns: an idle Worker costs no task.
//! The task streams the reply from the profile's backend and writes each
//! delta through the Worker. Whoever cancels the turn (cancel, stop,
//! interrupt) records the cancellation in the Worker first and then signals
//! the task, which stops without writing; a late write from a cancelled turn
//! is refused because the Worker checks the turn id.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use yoi_runtime_api::dto::{FailureCode, FailureReason};

use crate::context::RuntimeContext;
use crate::worker::{TurnOutcome, TurnTicket, Worker};

/// Runs `ticket` as a task tracked by the Runtime; when the turn ends and
/// an input was queued behind it, the same task runs that one next.
pub(crate) fn spawn(worker: Arc<Worker>, context: Arc<RuntimeContext>, ticket: TurnTicket) {
    let tracker = context.turns.clone();
    tracker.spawn(async move {
        let mut next = Some(ticket);
        while let Some(ticket) = next {
            next = run(&worker, &context, ticket).await;
        }
    });
}

/// Runs one turn; returns the next queued turn to run, if any.
async fn run(worker: &Worker, shared: &RuntimeContext, ticket: TurnTicket) -> Option<TurnTicket> {
    let TurnTicket {
        turn_id,
        request,
        mut cancelled,
    } = ticket;
    let backend = worker.backend();
    let drive = async {
        let mut stream = match backend.stream(request).await {
            Ok(stream) => stream,
            Err(err) => return Some(TurnOutcome::Failed(err.into_reason())),
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(delta) if delta.is_empty() => {}
                Ok(delta) => {
                    if !worker.append_delta(shared, turn_id, delta) {
                        return None;
                    }
                }
                Err(err) => return Some(TurnOutcome::Failed(err.into_reason())),
            }
        }
        Some(TurnOutcome::Completed)
    };
    // A panicking backend must not leave the Worker running forever.
    let guarded = AssertUnwindSafe(drive).catch_unwind();
    let outcome = tokio::select! {
        biased;
        // Fired or dropped: the canceller already recorded the end.
        _ = &mut cancelled => return None,
        outcome = guarded => outcome,
    };
    let outcome = match outcome {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return None,
        Err(_) => {
            tracing::error!(worker_id = %worker.id, "model backend panicked during a turn");
            TurnOutcome::Failed(FailureReason::new(
                FailureCode::Unavailable,
                "the model backend failed unexpectedly",
            ))
        }
    };
    worker.finish_turn(shared, turn_id, outcome)
}
