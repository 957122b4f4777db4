//! Finding Workers: filters, sort orders, counts, cursors, and what a
//! paging pass guarantees while Workers are created, updated and deleted.

use std::collections::{BTreeMap, BTreeSet};

use crate::dto::{
    CreateWorkerRequest, Metadata, SortOrder, UpdateWorkerRequest, WorkerFilter, WorkerListQuery,
    WorkerSort, WorkerState, WorkerSummary,
};
use crate::error::ErrorCode;
use crate::id::WorkerId;
use crate::runtime::DynRuntime;

use super::Outcome;
use super::support::*;

/// A tag unique to one run of a case, so Workers other cases made do not
/// match its filters.
fn run_tag(label: &str) -> String {
    format!("{label}-{:x}", crate::Timestamp::now().unix_nanos())
}

fn tagged(tag: &str, extra: &[(&str, &str)]) -> Metadata {
    let mut metadata: Metadata = [("run".to_owned(), tag.to_owned())].into();
    metadata.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    metadata
}

fn by_run(tag: &str) -> WorkerFilter {
    WorkerFilter {
        metadata: tagged(tag, &[]),
        ..WorkerFilter::default()
    }
}

async fn create_tagged(rt: &DynRuntime, metadata: Metadata) -> WorkerId {
    rt.create_worker(CreateWorkerRequest {
        metadata,
        ..CreateWorkerRequest::default()
    })
    .await
    .unwrap()
    .summary
    .worker_id
}

/// One page of a pass: `cursor` is the previous page's `next_cursor`.
async fn page(
    rt: &DynRuntime,
    filter: &WorkerFilter,
    (sort, order): (WorkerSort, SortOrder),
    limit: u32,
    cursor: Option<String>,
) -> crate::dto::WorkerPage {
    rt.list_workers(WorkerListQuery {
        filter: filter.clone(),
        sort,
        order,
        limit: Some(limit),
        cursor,
        ..WorkerListQuery::default()
    })
    .await
    .unwrap()
}

/// Every Worker of a paging pass with pages of `limit`, in order.
pub async fn page_all(
    rt: &DynRuntime,
    filter: &WorkerFilter,
    sort: WorkerSort,
    order: SortOrder,
    limit: u32,
) -> Vec<WorkerSummary> {
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = page(rt, filter, (sort, order), limit, cursor.take()).await;
        assert!(page.items.len() <= limit as usize);
        for summary in &page.items {
            assert!(
                filter.matches_summary(summary),
                "{} does not match {filter:?}",
                summary.worker_id
            );
        }
        seen.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return seen,
        }
    }
}

fn ids(summaries: &[WorkerSummary]) -> Vec<WorkerId> {
    summaries.iter().map(|s| s.worker_id.clone()).collect()
}

