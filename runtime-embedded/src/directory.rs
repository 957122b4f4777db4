//! Which Workers are in memory, and finding the others.
//!
//! With the memory store every Worker is resident for its whole life. With
//! a persistent store, a Worker is loaded on first access and, past
//! `max_resident_workers`, idle Workers are evicted again. **There is never
//! more than one `Worker` object per id**: a loaded Worker is inserted only
//! if none is resident (a concurrent load's copy is dropped), and a Worker
//! is evicted only when nobody else holds it (no subscriber, no turn task),
//! it runs no turn, and everything it recorded is durable, so a reload
//! reads exactly what it had.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use yoi_runtime_api::WorkerId;

use crate::store::{Ticket, WorkerStore};
use crate::worker::Worker;

/// The Workers in memory.
#[derive(Debug)]
pub(crate) struct Directory {
    resident: RwLock<BTreeMap<WorkerId, Arc<Worker>>>,
    /// A clock for least-recently-used eviction.
    clock: AtomicU64,
    /// Whether Workers are ever evicted (a persistent store): without,
    /// accesses are not clocked, which would make every read of every
    /// Worker write one count shared by all.
    evicts: bool,
    max_resident: usize,
    /// Workers deleted whose deletion may not be durable yet: they are not
    /// loaded again meanwhile. Deleting and burying happen under this
    /// lock, and so does inserting a loaded Worker, so a load that read
    /// the store before a deletion reached it cannot put the Worker back.
    tombstones: Mutex<Tombstones>,
    /// One lock per Worker being loaded: **one load of a Worker at a
    /// time**, so a load never reads the store while another copy of the
    /// Worker is resident and changing (it would insert a stale copy once
    /// that one was evicted).
    loading: Mutex<HashMap<WorkerId, Arc<Mutex<()>>>>,
}

#[derive(Debug, Default)]
struct Tombstones {
    /// Each deleted Worker with the ticket of its deletion.
    by_id: HashMap<WorkerId, Ticket>,
    /// The newest ticket of a tombstone dropped (its deletion durable): a
    /// load that started before that deletion was recorded cannot tell
    /// whether it read the Worker before the deletion, and reads again.
    /// (A `DELETE` loads its Worker first, so it waits for a load in
    /// progress; retiring a stopped Worker does not, which is the case
    /// this covers.)
    dropped_upto: Ticket,
}

impl Tombstones {
    /// Tombstones a deleted Worker until `ticket` is durable. Durable ones
    /// are dropped each time their number reaches a power of two, so
    /// deletes without loads between them keep the map small.
    fn add(&mut self, id: WorkerId, ticket: Ticket, store: &dyn WorkerStore) {
        self.by_id.insert(id, ticket);
        let count = self.by_id.len();
        if count >= 64 && count.is_power_of_two() {
            self.sweep(store);
        }
    }

    /// Drops the tombstones whose deletion is durable.
    fn sweep(&mut self, store: &dyn WorkerStore) {
        let mut dropped_upto = self.dropped_upto;
        self.by_id.retain(|_, ticket| {
            let durable = store.is_durable(*ticket);
            if durable {
                dropped_upto = dropped_upto.max(*ticket);
            }
            !durable
        });
        self.dropped_upto = dropped_upto;
    }
}

/// What became of a Worker loaded from the store.
pub(crate) enum Loaded {
    /// Resident: this copy, or one a concurrent load made resident first.
    Resident(Arc<Worker>),
    /// Deleted since the load began.
    Deleted,
    /// A deletion recorded after the load began is durable and forgotten:
    /// read the store again.
    ReadAgain,
}

impl Directory {
    pub(crate) fn new(max_resident: usize, evicts: bool) -> Self {
        Self {
            resident: RwLock::new(BTreeMap::new()),
            clock: AtomicU64::new(0),
            evicts,
            max_resident,
            tombstones: Mutex::new(Tombstones::default()),
            loading: Mutex::new(HashMap::new()),
        }
    }

    fn touch(&self, worker: &Worker) {
        if !self.evicts {
            return;
        }
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        worker.last_access.store(now, Ordering::Relaxed);
    }

    /// Adds a Worker, or returns the one already resident with its id.
    pub(crate) fn insert(&self, worker: Arc<Worker>) -> Arc<Worker> {
        self.touch(&worker);
        let mut resident = self.resident.write().unwrap_or_else(|e| e.into_inner());
        resident.entry(worker.id.clone()).or_insert(worker).clone()
    }

    /// The resident Worker with this id.
    pub(crate) fn get(&self, id: &WorkerId) -> Option<Arc<Worker>> {
        let resident = self.resident.read().unwrap_or_else(|e| e.into_inner());
        let worker = resident.get(id).cloned()?;
        drop(resident);
        self.touch(&worker);
        Some(worker)
    }

    /// Runs `load` (which reads Worker `id` from the store and makes it
    /// resident) while no other load of `id` runs. Blocks.
    pub(crate) fn loading<T>(&self, id: &WorkerId, load: impl FnOnce() -> T) -> T {
        let gate = {
            let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
            loading.entry(id.clone()).or_default().clone()
        };
        let one_at_a_time = gate.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = load();
        drop(one_at_a_time);
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are made under this lock: two left means the map's and
        // this one, so no other load waits on the gate.
        if Arc::strong_count(&gate) == 2 {
            loading.remove(id);
        }
        loaded
    }

