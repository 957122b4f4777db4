//! Where a runtime keeps its Workers.
//!
//! The [`Store`] trait is the seam for a durable store: today only
//! [`MemoryStore`] exists, and a Worker's transcript and events live in the
//! Worker itself, so nothing survives a restart (`persistent_store = false`).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use yoi_runtime_api::WorkerId;

use crate::worker::Worker;

/// A directory of Workers, sorted by id.
pub(crate) trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Adds a Worker. Ids are unique by construction.
    fn insert(&self, worker: Arc<Worker>);
    /// Forgets a Worker; false when it was not there.
    fn remove(&self, id: &WorkerId) -> bool;
    /// The Worker with this id.
    fn get(&self, id: &WorkerId) -> Option<Arc<Worker>>;
    /// Up to `limit` Workers after `after`, and whether more follow.
    fn page(&self, after: Option<&WorkerId>, limit: usize) -> (Vec<Arc<Worker>>, bool);
}

/// The in-memory store.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    workers: RwLock<BTreeMap<WorkerId, Arc<Worker>>>,
}

impl Store for MemoryStore {
    fn insert(&self, worker: Arc<Worker>) {
        let mut workers = self.workers.write().unwrap_or_else(|e| e.into_inner());
        workers.insert(worker.id.clone(), worker);
    }

    fn remove(&self, id: &WorkerId) -> bool {
        let mut workers = self.workers.write().unwrap_or_else(|e| e.into_inner());
        workers.remove(id).is_some()
    }

    fn get(&self, id: &WorkerId) -> Option<Arc<Worker>> {
        let workers = self.workers.read().unwrap_or_else(|e| e.into_inner());
        workers.get(id).cloned()
    }

    fn page(&self, after: Option<&WorkerId>, limit: usize) -> (Vec<Arc<Worker>>, bool) {
        let workers = self.workers.read().unwrap_or_else(|e| e.into_inner());
        let lower = match after {
            Some(id) => Bound::Excluded(id.as_str()),
            None => Bound::Unbounded,
        };
        let mut range = workers.range::<str, _>((lower, Bound::Unbounded));
        let page: Vec<Arc<Worker>> = range.by_ref().take(limit).map(|(_, w)| w.clone()).collect();
        let more = range.next().is_some();
        (page, more)
    }
}
