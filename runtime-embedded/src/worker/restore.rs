//! Rebuilding a Worker from its store, and finishing what a crash
//! interrupted.

use std::sync::Arc;

use tokio::sync::oneshot;
use yoi_runtime_api::dto::{EntryRole, EntryStatus, FailureCode, FailureReason, WorkerState};

use super::remembered::RememberedInputs;
use super::{Inner, Parts, QueuedInput, RunningTurn, TurnOutcome, TurnTicket, Worker};
use crate::context::RuntimeContext;
use crate::log::{EventLog, Transcript};
use crate::profile::Profile;
use crate::store::StoredWorker;

/// The message of a turn a restart cut short.
pub(crate) const INTERRUPTED: &str = "interrupted by restart";

impl Worker {
    /// The Worker as its store kept it. Queued inputs are the user entries
    /// still marked partial; a reply still marked partial is a turn that
    /// was running when the process ended (see [`Worker::recover`]).
    pub(crate) fn restore(
        shared: &RuntimeContext,
        stored: StoredWorker,
        profile: Arc<Profile>,
        fallback: bool,
    ) -> Arc<Self> {
        let limits = &shared.limits;
        let transcript = Transcript::restore(
            limits.transcript_budget(),
            stored.entries,
            stored.status.transcript_len,
        );
        let queue = transcript
            .oldest_first()
            .filter(|e| e.role == EntryRole::User && e.status == EntryStatus::Partial)
            .filter_map(|e| {
                Some(QueuedInput {
                    input_id: e.input_id.clone()?,
                    user_index: e.index,
                })
            })
            .collect();
        let log = EventLog::restore(
            limits.event_budget(),
            shared.epoch.clone(),
            stored.events,
            stored.status.next_seq,
        );
        let worker = Self::from_parts(
            Parts {
                id: stored.meta.worker_id,
                profile,
                fallback,
                intent: stored.meta.intent,
                forked_from: stored.meta.forked_from,
                created_at: stored.meta.created_at,
                inner: Inner {
                    display_name: stored.meta.display_name,
                    metadata: stored.meta.metadata,
                    state: stored.status.state,
                    updated_at: stored.status.updated_at,
                    transcript,
                    log,
                    queue,
                    running: None,
                    client_ids: RememberedInputs::restore(stored.client_ids),
                    next_turn: 1,
                    // Not reported: the first change after loading tells the
                    // store what memory kept, which may be less than the disk
                    // holds (a lower limit, or the byte budget).
                    reported_retained: (0, 1),
                    forgotten: false,
                },
            },
            shared,
        );
        worker.account(&worker.read());
        worker
    }

    /// Ends a turn the last process left running as failed ("interrupted
    /// by restart", with its notice and `turn_failed` event), then starts
    /// the first queued input, whose ticket the caller runs. A Worker left
    /// `running` with nothing to finish goes back to idle.
    pub(crate) fn recover(&self, shared: &RuntimeContext) -> Option<TurnTicket> {
        let turn_id = {
            let mut locked = self.lock(shared);
            if locked.inner.state.is_terminal() {
                return None;
            }
            let reply = locked
                .inner
                .transcript
                .newest_first()
                .find(|e| e.role == EntryRole::Assistant && e.status == EntryStatus::Partial)
                .and_then(|e| Some((e.index, e.input_id.clone()?)));
            match reply {
                Some((reply_index, input_id)) => {
                    // Pose as the running turn, so it ends through the one
                    // path every turn ends by.
                    let turn_id = locked.inner.next_turn;
                    locked.inner.next_turn += 1;
                    let (cancel, _) = oneshot::channel();
                    locked.inner.running = Some(RunningTurn {
                        turn_id,
                        input_id,
                        reply_index,
                        cancel,
                    });
                    locked.set_state(WorkerState::Running);
                    Some(turn_id)
                }
                None => {
                    match locked.inner.queue.pop_front() {
                        Some(next) => return Some(locked.start_turn(next)),
                        None => locked.set_state(WorkerState::Idle),
                    }
                    None
                }
            }
        }?;
        let reason = FailureReason::new(FailureCode::Unavailable, INTERRUPTED);
        self.finish_turn(shared, turn_id, TurnOutcome::Failed(reason))
    }
}
