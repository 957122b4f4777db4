//! The memory store's index for finding Workers: by id, by `updated_at`,
//! by creation time, by profile and by metadata pair, and the recent
//! changes of `updated_at` that let an `updated_at` pass order Workers as
//! they stood at its snapshot.
//!
//! A leaf module: it knows ids, times and the filterable fields, nothing of
//! Workers or the store. **Each Worker's row changes in the same critical
//! section as the Worker** (its lock is held; this index's lock is taken
//! second and never held while taking a Worker's).
//!
//! `updated_at` values are unique within a Runtime (the context's clock
//! never hands out the same nanosecond twice), so the `updated_at` order is
//! a map from nanoseconds to id. **Every change of a Worker's `updated_at`
//! is kept as a move (old, new) for `PASS_HORIZON_SECS`**: a Worker's
//! `updated_at` as of a snapshot `S` is its current one if that is at or
//! before `S`, or else the old value of its one move that crosses `S`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Mutex;

use yoi_runtime_api::WorkerId;
use yoi_runtime_api::dto::{
    Metadata, PASS_HORIZON_SECS, PageKey, PagePhase, PassOrder, SortOrder, WorkerFilter,
    WorkerSort, WorkerState,
};

/// The most moves kept, whatever their age; an `updated_at` pass older than
/// the oldest one dropped for room is refused.
const MAX_MOVES: usize = 200_000;
const HORIZON_NANOS: i64 = PASS_HORIZON_SECS * 1_000_000_000;

#[derive(Debug)]
struct Row {
    updated: i64,
    created: i64,
    state: WorkerState,
    profile: String,
    metadata: Metadata,
}

/// A change of one Worker's `updated_at`.
#[derive(Debug)]
struct Move {
    new: i64,
    old: i64,
    id: WorkerId,
}

#[derive(Debug)]
struct Tables {
    /// Rows by id, hashed: a touch (every event but a delta) finds its row
    /// without string comparisons down a tree.
    rows: HashMap<WorkerId, Row>,
    /// Ids in order, for pages in creation order.
    ids: BTreeSet<WorkerId>,
    by_updated: BTreeMap<i64, WorkerId>,
    by_created: BTreeMap<i64, WorkerId>,
    by_profile: HashMap<String, BTreeSet<WorkerId>>,
    by_pair: HashMap<(String, String), BTreeSet<WorkerId>>,
    /// Moves, oldest first (`new` increases).
    moves: VecDeque<Move>,
    /// The newest `new` of a move dropped: a pass whose snapshot is before
    /// it may have lost a move it needs.
    forgotten: i64,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            ids: BTreeSet::new(),
            by_updated: BTreeMap::new(),
            by_created: BTreeMap::new(),
            by_profile: HashMap::new(),
            by_pair: HashMap::new(),
            moves: VecDeque::new(),
            forgotten: i64::MIN,
        }
    }
}

/// The index of an embedded Runtime whose Workers are all in memory.
#[derive(Debug)]
pub(crate) struct SearchIndex {
    tables: Mutex<Tables>,
    max_moves: usize,
}

impl Default for SearchIndex {
    fn default() -> Self {
        Self {
            tables: Mutex::default(),
            max_moves: MAX_MOVES,
        }
    }
}

impl SearchIndex {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new Worker, created at `updated`.
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
        tables.by_created.insert(updated, id.clone());
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
                created: updated,
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

