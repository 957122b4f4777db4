//! The memory store's index for finding Workers: by id, by `updated_at`,
//! by profile and by metadata pair.
//!
//! A leaf module: it knows ids, times and the filterable fields, nothing of
//! Workers or the store. **Each Worker's row changes in the same critical
//! section as the Worker** (its lock is held; this index's lock is taken
//! second and never held while taking a Worker's), so a page read from the
//! index orders Workers exactly as their summaries say.
//!
//! `updated_at` values are unique within a Runtime (the context's clock
//! never hands out the same nanosecond twice), so the `updated_at` order is
//! a map from nanoseconds to id and a change moves one entry without
//! allocating.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use yoi_runtime_api::WorkerId;
use yoi_runtime_api::dto::{
    Metadata, PageKey, PagePhase, PassOrder, SortOrder, WorkerFilter, WorkerSort, WorkerState,
};

#[derive(Debug)]
struct Row {
    updated: i64,
    state: WorkerState,
    profile: String,
    metadata: Metadata,
}

#[derive(Debug, Default)]
struct Tables {
    /// Rows by id, hashed: a touch (every event but a delta) finds its row
    /// without string comparisons down a tree.
    rows: HashMap<WorkerId, Row>,
    /// Ids in order, for pages in creation order.
    ids: BTreeSet<WorkerId>,
    by_updated: BTreeMap<i64, WorkerId>,
    by_profile: HashMap<String, BTreeSet<WorkerId>>,
    by_pair: HashMap<(String, String), BTreeSet<WorkerId>>,
}

/// The index of an embedded Runtime whose Workers are all in memory.
#[derive(Debug, Default)]
pub(crate) struct SearchIndex {
    tables: Mutex<Tables>,
}

impl SearchIndex {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new Worker.
    pub(crate) fn insert(
        &self,
        id: &WorkerId,
        updated: i64,
        state: WorkerState,
        profile: &str,
        metadata: &Metadata,
    ) {
        let mut tables = self.tables();
        tables.unlink(id);
        tables.by_updated.insert(updated, id.clone());
        tables.ids.insert(id.clone());
        match tables.by_profile.get_mut(profile) {
            Some(set) => {
                set.insert(id.clone());
            }
            None => {
                tables
                    .by_profile
                    .insert(profile.to_owned(), BTreeSet::from([id.clone()]));
            }
        }
        tables.link_pairs(id, metadata);
        tables.rows.insert(
            id.clone(),
            Row {
                updated,
                state,
                profile: profile.to_owned(),
                metadata: metadata.clone(),
            },
        );
    }

    /// A Worker's new metadata; nothing when it is gone (deleted while
    /// being updated).
    pub(crate) fn set_metadata(&self, id: &WorkerId, metadata: &Metadata) {
        let mut tables = self.tables();
        let tables = &mut *tables;
        let Some(row) = tables.rows.get_mut(id) else {
            return;
        };
        for pair in std::mem::take(&mut row.metadata) {
            if let Some(set) = tables.by_pair.get_mut(&pair) {
                set.remove(id);
                if set.is_empty() {
                    tables.by_pair.remove(&pair);
                }
            }
        }
        row.metadata = metadata.clone();
        tables.link_pairs(id, metadata);
    }

    /// A Worker's new `updated_at` and state. Does not allocate.
    pub(crate) fn touch(&self, id: &WorkerId, updated: i64, state: WorkerState) {
        let mut tables = self.tables();
        let tables = &mut *tables;
        let Some(row) = tables.rows.get_mut(id) else {
            return;
        };
        row.state = state;
        if row.updated != updated {
            if let Some(owned) = tables.by_updated.remove(&row.updated) {
                tables.by_updated.insert(updated, owned);
            }
            row.updated = updated;
        }
    }

    /// Forgets a Worker.
    pub(crate) fn remove(&self, id: &WorkerId) {
        let mut tables = self.tables();
        tables.unlink(id);
    }

    /// How many Workers match.
    pub(crate) fn count(&self, filter: &WorkerFilter) -> u64 {
        let tables = self.tables();
        if filter.is_empty() {
            return tables.rows.len() as u64;
        }
        let conditions = filter.metadata.len() + usize::from(filter.profile.is_some());
        match tables.driving_set(filter) {
            // The set is the answer when it is the only condition.
            Some(ids) if conditions == 1 && filter.state.is_empty() => ids.len() as u64,
            Some(ids) => ids.iter().filter(|id| tables.matches(id, filter)).count() as u64,
            None => tables
                .rows
                .values()
                .filter(|row| filter.matches(row.state, &row.profile, &row.metadata))
                .count() as u64,
        }
    }

    /// The keys of up to `limit` matching Workers after `after` in the
    /// pass's order, and whether more follow.
    pub(crate) fn page(
        &self,
        pass: &PassOrder,
        filter: &WorkerFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> (Vec<PageKey>, bool) {
        let tables = self.tables();
        let mut keys = match tables.driving_set(filter) {
            // A profile or metadata pair narrows the Workers to a set in
            // id order: walk it from the cursor.
            Some(ids) if pass.sort == WorkerSort::CreatedAt => {
                let bound = after.map_or(Bound::Unbounded, |k| Bound::Excluded(&k.worker_id));
                let range: Box<dyn Iterator<Item = &WorkerId>> = match pass.order {
                    SortOrder::Asc => Box::new(ids.range::<WorkerId, _>((bound, Bound::Unbounded))),
                    SortOrder::Desc => {
                        Box::new(ids.range::<WorkerId, _>((Bound::Unbounded, bound)).rev())
                    }
                };
                range
                    .filter(|id| tables.matches(id, filter))
                    .take(limit + 1)
                    .map(|id| pass.key(id, 0))
                    .collect()
            }
            // Sorted otherwise: sort the matching ones.
            Some(ids) => {
                let keys = ids
                    .iter()
                    .filter(|id| tables.matches(id, filter))
                    .map(|id| pass.key(id, tables.rows[id].updated));
                smallest_after(pass, keys, after, limit + 1)
            }
            None => tables.walk(pass, filter, after, limit + 1),
        };
        let more = keys.len() > limit;
        keys.truncate(limit);
        (keys, more)
    }
}

impl Tables {
    fn link_pairs(&mut self, id: &WorkerId, metadata: &Metadata) {
        for (key, value) in metadata {
            self.by_pair
                .entry((key.clone(), value.clone()))
                .or_default()
                .insert(id.clone());
        }
    }

