//! Finding Workers: filters, sort orders, counts and the page cursor.
//!
//! **A paging pass shows every Worker that exists throughout it exactly
//! once, whatever is created, updated or deleted meanwhile.** Sorting by
//! `created_at` pages over a key that never changes (creation order, which
//! is worker id order). `updated_at` changes while a pass runs, so its first
//! page fixes a *snapshot* time, and the pass orders the Workers that
//! existed then by their `updated_at` *as of the snapshot* (the *main*
//! phase), then the Workers created since, by creation time (the *tail*
//! phase). A Runtime remembers each change of a Worker's `updated_at` (its
//! old and new value) for [`PASS_HORIZON_SECS`], which is what lets it place
//! a Worker updated during the pass where it stood at the snapshot; a cursor
//! of an older pass is `invalid_request` (start the pass again).
//!
//! The cursor is opaque to clients. It is defined here rather than by each
//! Runtime so that the workspace server can merge several Runtimes' pages
//! and resume each one after the last Worker it took from it.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::dto::{Metadata, WorkerState, WorkerSummary, validate_metadata};
use crate::error::{Result, RuntimeError};
use crate::id::WorkerId;

/// The key a list of Workers is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkerSort {
    /// Creation order (worker id order: ids are made in creation order).
    #[default]
    CreatedAt,
    /// When the Worker's state, transcript entries, name or metadata last
    /// changed (see `WorkerSummary::updated_at`).
    UpdatedAt,
}

impl WorkerSort {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

impl SortOrder {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// Which Workers to list or count. Every condition given must hold; an
/// empty filter matches every Worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkerFilter {
    /// The Worker is in one of these states (any state when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<WorkerState>,
    /// The Worker runs with this profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The Worker has every one of these metadata pairs.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl WorkerFilter {
    /// Whether the filter matches every Worker.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty() && self.profile.is_none() && self.metadata.is_empty()
    }

    /// Checks the metadata pairs with the limits of Worker metadata.
    pub fn validate(&self) -> Result<()> {
        validate_metadata(&self.metadata)?;
        if let Some(profile) = &self.profile
            && (profile.is_empty() || profile.len() > 128)
        {
            return Err(RuntimeError::invalid_request(
                "profile filter must be 1 to 128 bytes",
            ));
        }
        Ok(())
    }

    /// Whether a Worker with these properties matches.
    pub fn matches(&self, state: WorkerState, profile: &str, metadata: &Metadata) -> bool {
        (self.state.is_empty() || self.state.contains(&state))
            && self.profile.as_deref().is_none_or(|p| p == profile)
            && self
                .metadata
                .iter()
                .all(|(key, value)| metadata.get(key) == Some(value))
    }

    /// Whether a Worker summary matches.
    pub fn matches_summary(&self, summary: &WorkerSummary) -> bool {
        self.matches(
            summary.state,
            summary.profile.name.as_str(),
            &summary.metadata,
        )
    }

    /// A 64-bit fingerprint of the filter (state order and repeats do not
    /// matter), written into cursors so that a cursor is only used with the
    /// query that made it.
    pub fn fingerprint(&self) -> u64 {
        let mut states: Vec<&str> = self.state.iter().map(|s| state_name(*s)).collect();
        states.sort_unstable();
        states.dedup();
        let mut hash = Digest::default();
        for state in states {
            hash.write(b"s");
            hash.write(state.as_bytes());
        }
        if let Some(profile) = &self.profile {
            hash.write(b"p");
            hash.write(profile.as_bytes());
        }
        for (key, value) in &self.metadata {
            hash.write(b"k");
            hash.write(key.as_bytes());
            hash.write(b"v");
            hash.write(value.as_bytes());
        }
        hash.finish()
    }
}

/// The wire name of a state.
pub fn state_name(state: WorkerState) -> &'static str {
    match state {
        WorkerState::Idle => "idle",
        WorkerState::Running => "running",
        WorkerState::Stopping => "stopping",
        WorkerState::Stopped => "stopped",
        WorkerState::Failed => "failed",
    }
}

/// A state from its wire name.
pub fn parse_state(name: &str) -> Option<WorkerState> {
    [
        WorkerState::Idle,
        WorkerState::Running,
        WorkerState::Stopping,
        WorkerState::Stopped,
        WorkerState::Failed,
    ]
    .into_iter()
    .find(|s| state_name(*s) == name)
}

/// How long a Runtime remembers the changes of `updated_at` that an
/// `updated_at` pass needs: a pass may take this long.
pub const PASS_HORIZON_SECS: i64 = 3600;

/// The phase of a paging pass a Worker is in (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PagePhase {
    /// Sorted by the sort key (as of the snapshot).
    Main,
    /// Created since the pass's snapshot: sorted by creation time.
    Tail,
}

/// Where a Worker sits in a paging pass: the order pages follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    /// Main or tail phase.
    pub phase: PagePhase,
    /// In an `updated_at` pass, Unix nanoseconds: `updated_at` as of the
    /// snapshot in the main phase, `created_at` in the tail; 0 in a
    /// `created_at` pass.
    pub nanos: i64,
    /// The Worker.
    pub worker_id: WorkerId,
}