    /// A Worker's new `updated_at` and state; a changed `updated_at` is
    /// kept as a move.
    pub(crate) fn touch(&self, id: &WorkerId, updated: i64, state: WorkerState) {
        let mut tables = self.tables();
        let tables = &mut *tables;
        let Some(row) = tables.rows.get_mut(id) else {
            return;
        };
        row.state = state;
        if row.updated == updated {
            return;
        }
        if let Some(owned) = tables.by_updated.remove(&row.updated) {
            tables.by_updated.insert(updated, owned);
        }
        // Kept in order of `new` (what `moved_since` searches by): sections
        // of different Workers date their changes and reach the index in
        // different orders, so a move may belong a little before the end.
        let at = tables.moves.partition_point(|m| m.new <= updated);
        tables.moves.insert(
            at,
            Move {
                new: updated,
                old: row.updated,
                id: id.clone(),
            },
        );
        row.updated = updated;
        while let Some(oldest) = tables.moves.front() {
            if tables.moves.len() <= self.max_moves && oldest.new >= updated - HORIZON_NANOS {
                break;
            }
            tables.forgotten = tables.forgotten.max(oldest.new);
            tables.moves.pop_front();
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
    /// pass's order, and whether more follow; `None` when the pass is older
    /// than the moves the index still has.
    pub(crate) fn page(
        &self,
        pass: &PassOrder,
        filter: &WorkerFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> Option<(Vec<PageKey>, bool)> {
        let tables = self.tables();
        let want = limit + 1;
        let mut keys = match pass.sort {
            WorkerSort::CreatedAt => tables.by_id(pass, filter, after, want),
            WorkerSort::UpdatedAt => {
                if pass.snapshot < tables.forgotten {
                    return None;
                }
                tables.by_updated_as_of(pass, filter, after, want)
            }
        };
        let more = keys.len() > limit;
        keys.truncate(limit);
        Some((keys, more))
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
        self.by_created.remove(&row.created);
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

    /// A `created_at` pass: ids in order (from a filter's smallest set when
    /// it names one), from `after`, keeping matches.
    fn by_id(
        &self,
        pass: &PassOrder,
        filter: &WorkerFilter,
        after: Option<&PageKey>,
        want: usize,
    ) -> Vec<PageKey> {
        let ids = self.driving_set(filter).unwrap_or(&self.ids);
        let bound = after.map_or(Bound::Unbounded, |k| Bound::Excluded(&k.worker_id));
        let range: Box<dyn Iterator<Item = &WorkerId>> = match pass.order {
            SortOrder::Asc => Box::new(ids.range::<WorkerId, _>((bound, Bound::Unbounded))),
            SortOrder::Desc => Box::new(ids.range::<WorkerId, _>((Bound::Unbounded, bound)).rev()),
        };
        range
            .filter(|id| self.matches(id, filter))
            .take(want)
            .map(|id| pass.main_key(id, 0))
            .collect()
    }

    /// `updated_at` as of the snapshot of the Workers that moved since it
    /// and existed at it: the old value of each one's crossing move.
    fn moved_since(&self, snapshot: i64) -> HashMap<&WorkerId, i64> {
        let first = self.moves.partition_point(|m| m.new <= snapshot);
        self.moves
            .range(first..)
            .filter(|m| m.old <= snapshot)
            .map(|m| (&m.id, m.old))
            .collect()
    }

    /// An `updated_at` pass: the Workers that existed at the snapshot by
    /// `updated_at` as of it, then those created since by creation time.
    fn by_updated_as_of(
        &self,
        pass: &PassOrder,
        filter: &WorkerFilter,
        after: Option<&PageKey>,
        want: usize,
    ) -> Vec<PageKey> {
        let snapshot = pass.snapshot;
        let moved = self.moved_since(snapshot);
        if let Some(ids) = self.driving_set(filter) {
            // A filter's set: place each of its matches and sort them.
            let keys = ids.iter().filter(|id| self.matches(id, filter)).map(|id| {
                let row = &self.rows[id];
                if row.created > snapshot {
                    pass.tail_key(id, row.created)
                } else if row.updated <= snapshot {
                    pass.main_key(id, row.updated)
                } else {
                    pass.main_key(id, moved.get(id).copied().unwrap_or(snapshot))
                }
            });
            return smallest_after(pass, keys, after, want);
        }
        let mut keys = Vec::new();
        if after.is_none_or(|k| k.phase == PagePhase::Main) {
            // Not moved since the snapshot: the current order, up to it.
            let from = after.map(|k| k.nanos);
            let upto = Bound::Included(snapshot);
            let unmoved: Box<dyn Iterator<Item = (&i64, &WorkerId)>> = match pass.order {
                SortOrder::Asc => Box::new(
                    self.by_updated
                        .range((from.map_or(Bound::Unbounded, Bound::Excluded), upto)),
                ),
                SortOrder::Desc => Box::new(
                    self.by_updated
                        .range((Bound::Unbounded, from.map_or(upto, Bound::Excluded)))
                        .rev(),
                ),
            };
            let unmoved = unmoved
                .filter(|(_, id)| self.matches(id, filter))
                .take(want)
                .map(|(nanos, id)| pass.main_key(id, *nanos));
            // Moved since: where they stood at the snapshot.
            let moved = moved
                .iter()
                .filter(|(id, _)| self.matches(id, filter))
                .map(|(id, old)| pass.main_key(id, *old));
            keys = smallest_after(pass, unmoved.chain(moved), after, want);
        }
        if keys.len() < want {
            // Created since the snapshot, by creation time.
            let from = after
                .filter(|k| k.phase == PagePhase::Tail)
                .map(|k| k.nanos);
            let since = Bound::Excluded(snapshot);
            let created: Box<dyn Iterator<Item = (&i64, &WorkerId)>> = match pass.order {
                SortOrder::Asc => Box::new(
                    self.by_created
                        .range((from.map_or(since, Bound::Excluded), Bound::Unbounded)),
                ),
                SortOrder::Desc => Box::new(
                    self.by_created
                        .range((since, from.map_or(Bound::Unbounded, Bound::Excluded)))
                        .rev(),
                ),
            };
            keys.extend(
                created
                    .filter(|(_, id)| self.matches(id, filter))
                    .take(want - keys.len())
                    .map(|(nanos, id)| pass.tail_key(id, *nanos)),
            );
        }
        keys
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> WorkerId {
        format!("w-{n:04}").parse().unwrap()
    }

    #[test]
    fn a_pass_keeps_places_as_of_its_snapshot_until_its_moves_are_forgotten() {
        let index = SearchIndex {
            tables: Mutex::default(),
            max_moves: 4,
        };
        for n in 0..3 {
            index.insert(
                &id(n),
                10 + i64::from(n),
                WorkerState::Idle,
                "p",
                &Metadata::new(),
            );
        }
        let pass = PassOrder {
            sort: WorkerSort::UpdatedAt,
            order: SortOrder::Desc,
            snapshot: 20,
        };
        let all = WorkerFilter::default();
        let first = index.page(&pass, &all, None, 1).unwrap().0;
        assert_eq!(first[0].worker_id, id(2));
        // w-0000 moves after the snapshot: it keeps its old place (last).
        index.touch(&id(0), 21, WorkerState::Idle);
        let (rest, more) = index.page(&pass, &all, first.last(), 10).unwrap();
        let rest: Vec<_> = rest.iter().map(|k| k.worker_id.clone()).collect();
        assert_eq!(rest, vec![id(1), id(0)]);
        assert!(!more);
        // Five more moves: the one the pass needs is dropped for room.
        for at in 22..27 {
            index.touch(&id(1), at, WorkerState::Idle);
        }
        assert!(index.page(&pass, &all, first.last(), 10).is_none());
        // A new pass is served.
        let fresh = PassOrder {
            snapshot: 30,
            ..pass
        };
        assert_eq!(index.page(&fresh, &all, None, 10).unwrap().0.len(), 3);
    }

    #[test]
    fn moves_that_reach_the_index_out_of_order_still_place_workers() {
        let index = SearchIndex::default();
        for n in 0..3 {
            let created = 10 + i64::from(n);
            index.insert(&id(n), created, WorkerState::Idle, "p", &Metadata::new());
        }
        // Two sections dated 30 and 15; the later date reaches the index
        // first. A pass with its snapshot at 20 has w-0000 where it stood
        // (10) and w-0001 where it stands now (15).
        index.touch(&id(0), 30, WorkerState::Idle);
        index.touch(&id(1), 15, WorkerState::Idle);
        let pass = PassOrder {
            sort: WorkerSort::UpdatedAt,
            order: SortOrder::Asc,
            snapshot: 20,
        };
        let keys = index
            .page(&pass, &WorkerFilter::default(), None, 10)
            .unwrap()
            .0;
        let placed: Vec<_> = keys
            .iter()
            .map(|k| (k.worker_id.clone(), k.nanos))
            .collect();
        assert_eq!(placed, vec![(id(0), 10), (id(2), 12), (id(1), 15)]);
    }
}