/// Filters by state, profile and metadata pairs (all must hold), counts
/// exactly what the list pages through, sorts by `created_at` and
/// `updated_at` both ways, and refuses bad filters and foreign cursors with
/// `invalid_request`. Without `search_workers` a filtered list and a count
/// are `unsupported_operation`.
pub async fn search_workers(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    if !caps.search_workers {
        let filtered = WorkerListQuery {
            filter: by_run("x"),
            ..WorkerListQuery::default()
        };
        assert_code(
            rt.list_workers(filtered).await.map(|_| ()),
            ErrorCode::UnsupportedOperation,
            "a filtered list without search_workers",
        );
        assert_code(
            rt.count_workers(WorkerFilter::default()).await.map(|_| ()),
            ErrorCode::UnsupportedOperation,
            "a count without search_workers",
        );
        return Outcome::Skipped("search_workers");
    }
    require!(caps, create_worker, update_worker, stop);
    let tag = run_tag("search");
    let mut made = Vec::new();
    for n in 0..6 {
        let color = if n % 2 == 0 { "red" } else { "blue" };
        made.push(create_tagged(rt, tagged(&tag, &[("color", color)])).await);
    }
    rt.stop(&made[5]).await.unwrap();
    wait_for(rt, &made[5], "stopped", |s| s.state == WorkerState::Stopped).await;

    let all = by_run(&tag);
    let listed = page_all(rt, &all, WorkerSort::CreatedAt, SortOrder::Asc, 2).await;
    assert_eq!(ids(&listed), made, "creation order, every Worker once");
    assert_eq!(rt.count_workers(all.clone()).await.unwrap().count, 6);
    let desc = page_all(rt, &all, WorkerSort::CreatedAt, SortOrder::Desc, 4).await;
    let mut reversed = made.clone();
    reversed.reverse();
    assert_eq!(ids(&desc), reversed, "created_at desc");

    let red = WorkerFilter {
        metadata: tagged(&tag, &[("color", "red")]),
        ..WorkerFilter::default()
    };
    let reds = page_all(rt, &red, WorkerSort::CreatedAt, SortOrder::Asc, 50).await;
    assert_eq!(
        ids(&reds),
        vec![made[0].clone(), made[2].clone(), made[4].clone()]
    );
    assert!(reds.iter().all(|s| s.metadata["color"] == "red"));
    assert_eq!(rt.count_workers(red).await.unwrap().count, 3);

    let stopped = WorkerFilter {
        state: vec![WorkerState::Stopped],
        ..by_run(&tag)
    };
    let found = page_all(rt, &stopped, WorkerSort::CreatedAt, SortOrder::Asc, 50).await;
    assert_eq!(ids(&found), vec![made[5].clone()]);
    let either = WorkerFilter {
        state: vec![WorkerState::Idle, WorkerState::Stopped],
        ..by_run(&tag)
    };
    assert_eq!(rt.count_workers(either).await.unwrap().count, 6);

    let profile = listed[0].profile.name.as_str().to_owned();
    let same_profile = WorkerFilter {
        profile: Some(profile),
        ..by_run(&tag)
    };
    assert_eq!(rt.count_workers(same_profile).await.unwrap().count, 6);
    let no_profile = WorkerFilter {
        profile: Some("no-such-profile".into()),
        ..by_run(&tag)
    };
    assert_eq!(rt.count_workers(no_profile.clone()).await.unwrap().count, 0);
    assert!(
        page_all(rt, &no_profile, WorkerSort::UpdatedAt, SortOrder::Desc, 5)
            .await
            .is_empty()
    );

    // An update moves a Worker to the end of a new updated_at pass.
    rt.update_worker(
        &made[1],
        UpdateWorkerRequest {
            display_name: Some("touched".into()),
            metadata: None,
        },
    )
    .await
    .unwrap();
    let newest_first = page_all(rt, &all, WorkerSort::UpdatedAt, SortOrder::Desc, 2).await;
    assert_eq!(newest_first.len(), 6);
    assert_eq!(newest_first[0].worker_id, made[1], "updated_at desc");
    let stamps: Vec<_> = newest_first.iter().map(|s| s.updated_at).collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "{stamps:?}");
    let oldest_first = page_all(rt, &all, WorkerSort::UpdatedAt, SortOrder::Asc, 4).await;
    assert_eq!(
        oldest_first.last().unwrap().worker_id,
        made[1],
        "updated_at asc"
    );

    // Bad filters and cursors.
    let bad_key = WorkerFilter {
        metadata: [("bad key".to_owned(), "v".to_owned())].into(),
        ..WorkerFilter::default()
    };
    assert_code(
        rt.count_workers(bad_key.clone()).await.map(|_| ()),
        ErrorCode::InvalidRequest,
        "a bad metadata key in a filter",
    );
    let first = rt
        .list_workers(WorkerListQuery {
            filter: all.clone(),
            limit: Some(1),
            ..WorkerListQuery::default()
        })
        .await
        .unwrap();
    let cursor = first
        .next_cursor
        .expect("a first page of 1 of 6 has a cursor");
    for (what, query) in [
        (
            "a cursor with another filter",
            WorkerListQuery {
                filter: by_run("other"),
                cursor: Some(cursor.clone()),
                ..WorkerListQuery::default()
            },
        ),
        (
            "a cursor with another sort",
            WorkerListQuery {
                filter: all.clone(),
                sort: WorkerSort::UpdatedAt,
                cursor: Some(cursor.clone()),
                ..WorkerListQuery::default()
            },
        ),
        (
            "a cursor that was never issued",
            WorkerListQuery {
                cursor: Some("c1.garbage".into()),
                ..WorkerListQuery::default()
            },
        ),
    ] {
        assert_code(
            rt.list_workers(query).await.map(|_| ()),
            ErrorCode::InvalidRequest,
            what,
        );
    }
    for id in made {
        let _ = rt.delete_worker(&id).await;
    }
    Outcome::Passed
}

/// A change made between two pages of a paging pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassChange {
    /// Nothing.
    Nothing,
    /// Create a matching Worker.
    Create,
    /// Rename the n-th Worker still there (modulo their number).
    Update(usize),
    /// Delete the n-th Worker still there (modulo their number).
    Delete(usize),
}