/// How one paging pass orders Workers: a sort key, a direction and, for
/// `updated_at`, the pass's snapshot time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassOrder {
    /// The sort key.
    pub sort: WorkerSort,
    /// The direction.
    pub order: SortOrder,
    /// The snapshot (Unix nanoseconds) of an `updated_at` pass.
    pub snapshot: i64,
}

impl PassOrder {
    /// A main-phase key: `nanos` is `updated_at` as of the snapshot (0 in a
    /// `created_at` pass).
    pub fn main_key(&self, worker_id: &WorkerId, nanos: i64) -> PageKey {
        PageKey {
            phase: PagePhase::Main,
            nanos: if self.sort == WorkerSort::UpdatedAt {
                nanos
            } else {
                0
            },
            worker_id: worker_id.clone(),
        }
    }

    /// The key of a Worker created after the snapshot at `created`.
    pub fn tail_key(&self, worker_id: &WorkerId, created: i64) -> PageKey {
        PageKey {
            phase: PagePhase::Tail,
            nanos: created,
            worker_id: worker_id.clone(),
        }
    }

    /// Compares two keys in page order: main before tail; within a phase
    /// by (nanos, id), reversed for `desc`.
    pub fn compare(&self, a: &PageKey, b: &PageKey) -> std::cmp::Ordering {
        a.phase.cmp(&b.phase).then_with(|| {
            let within = (a.nanos, a.worker_id.as_str()).cmp(&(b.nanos, b.worker_id.as_str()));
            match self.order {
                SortOrder::Asc => within,
                SortOrder::Desc => within.reverse(),
            }
        })
    }
}

/// A `Timestamp` as Unix nanoseconds, clamped to `i64`.
pub fn timestamp_nanos(at: crate::Timestamp) -> i64 {
    i64::try_from(at.unix_nanos()).unwrap_or(i64::MAX)
}

/// Where the next page of a paging pass starts: after `last`.
///
/// Its text form, [`WorkerCursor::encode`], is what clients see
/// (`next_cursor`, `cursor`): opaque, URL-safe, and tied to the query's
/// sort, order and filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCursor {
    /// The pass's order.
    pub pass: PassOrder,
    /// The fingerprint of the pass's filter.
    pub filter: u64,
    /// The last Worker shown.
    pub last: PageKey,
}

const CURSOR_VERSION: &str = "c1";

impl WorkerCursor {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        let sort = match self.pass.sort {
            WorkerSort::CreatedAt => 'c',
            WorkerSort::UpdatedAt => 'u',
        };
        let order = match self.pass.order {
            SortOrder::Asc => 'a',
            SortOrder::Desc => 'd',
        };
        let phase = match self.last.phase {
            PagePhase::Main => 'm',
            PagePhase::Tail => 't',
        };
        format!(
            "{CURSOR_VERSION}.{sort}{order}{phase}.{:x}.{}.{}.{}",
            self.filter, self.pass.snapshot, self.last.nanos, self.last.worker_id
        )
    }

    /// Reads a cursor, checking that it belongs to a query with this sort,
    /// order and filter.
    pub fn decode(
        text: &str,
        sort: WorkerSort,
        order: SortOrder,
        filter: &WorkerFilter,
    ) -> Result<Self> {
        let invalid = || {
            RuntimeError::invalid_request(
                "cursor is not one this API issued; start again without a cursor",
            )
        };
        let mut parts = text.splitn(6, '.');
        let (Some(CURSOR_VERSION), Some(flags), Some(fingerprint), Some(snapshot), Some(nanos)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        let worker_id: WorkerId = parts
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or_else(invalid)?;
        let flags = flags.as_bytes();
        let (cursor_sort, cursor_order, phase) = match flags {
            [s, o, p] => (
                match s {
                    b'c' => WorkerSort::CreatedAt,
                    b'u' => WorkerSort::UpdatedAt,
                    _ => return Err(invalid()),
                },
                match o {
                    b'a' => SortOrder::Asc,
                    b'd' => SortOrder::Desc,
                    _ => return Err(invalid()),
                },
                match p {
                    b'm' => PagePhase::Main,
                    b't' => PagePhase::Tail,
                    _ => return Err(invalid()),
                },
            ),
            _ => return Err(invalid()),
        };
        let fingerprint = u64::from_str_radix(fingerprint, 16).map_err(|_| invalid())?;
        let snapshot: i64 = snapshot.parse().map_err(|_| invalid())?;
        let nanos: i64 = nanos.parse().map_err(|_| invalid())?;
        if cursor_sort != sort || cursor_order != order || fingerprint != filter.fingerprint() {
            return Err(RuntimeError::invalid_request(
                "cursor belongs to a query with another sort, order or filter; \
                 pass the same parameters as the page it came from",
            ));
        }
        // Keys a pass of this kind cannot have (the index ranges rely on
        // main-phase keys being at or before the snapshot).
        let consistent = match sort {
            WorkerSort::CreatedAt => phase == PagePhase::Main && snapshot == 0 && nanos == 0,
            WorkerSort::UpdatedAt => match phase {
                PagePhase::Main => nanos <= snapshot,
                PagePhase::Tail => nanos > snapshot,
            },
        };
        if !consistent {
            return Err(invalid());
        }
        Ok(Self {
            pass: PassOrder {
                sort,
                order,
                snapshot,
            },
            filter: fingerprint,
            last: PageKey {
                phase,
                nanos,
                worker_id,
            },
        })
    }
}

