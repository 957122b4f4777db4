//! The store that keeps nothing.

use async_trait::async_trait;
use yoi_runtime_api::Timestamp;
use yoi_runtime_api::WorkerId;
use yoi_runtime_api::dto::{PageKey, PassOrder, WorkerCounts, WorkerFilter};

use super::{Change, LoadBounds, StoreError, StoredSummary, StoredWorker, Ticket, WorkerStore};

/// Keeps nothing: Workers live in the Runtime's memory only and are gone
/// when the process ends. Every ticket is durable at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryStore;

#[async_trait]
impl WorkerStore for MemoryStore {
    fn persistent(&self) -> bool {
        false
    }

    fn record(&self, _: Vec<Change>) -> Ticket {
        Ticket(0)
    }

    fn recorded(&self) -> Ticket {
        Ticket(0)
    }

    fn is_durable(&self, _: Ticket) -> bool {
        true
    }

    async fn durable(&self, _: Ticket) -> Result<(), StoreError> {
        Ok(())
    }

    fn load(&self, _: &WorkerId, _: LoadBounds) -> Result<Option<StoredWorker>, StoreError> {
        Ok(None)
    }

    fn search(
        &self,
        _: &PassOrder,
        _: &WorkerFilter,
        _: Option<&PageKey>,
        _: usize,
    ) -> Result<Option<Vec<(PageKey, StoredSummary)>>, StoreError> {
        Ok(Some(Vec::new()))
    }

    fn count(&self, _: &WorkerFilter) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn counts(&self) -> Result<WorkerCounts, StoreError> {
        Ok(WorkerCounts::default())
    }

    fn unfinished(&self) -> Result<Vec<WorkerId>, StoreError> {
        Ok(Vec::new())
    }

    fn stopped(&self) -> Result<Vec<(WorkerId, Timestamp)>, StoreError> {
        Ok(Vec::new())
    }
}