/// Which Workers a paging pass of [`check_paging_pass`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassFilter {
    /// Those with the pass's own metadata tag (safe on a shared Runtime).
    Tagged,
    /// Every Worker: only for a Runtime that holds nothing else.
    Unfiltered,
    /// Every Worker in any state: only for a Runtime that holds nothing
    /// else.
    AnyState,
}

/// Pages through `start` matching Workers with pages of `limit`, making
/// the next change of `changes` before each page after the first, and
/// checks the contract's promise: every Worker that exists throughout is
/// shown exactly once, in either sort and order. Needs `search_workers`,
/// `create_worker`, `update_worker` and `delete_worker`.
pub async fn check_paging_pass(
    rt: &DynRuntime,
    which: PassFilter,
    (sort, order): (WorkerSort, SortOrder),
    start: usize,
    limit: u32,
    changes: &[PassChange],
) {
    let tag = run_tag("pass");
    let filter = match which {
        PassFilter::Tagged => by_run(&tag),
        PassFilter::Unfiltered => WorkerFilter::default(),
        PassFilter::AnyState => WorkerFilter {
            state: vec![
                WorkerState::Idle,
                WorkerState::Running,
                WorkerState::Stopping,
                WorkerState::Stopped,
                WorkerState::Failed,
            ],
            ..WorkerFilter::default()
        },
    };
    let mut alive: Vec<WorkerId> = Vec::new();
    for _ in 0..start {
        alive.push(create_tagged(rt, tagged(&tag, &[])).await);
    }
    let at_start: BTreeSet<WorkerId> = alive.iter().cloned().collect();
    let mut deleted = BTreeSet::new();
    let mut updated = BTreeSet::new();
    let mut shown: BTreeMap<WorkerId, usize> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    for page_number in 0usize.. {
        // One change before each page after the first, while they last
        // (cycling creates could chase the end of the pass for ever).
        if let Some(change) = page_number.checked_sub(1).and_then(|n| changes.get(n)) {
            match *change {
                PassChange::Nothing => {}
                PassChange::Create => alive.push(create_tagged(rt, tagged(&tag, &[])).await),
                PassChange::Update(n) if !alive.is_empty() => {
                    let id = alive[n % alive.len()].clone();
                    let rename = UpdateWorkerRequest {
                        display_name: Some(format!("renamed on page {page_number}")),
                        metadata: None,
                    };
                    rt.update_worker(&id, rename).await.unwrap();
                    updated.insert(id);
                }
                PassChange::Delete(n) if !alive.is_empty() => {
                    let id = alive.remove(n % alive.len());
                    rt.delete_worker(&id).await.unwrap();
                    deleted.insert(id);
                }
                _ => {}
            }
        }
        let page = page(rt, &filter, (sort, order), limit, cursor.take()).await;
        for summary in page.items {
            *shown.entry(summary.worker_id).or_default() += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(
            page_number <= 2 * (start + changes.len()) + 2,
            "the pass does not end"
        );
    }
    for id in at_start.difference(&deleted) {
        let times = shown.get(id).copied().unwrap_or(0);
        assert_eq!(
            times,
            1,
            "{sort:?} {order:?}: {id} was shown {times} times (updated during the pass: {})",
            updated.contains(id)
        );
    }
    if which != PassFilter::Tagged {
        // Nothing else in the Runtime: a new pass and a count agree.
        let all = page_all(rt, &filter, sort, order, 50).await;
        let count = rt.count_workers(filter.clone()).await.unwrap().count;
        assert_eq!(count as usize, all.len(), "count and list of {which:?}");
        assert_eq!(all.len(), alive.len(), "every Worker left, once");
    }
    for id in shown.keys() {
        assert!(
            at_start.contains(id) || alive.contains(id) || deleted.contains(id),
            "{id} is not a Worker of this pass"
        );
    }
    for id in alive {
        let _ = rt.delete_worker(&id).await;
    }
}

/// [`check_paging_pass`] for every sort and order, with Workers created,
/// updated and deleted between pages.
pub async fn paging_pass(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    require!(
        caps,
        search_workers,
        create_worker,
        update_worker,
        delete_worker
    );
    let changes = [
        PassChange::Update(0),
        PassChange::Create,
        PassChange::Delete(3),
        PassChange::Update(5),
        PassChange::Nothing,
        PassChange::Update(2),
    ];
    for sort in [WorkerSort::CreatedAt, WorkerSort::UpdatedAt] {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            check_paging_pass(rt, PassFilter::Tagged, (sort, order), 9, 2, &changes).await;
        }
    }
    Outcome::Passed
}
