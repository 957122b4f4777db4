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

use crate::runtime::Shared;
use crate::worker::{TurnOutcome, TurnTicket, Worker};

pub(crate) async fn run(worker: Arc<Worker>, shared: Arc<Shared>, ticket: TurnTicket) {
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
                    if !worker.append_delta(&shared, turn_id, delta) {
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
        _ = &mut cancelled => return,
        outcome = guarded => outcome,
    };
    let outcome = match outcome {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return,
        Err(_) => {
            tracing::error!(worker_id = %worker.id, "model backend panicked during a turn");
            TurnOutcome::Failed(FailureReason {
                code: FailureCode::Unavailable,
                message: "the model backend failed unexpectedly".to_owned(),
            })
        }
    };
    worker.finish_turn(&shared, turn_id, outcome);
}
