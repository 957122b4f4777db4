//! A turn as its Worker sees it: the conversation sent to the model, the
//! reply's deltas, and how the turn ends (then the next queued input
//! starts).

use yoi_runtime_api::Timestamp;
use yoi_runtime_api::dto::{EntryRole, EntryStatus, TranscriptEntry, WorkerEventKind, WorkerState};

use super::{Locked, TurnOutcome, TurnTicket, Worker};
use crate::backend::{ChatMessage, ChatRequest, ChatRole};
use crate::context::RuntimeContext;

impl Locked<'_> {
    /// The conversation for a turn on the input at `user_index`: the system
    /// prompt, the most recent earlier exchanges (at most
    /// `max_context_entries`, without inputs still queued or dropped), and
    /// the input last. Walks back from the newest entry, so the cost is
    /// bounded by the context size, not the transcript length.
    pub(super) fn conversation(&self, user_index: u64) -> ChatRequest {
        let max = self.shared.limits.max_context_entries;
        let mut history: Vec<ChatMessage> = self
            .inner
            .transcript
            .newest_first()
            .filter_map(|entry| {
                let role = match (entry.role, entry.status) {
                    _ if entry.index == user_index || entry.text.is_empty() => return None,
                    // Taken back: kept for people, never sent again.
                    (_, EntryStatus::RolledBack) => return None,
                    (EntryRole::User, EntryStatus::Complete) => ChatRole::User,
                    (EntryRole::Assistant, _) => ChatRole::Assistant,
                    _ => return None,
                };
                Some(ChatMessage {
                    role,
                    content: entry.text.clone(),
                })
            })
            .take(max)
            .collect();
        history.reverse();
        let mut messages = Vec::with_capacity(history.len() + 2);
        if let Some(prompt) = &self.worker.profile.system_prompt {
            messages.push(ChatMessage {
                role: ChatRole::System,
                content: prompt.clone(),
            });
        }
        messages.extend(history);
        if let Some(entry) = self.inner.transcript.get(user_index) {
            messages.push(ChatMessage {
                role: ChatRole::User,
                content: entry.text.clone(),
            });
        }
        ChatRequest { messages }
    }
}

impl Worker {
    /// Appends a delta to the running turn. False when the turn is no
    /// longer current (it was cancelled), so the task should stop.
    pub(crate) fn append_delta(
        &self,
        shared: &RuntimeContext,
        turn_id: u64,
        delta: String,
    ) -> bool {
        let mut locked = self.lock(shared);
        let Some(turn) = locked
            .inner
            .running
            .as_ref()
            .filter(|t| t.turn_id == turn_id)
        else {
            return false;
        };
        let (input_id, reply_index) = (turn.input_id.clone(), turn.reply_index);
        if locked.inner.transcript.append_text(reply_index, &delta) {
            locked.journal_append(reply_index, &delta);
        }
        locked.emit(WorkerEventKind::TextDelta {
            input_id,
            transcript_index: reply_index,
            delta,
        });
        true
    }

    /// Records how a turn ended and starts the next queued input, if any
    /// (none once the Runtime shuts down), returning its ticket.
    pub(crate) fn finish_turn(
        &self,
        shared: &RuntimeContext,
        turn_id: u64,
        outcome: TurnOutcome,
    ) -> Option<TurnTicket> {
        let mut locked = self.lock(shared);
        if !locked.is_current(turn_id) {
            return None;
        }
        let turn = locked.inner.running.take()?;
        let (input_id, transcript_index) = (turn.input_id, turn.reply_index);
        match outcome {
            TurnOutcome::Completed => {
                locked.set_entry_status(transcript_index, EntryStatus::Complete);
                locked.emit(WorkerEventKind::TurnCompleted {
                    input_id,
                    transcript_index,
                });
            }
            TurnOutcome::Failed(reason) => {
                // The message is ours or the provider's, already cleaned
                // (no key, no control characters, bounded).
                tracing::warn!(
                    worker_id = %self.id,
                    code = ?reason.code,
                    message = %reason.message,
                    "a turn failed"
                );
                locked.set_entry_status(transcript_index, EntryStatus::Failed);
                locked.push_entry(TranscriptEntry {
                    index: 0,
                    role: EntryRole::Notice,
                    text: format!("The turn failed: {}", reason.message),
                    at: Timestamp::now(),
                    status: EntryStatus::Complete,
                    input_id: Some(input_id.clone()),
                });
                locked.emit(WorkerEventKind::TurnFailed {
                    input_id,
                    transcript_index,
                    reason,
                });
            }
        }
        if shared.is_shutting_down() {
            // Queued inputs stay queued; nothing new starts.
            locked.set_state(WorkerState::Idle);
            return None;
        }
        match locked.inner.queue.pop_front() {
            Some(next) => Some(locked.start_turn(next)),
            None => {
                locked.set_state(WorkerState::Idle);
                None
            }
        }
    }
}