/// Which page of Workers to list: a filter, a sort order and where to
/// start (see [`WorkerCursor`] for what a paging pass guarantees).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerListQuery {
    /// List Workers whose id sorts after this one: the cursor of round 1,
    /// still accepted with the default sort and order.
    pub after: Option<WorkerId>,
    /// At most this many (default 50, at most the Runtime's
    /// `max_worker_page`).
    pub limit: Option<u32>,
    /// Which Workers.
    pub filter: WorkerFilter,
    /// Sorted by.
    pub sort: WorkerSort,
    /// Ascending or descending.
    pub order: SortOrder,
    /// Where the page starts: a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl WorkerListQuery {
    /// Whether the query needs more than plain listing in id order: a
    /// filter, another sort or order, or a cursor (capability
    /// `search_workers`).
    pub fn is_search(&self) -> bool {
        !self.filter.is_empty()
            || self.sort != WorkerSort::CreatedAt
            || self.order != SortOrder::Asc
            || self.cursor.is_some()
    }
}

/// A page of Workers, in the query's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerPage {
    /// The Workers on this page.
    pub items: Vec<WorkerSummary>,
    /// Pass as `after` for the next page, with the default sort and order
    /// and no filter; absent on the last page.
    pub next_after: Option<WorkerId>,
    /// Pass as `cursor` (with the same filter, sort and order) for the next
    /// page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET .../workers/count`: how many Workers match a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerCount {
    /// The number of matching Workers.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> WorkerId {
        text.parse().unwrap()
    }

    #[test]
    fn cursor_round_trips_and_is_tied_to_its_query() {
        let filter = WorkerFilter {
            state: vec![WorkerState::Idle],
            profile: Some("default".into()),
            metadata: [("project".to_string(), "x.y".to_string())].into(),
        };
        let cursor = WorkerCursor {
            pass: PassOrder {
                sort: WorkerSort::UpdatedAt,
                order: SortOrder::Desc,
                snapshot: 1_700_000_000_000_000_000,
            },
            filter: filter.fingerprint(),
            last: PageKey {
                phase: PagePhase::Tail,
                nanos: 1_700_000_000_000_000_001,
                worker_id: id("w-01.a_b"),
            },
        };
        let text = cursor.encode();
        let back =
            WorkerCursor::decode(&text, WorkerSort::UpdatedAt, SortOrder::Desc, &filter).unwrap();
        assert_eq!(back, cursor);
        for (sort, order, other) in [
            (WorkerSort::CreatedAt, SortOrder::Desc, filter.clone()),
            (WorkerSort::UpdatedAt, SortOrder::Asc, filter.clone()),
            (
                WorkerSort::UpdatedAt,
                SortOrder::Desc,
                WorkerFilter::default(),
            ),
        ] {
            let err = WorkerCursor::decode(&text, sort, order, &other).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidRequest);
        }
        for garbage in [
            "",
            "c1",
            "c1.um.0.0.0.w-1",
            "c2.uat.0.0.0.w-1",
            "c1.uat.zz.0.0.w-1",
        ] {
            assert!(
                WorkerCursor::decode(garbage, WorkerSort::UpdatedAt, SortOrder::Asc, &filter)
                    .is_err(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn fingerprint_ignores_state_order_and_repeats() {
        let a = WorkerFilter {
            state: vec![WorkerState::Idle, WorkerState::Stopped, WorkerState::Idle],
            ..WorkerFilter::default()
        };
        let b = WorkerFilter {
            state: vec![WorkerState::Stopped, WorkerState::Idle],
            ..WorkerFilter::default()
        };
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = WorkerFilter {
            metadata: [("ab".to_string(), "c".to_string())].into(),
            ..WorkerFilter::default()
        };
        let d = WorkerFilter {
            metadata: [("a".to_string(), "bc".to_string())].into(),
            ..WorkerFilter::default()
        };
        assert_ne!(c.fingerprint(), d.fingerprint());
        assert_ne!(a.fingerprint(), WorkerFilter::default().fingerprint());
    }

    #[test]
    fn updated_pass_orders_main_then_tail_in_either_direction() {
        let pass = PassOrder {
            sort: WorkerSort::UpdatedAt,
            order: SortOrder::Desc,
            snapshot: 100,
        };
        let old = pass.main_key(&id("w-b"), 50);
        let newer = pass.main_key(&id("w-c"), 90);
        let created_since = pass.tail_key(&id("w-a"), 150);
        let created_later = pass.tail_key(&id("w-d"), 160);
        let mut keys = vec![
            created_since.clone(),
            old.clone(),
            created_later.clone(),
            newer.clone(),
        ];
        keys.sort_by(|a, b| pass.compare(a, b));
        assert_eq!(keys, vec![newer, old, created_later, created_since]);
    }
}
