//! Renaming a Worker and patching its metadata.

use yoi_runtime_api::Result;
use yoi_runtime_api::dto::{
    UpdateWorkerRequest, WorkerDetail, WorkerEventKind, apply_metadata_patch,
};

use super::Worker;
use crate::context::RuntimeContext;

impl Worker {
    /// Applies `request` (already validated on its own) in one critical
    /// section, logs `worker_updated` with the new name and metadata, and
    /// answers the Worker as it is now. Works in any state.
    pub(crate) fn update(
        &self,
        shared: &RuntimeContext,
        request: &UpdateWorkerRequest,
    ) -> Result<WorkerDetail> {
        let mut locked = self.lock(shared);
        // Checked in full before anything changes.
        let metadata = match &request.metadata {
            Some(patch) => apply_metadata_patch(&locked.inner.metadata, patch)?,
            None => locked.inner.metadata.clone(),
        };
        if let Some(display_name) = &request.display_name {
            locked.inner.display_name = display_name.clone();
        }
        locked.inner.metadata = metadata;
        locked.journal_meta();
        let display_name = locked.inner.display_name.clone();
        let metadata = locked.inner.metadata.clone();
        locked.emit(WorkerEventKind::WorkerUpdated {
            display_name,
            metadata,
        });
        drop(locked);
        Ok(self.detail(shared))
    }
}