    fn unlink(&mut self, id: &WorkerId) {
        let Some(row) = self.rows.remove(id) else {
            return;
        };
        self.ids.remove(id);
        self.by_updated.remove(&row.updated);
        if let Some(set) = self.by_profile.get_mut(&row.profile) {
            set.remove(id);
            if set.is_empty() {
                self.by_profile.remove(&row.profile);
            }
        }
        for pair in row.metadata {
            if let Some(set) = self.by_pair.get_mut(&pair) {
                set.remove(id);
                if set.is_empty() {
                    self.by_pair.remove(&pair);
                }
            }
        }
    }

    fn matches(&self, id: &WorkerId, filter: &WorkerFilter) -> bool {
        self.rows
            .get(id)
            .is_some_and(|row| filter.matches(row.state, &row.profile, &row.metadata))
    }

    /// The smallest set every match is in, when the filter names a profile
    /// or a metadata pair (an empty set when one of them has no Worker).
    fn driving_set(&self, filter: &WorkerFilter) -> Option<&BTreeSet<WorkerId>> {
        static EMPTY: BTreeSet<WorkerId> = BTreeSet::new();
        let profile = filter
            .profile
            .as_ref()
            .map(|p| self.by_profile.get(p).unwrap_or(&EMPTY));
        let pairs = filter.metadata.iter().map(|(key, value)| {
            self.by_pair
                .get(&(key.clone(), value.clone()))
                .unwrap_or(&EMPTY)
        });
        profile.into_iter().chain(pairs).min_by_key(|set| set.len())
    }

    /// Walks the id or `updated_at` order from `after`, keeping matches.
    fn walk(
        &self,
        pass: &PassOrder,
        filter: &WorkerFilter,
        after: Option<&PageKey>,
        want: usize,
    ) -> Vec<PageKey> {
        let matches = |row: &Row| filter.matches(row.state, &row.profile, &row.metadata);
        match pass.sort {
            WorkerSort::CreatedAt => {
                let bound = after.map_or(Bound::Unbounded, |k| Bound::Excluded(&k.worker_id));
                let range: Box<dyn Iterator<Item = &WorkerId>> = match pass.order {
                    SortOrder::Asc => {
                        Box::new(self.ids.range::<WorkerId, _>((bound, Bound::Unbounded)))
                    }
                    SortOrder::Desc => Box::new(
                        self.ids
                            .range::<WorkerId, _>((Bound::Unbounded, bound))
                            .rev(),
                    ),
                };
                range
                    .filter_map(|id| self.rows.get(id).map(|row| (id, row)))
                    .filter(|(_, row)| matches(row))
                    .take(want)
                    .map(|(id, row)| pass.key(id, row.updated))
                    .collect()
            }
            WorkerSort::UpdatedAt => {
                let mut keys = Vec::new();
                if after.is_none_or(|k| k.phase == PagePhase::Main) {
                    let from = after.map(|k| k.nanos);
                    let main = (Bound::Unbounded, Bound::Included(pass.snapshot));
                    let range: Box<dyn Iterator<Item = (&i64, &WorkerId)>> = match pass.order {
                        SortOrder::Asc => Box::new(
                            self.by_updated
                                .range((from.map_or(Bound::Unbounded, Bound::Excluded), main.1)),
                        ),
                        SortOrder::Desc => Box::new(
                            self.by_updated
                                .range((
                                    main.0,
                                    from.map_or(main.1, |n| {
                                        Bound::Excluded(n.min(pass.snapshot.saturating_add(1)))
                                    }),
                                ))
                                .rev(),
                        ),
                    };
                    keys.extend(
                        range
                            .filter(|(_, id)| self.matches(id, filter))
                            .take(want)
                            .map(|(nanos, id)| pass.key(id, *nanos)),
                    );
                }
                if keys.len() < want {
                    // The tail: Workers updated since the snapshot, by id.
                    let tail = self
                        .by_updated
                        .range((Bound::Excluded(pass.snapshot), Bound::Unbounded))
                        .filter(|(_, id)| self.matches(id, filter))
                        .map(|(nanos, id)| pass.key(id, *nanos));
                    let tail_after = after.filter(|k| k.phase == PagePhase::Tail);
                    keys.extend(smallest_after(pass, tail, tail_after, want - keys.len()));
                }
                keys
            }
        }
    }
}

/// The `want` smallest keys after `after`, in order, in O(n) plus the sort
/// of what is kept.
fn smallest_after(
    pass: &PassOrder,
    keys: impl Iterator<Item = PageKey>,
    after: Option<&PageKey>,
    want: usize,
) -> Vec<PageKey> {
    let mut kept: Vec<PageKey> = keys
        .filter(|key| after.is_none_or(|a| pass.compare(key, a) == Ordering::Greater))
        .collect();
    if kept.len() > want && want > 0 {
        kept.select_nth_unstable_by(want - 1, |a, b| pass.compare(a, b));
    }
    kept.truncate(want);
    kept.sort_unstable_by(|a, b| pass.compare(a, b));
    kept
}