    /// A Worker loaded from the store, read after the store's ticket was
    /// `since`: made resident unless it was deleted meanwhile.
    pub(crate) fn insert_loaded(&self, worker: Arc<Worker>, since: Ticket) -> Loaded {
        let tombstones = self.tombstones.lock().unwrap_or_else(|e| e.into_inner());
        if tombstones.by_id.contains_key(&worker.id) {
            return Loaded::Deleted;
        }
        if tombstones.dropped_upto > since {
            return Loaded::ReadAgain;
        }
        let worker = self.insert(worker);
        drop(tombstones);
        Loaded::Resident(worker)
    }

    /// Forgets a resident Worker that is deleted, giving its retained
    /// bytes back at once, and records its deletion with `record` (which
    /// returns the ticket, or `None` when the store keeps nothing). Until
    /// that ticket is durable the Worker is tombstoned, so it is not loaded
    /// again. `None` when it was not resident (another call deleted it
    /// first).
    pub(crate) fn delete(
        &self,
        id: &WorkerId,
        record: impl FnOnce() -> Option<Ticket>,
        store: &dyn WorkerStore,
    ) -> Option<Ticket> {
        self.forget(id, true, record, store)
    }

    /// As [`Directory::delete`], for a stopped Worker retired by the
    /// retention limits, resident or not.
    pub(crate) fn retire(
        &self,
        id: &WorkerId,
        record: impl FnOnce() -> Option<Ticket>,
        store: &dyn WorkerStore,
    ) {
        self.forget(id, false, record, store);
    }

    fn forget(
        &self,
        id: &WorkerId,
        only_resident: bool,
        record: impl FnOnce() -> Option<Ticket>,
        store: &dyn WorkerStore,
    ) -> Option<Ticket> {
        let mut tombstones = self.tombstones.lock().unwrap_or_else(|e| e.into_inner());
        let mut resident = self.resident.write().unwrap_or_else(|e| e.into_inner());
        let removed = resident.remove(id);
        drop(resident);
        match removed {
            Some(worker) => worker.forget(),
            None if only_resident => return None,
            None => {}
        }
        let Some(ticket) = record() else {
            return Some(Ticket(0));
        };
        tombstones.add(id.clone(), ticket, store);
        Some(ticket)
    }

    /// Whether a Worker was deleted and the store may not know yet; drops
    /// tombstones whose deletion is durable.
    pub(crate) fn is_buried(&self, id: &WorkerId, store: &dyn WorkerStore) -> bool {
        let mut tombstones = self.tombstones.lock().unwrap_or_else(|e| e.into_inner());
        tombstones.sweep(store);
        tombstones.by_id.contains_key(id)
    }

    /// Up to `limit` resident Workers after `after`, and whether more
    /// follow (the list, when every Worker is resident).
    pub(crate) fn page(&self, after: Option<&WorkerId>, limit: usize) -> (Vec<Arc<Worker>>, bool) {
        let resident = self.resident.read().unwrap_or_else(|e| e.into_inner());
        let lower = match after {
            Some(id) => Bound::Excluded(id.as_str()),
            None => Bound::Unbounded,
        };
        let mut range = resident.range::<str, _>((lower, Bound::Unbounded));
        let page: Vec<Arc<Worker>> = range.by_ref().take(limit).map(|(_, w)| w.clone()).collect();
        let more = range.next().is_some();
        (page, more)
    }

    /// Evicts least recently used Workers that may go until the Runtime's
    /// retained bytes are at most `target` (each evicted Worker takes its
    /// share back as it is dropped here).
    pub(crate) fn evict_to_fit(
        &self,
        store: &dyn WorkerStore,
        retained: &std::sync::atomic::AtomicUsize,
        target: usize,
    ) {
        if !self.evicts {
            return;
        }
        let mut resident = self.resident.write().unwrap_or_else(|e| e.into_inner());
        for id in evictable(&resident, store) {
            if retained.load(Ordering::Relaxed) <= target {
                break;
            }
            resident.remove(&id);
        }
    }

    /// Evicts least recently used Workers that may go, down to 90 % of the
    /// cap, so eviction runs rarely and in bulk.
    pub(crate) fn evict(&self, store: &dyn WorkerStore) {
        if !self.evicts {
            return;
        }
        let mut resident = self.resident.write().unwrap_or_else(|e| e.into_inner());
        if resident.len() <= self.max_resident {
            return;
        }
        let target = self.max_resident - self.max_resident / 10;
        let excess = resident.len().saturating_sub(target);
        for id in evictable(&resident, store).into_iter().take(excess) {
            resident.remove(&id);
        }
    }
}

/// The resident Workers that may be evicted, least recently used first:
/// held only by the map (no subscriber, no turn task, no call), running no
/// turn, everything they recorded durable.
fn evictable(resident: &BTreeMap<WorkerId, Arc<Worker>>, store: &dyn WorkerStore) -> Vec<WorkerId> {
    let mut candidates: Vec<(u64, WorkerId)> = resident
        .iter()
        .filter(|(_, w)| Arc::strong_count(w) == 1)
        .filter(|(_, w)| w.running_turn().is_none())
        .filter(|(_, w)| store.is_durable(w.last_ticket()))
        .map(|(id, w)| (w.last_access.load(Ordering::Relaxed), id.clone()))
        .collect();
    candidates.sort_unstable();
    candidates.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn durable_tombstones_are_dropped_while_deletes_go_on() {
        let mut tombstones = Tombstones::default();
        for n in 0..10_000 {
            let id = WorkerId::new(format!("w-{n}")).unwrap();
            // Every deletion durable at once: nothing needs keeping.
            tombstones.add(id, Ticket(n), &MemoryStore);
        }
        let kept = tombstones.by_id.len();
        assert!(kept < 64, "{kept} tombstones kept");
        // A load that began before the newest dropped deletion reads again.
        assert!(tombstones.dropped_upto >= Ticket(8191));
    }
}
