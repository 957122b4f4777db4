//! Taking back a Worker's last turns.

use yoi_runtime_api::dto::{EntryRole, EntryStatus, WorkerDetail, WorkerEventKind};
use yoi_runtime_api::{BusyReason, Result, RuntimeError};

use super::Worker;
use crate::context::RuntimeContext;

impl Worker {
    /// Marks every entry of the last `turns` turns that ran `rolled_back`
    /// (they stay, with their indices, and leave the model's context) and
    /// logs `rolled_back`. Refused while a turn runs or inputs wait.
    pub(crate) fn rollback(&self, shared: &RuntimeContext, turns: u32) -> Result<WorkerDetail> {
        if turns == 0 {
            return Err(RuntimeError::invalid_request("turns must be at least 1"));
        }
        let mut locked = self.lock(shared);
        if locked.inner.running.is_some() || !locked.inner.queue.is_empty() {
            return Err(RuntimeError::WorkerBusy {
                runtime_id: shared.id.clone(),
                worker_id: self.id.clone(),
                reason: BusyReason::TurnRunning,
            });
        }
        // A turn starts at its input, which is complete once the turn ran.
        let starts: Vec<u64> = locked
            .inner
            .transcript
            .newest_first()
            .filter(|e| e.role == EntryRole::User && e.status == EntryStatus::Complete)
            .map(|e| e.index)
            .take(turns as usize)
            .collect();
        if starts.len() < turns as usize {
            let can = match starts.len() {
                0 => "no turn can be rolled back".to_owned(),
                1 => "only 1 turn can be rolled back".to_owned(),
                n => format!("only {n} turns can be rolled back"),
            };
            return Err(RuntimeError::invalid_request(format!(
                "turns is {turns}, but {can}"
            )));
        }
        let first_index = starts[starts.len() - 1];
        let taken: Vec<u64> = locked
            .inner
            .transcript
            .oldest_first()
            .filter(|e| e.index >= first_index && e.status != EntryStatus::RolledBack)
            .map(|e| e.index)
            .collect();
        for index in taken {
            locked.set_entry_status(index, EntryStatus::RolledBack);
        }
        locked.emit(WorkerEventKind::RolledBack { first_index, turns });
        drop(locked);
        Ok(self.detail(shared))
    }
}
