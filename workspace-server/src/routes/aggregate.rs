//! `/api/workers`: the Workers of every Runtime, filtered, merged by the
//! sort key, and paged under one composite cursor.
//!
//! The composite cursor holds, for each Runtime, the position its own
//! pages reached: a cursor (or `after` id) that Runtime issued, "not
//! started" or "exhausted". **Each Runtime's share of the pages is a paging
//! pass of that Runtime**, resumed only from positions it issued, so the
//! contract's guarantee (a Worker that exists throughout the pass is shown
//! exactly once) carries over to the merged list. When a page takes only some
//! of a Runtime's Workers, that Runtime is asked again for exactly that
//! many, so its next position is one it issued itself.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::json::Json;
use axum::extract::{RawQuery, State};
use yoi_runtime_api::dto::{
    SortOrder, WorkerListQuery, WorkerPage, WorkerSort, WorkerSummary, timestamp_nanos,
};
use yoi_runtime_api::{Operation, Result, RuntimeError, RuntimeId, WorkerId, resolve_limit};

use crate::error::ApiError;
use crate::registry::RuntimeEntry;
use crate::state::AppState;
use crate::views::{AggregateQuery, AggregatedWorker, AggregatedWorkers, FilterParams, SortParams};

const AGGREGATE_DEFAULT: u32 = 50;
const AGGREGATE_MAX: u32 = 500;
/// The longest composite cursor accepted, in bytes.
const MAX_COMPOSITE_BYTES: usize = 16 * 1024;

/// Where one Runtime's share of a merged pass stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    /// Nothing taken from it yet.
    Start,
    /// Continue with this cursor it issued.
    Cursor(String),
    /// Continue after this id (a Runtime that lists without search).
    After(WorkerId),
    /// Everything taken.
    Done,
}

/// The composite cursor: the query's shape and each Runtime's position.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Composite {
    shape: String,
    positions: BTreeMap<RuntimeId, Position>,
}

fn shape(query: &WorkerListQuery) -> String {
    format!(
        "{}{}.{:x}",
        query.sort.as_str(),
        query.order.as_str(),
        query.filter.fingerprint()
    )
}

impl Composite {
    fn encode(&self) -> String {
        let mut text = format!("w1.{}", self.shape);
        for (runtime_id, position) in &self.positions {
            text.push('~');
            text.push_str(runtime_id.as_str());
            text.push('!');
            match position {
                Position::Start => {}
                Position::Cursor(cursor) => {
                    text.push('c');
                    text.push_str(cursor);
                }
                Position::After(id) => {
                    text.push('a');
                    text.push_str(id.as_str());
                }
                Position::Done => text.push('-'),
            }
        }
        text
    }

    fn decode(text: &str, query: &WorkerListQuery) -> Result<Self> {
        let invalid = || {
            RuntimeError::invalid_request(
                "cursor is not one this API issued; start again without a cursor",
            )
        };
        if text.len() > MAX_COMPOSITE_BYTES {
            return Err(invalid());
        }
        let mut parts = text.split('~');
        let head = parts.next().ok_or_else(invalid)?;
        let found_shape = head.strip_prefix("w1.").ok_or_else(invalid)?;
        if found_shape != shape(query) {
            return Err(RuntimeError::invalid_request(
                "cursor belongs to a query with another sort, order or filter; \
                 pass the same parameters as the page it came from",
            ));
        }
        let mut positions = BTreeMap::new();
        for part in parts {
            let (runtime_id, position) = part.split_once('!').ok_or_else(invalid)?;
            let runtime_id: RuntimeId = runtime_id.parse().map_err(|_| invalid())?;
            let position = match position.split_at_checked(1) {
                None => Position::Start,
                Some(("-", "")) => Position::Done,
                Some(("c", cursor)) if !cursor.is_empty() => Position::Cursor(cursor.to_owned()),
                Some(("a", id)) => Position::After(id.parse().map_err(|_| invalid())?),
                Some(_) => return Err(invalid()),
            };
            positions.insert(runtime_id, position);
        }
        Ok(Self {
            shape: found_shape.to_owned(),
            positions,
        })
    }
}

/// One Runtime's page in a merged page.
struct Share<'a> {
    entry: &'a RuntimeEntry,
    /// The query it was asked (to ask again for fewer).
    query: WorkerListQuery,
    page: WorkerPage,
    taken: usize,
}

fn next_position(page: &WorkerPage) -> Position {
    match (&page.next_cursor, &page.next_after) {
        (Some(cursor), _) => Position::Cursor(cursor.clone()),
        (None, Some(after)) => Position::After(after.clone()),
        (None, None) => Position::Done,
    }
}

/// The merge order: by `updated_at` or by id, then Runtime and id.
fn merge_order(query: &WorkerListQuery, a: &WorkerSummary, b: &WorkerSummary) -> Ordering {
    let key = |s: &WorkerSummary| match query.sort {
        WorkerSort::UpdatedAt => timestamp_nanos(s.updated_at),
        WorkerSort::CreatedAt => 0,
    };
    let ordering = (key(a), a.worker_id.as_str(), a.runtime_id.as_str()).cmp(&(
        key(b),
        b.worker_id.as_str(),
        b.runtime_id.as_str(),
    ));
    match query.order {
        SortOrder::Asc => ordering,
        SortOrder::Desc => ordering.reverse(),
    }
}

/// Reads the aggregate query: the list query's names, with `cursor` being
/// the composite cursor and `after` not taken.
fn parse_query(raw: &str) -> Result<(WorkerListQuery, Option<String>)> {
    let mut cursor = None;
    let mut rest = Vec::new();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        match name.as_ref() {
            "cursor" if cursor.is_some() => {
                return Err(RuntimeError::invalid_request(
                    "query parameter 'cursor' is given twice",
                ));
            }
            "cursor" => cursor = Some(value.into_owned()),
            "after" => {
                return Err(RuntimeError::invalid_request(
                    "/api/workers pages with cursor, not after",
                ));
            }
            _ => rest.push((name, value)),
        }
    }
    let query =
        WorkerListQuery::from_query_pairs(rest.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
    query.filter.validate()?;
    Ok((query, cursor))
}

/// Workers of every Runtime that can list them, merged by the sort key.
/// Takes the filters, `sort` and `order` of a Runtime's Worker list, and
/// `metadata.KEY=VALUE` pairs; Runtimes that cannot filter or sort are
/// left out of a filtered or sorted list and named in `skipped`.
#[utoipa::path(
    get,
    path = "/api/workers",
    tag = "workers",
    params(AggregateQuery, SortParams, FilterParams),
    responses((status = 200, body = AggregatedWorkers))
)]
pub(crate) async fn all_workers(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AggregatedWorkers>, ApiError> {
    let (query, cursor) = parse_query(raw.as_deref().unwrap_or(""))?;
    let limit = resolve_limit(query.limit, AGGREGATE_DEFAULT, AGGREGATE_MAX)?;
    let composite = cursor
        .map(|text| Composite::decode(&text, &query))
        .transpose()?;
    let searching = WorkerListQuery {
        cursor: None,
        after: None,
        limit: None,
        ..query.clone()
    }
    .is_search();
    let mut view = AggregatedWorkers {
        items: Vec::new(),
        next_cursor: None,
        truncated: Vec::new(),
        unavailable: Vec::new(),
        skipped: Vec::new(),
    };
    let mut positions = composite.map(|c| c.positions).unwrap_or_default();
    let registry = state.registry();
    // Each Runtime's query from its position; `None` for Runtimes left out.
    let mut asked: BTreeMap<RuntimeId, WorkerListQuery> = BTreeMap::new();
    for entry in registry.entries() {
        let caps = entry.capabilities();
        // A Runtime that has not answered yet (a remote host that is down)
        // cannot say what it can do: it is asked like the others, refused
        // as unavailable, and named in `unavailable`, not left out unsaid.
        if entry.is_known() && !caps.supports(Operation::ListWorkers) {
            continue;
        }
        if entry.is_known() && searching && !caps.supports(Operation::SearchWorkers) {
            view.skipped.push(entry.id().clone());
            continue;
        }
        let position = positions
            .entry(entry.id().clone())
            .or_insert(Position::Start);
        let mut runtime_query = WorkerListQuery {
            limit: Some(limit.min(caps.max_worker_page.unwrap_or(limit))),
            cursor: None,
            after: None,
            ..query.clone()
        };
        match position {
            Position::Done => continue,
            Position::Start => {}
            Position::Cursor(cursor) => runtime_query.cursor = Some(cursor.clone()),
            Position::After(id) => runtime_query.after = Some(id.clone()),
        }
        asked.insert(entry.id().clone(), runtime_query);
    }
    let answers = registry
        .fan_out(state.aggregate_deadline(), |entry| {
            match asked.get(entry.id()) {
                // Through the registry like every other call.
                Some(query) => {
                    let call = registry.list_workers(entry.id(), query.clone());
                    Box::pin(async move { call.await.map(Some) })
                }
                None => Box::pin(std::future::ready(Ok(None))),
            }
        })
        .await;
    let mut shares = Vec::new();
    for (entry, answer) in answers {
        match answer {
            Ok(None) => {}
            Ok(Some(page)) => {
                entry.note_answer();
                shares.push(Share {
                    entry,
                    query: asked[entry.id()].clone(),
                    page,
                    taken: 0,
                });
            }
            Err(err) => {
                entry.note_failure(&err, "listing workers failed");
                view.unavailable.push(entry.id().clone());
            }
        }
    }
    take_first(&query, &mut shares, limit as usize);
    for share in &mut shares {
        let runtime_id = share.entry.id().clone();
        let position = if share.taken == share.page.items.len() {
            next_position(&share.page)
        } else if share.taken == 0 {
            view.truncated.push(runtime_id);
            continue;
        } else {
            // Ask again for exactly as many, so the position is its own.
            let again = WorkerListQuery {
                limit: Some(share.taken as u32),
                ..share.query.clone()
            };
            match registry.list_workers(&runtime_id, again).await {
                Ok(page) => {
                    share.taken = page.items.len();
                    let position = next_position(&page);
                    share.page = page;
                    position
                }
                Err(err) => {
                    share.entry.note_failure(&err, "listing workers failed");
                    view.unavailable.push(runtime_id);
                    share.taken = 0;
                    continue;
                }
            }
        };
        if position != Position::Done {
            view.truncated.push(runtime_id.clone());
        }
        positions.insert(runtime_id, position);
    }
    for share in shares {
        let implementation = share.entry.implementation();
        view.items.extend(
            share
                .page
                .items
                .into_iter()
                .take(share.taken)
                .map(|summary| AggregatedWorker {
                    summary,
                    implementation,
                }),
        );
    }
    view.items
        .sort_by(|a, b| merge_order(&query, &a.summary, &b.summary));
    let more = positions.values().any(|p| *p != Position::Done);
    if more {
        view.next_cursor = Some(
            Composite {
                shape: shape(&query),
                positions,
            }
            .encode(),
        );
    }
    Ok(Json(view))
}

/// Marks in each share how many of its Workers the merged page of `limit`
/// takes.
fn take_first(query: &WorkerListQuery, shares: &mut [Share<'_>], limit: usize) {
    let mut taken = 0;
    while taken < limit {
        let next = shares
            .iter()
            .enumerate()
            .filter_map(|(i, share)| share.page.items.get(share.taken).map(|s| (i, s)))
            .min_by(|(_, a), (_, b)| merge_order(query, a, b))
            .map(|(i, _)| i);
        let Some(i) = next else {
            return;
        };
        shares[i].taken += 1;
        taken += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_cursor_round_trips_and_checks_its_query() {
        let query = WorkerListQuery {
            sort: WorkerSort::UpdatedAt,
            ..WorkerListQuery::default()
        };
        let composite = Composite {
            shape: shape(&query),
            positions: [
                ("a".parse().unwrap(), Position::Start),
                ("b".parse().unwrap(), Position::Done),
                (
                    "c".parse().unwrap(),
                    Position::Cursor("c1.uam.1.2.3.w-x".into()),
                ),
                (
                    "d".parse().unwrap(),
                    Position::After("w-9".parse().unwrap()),
                ),
            ]
            .into(),
        };
        let text = composite.encode();
        assert_eq!(Composite::decode(&text, &query).unwrap(), composite);
        let other = WorkerListQuery::default();
        assert!(Composite::decode(&text, &other).is_err());
        for garbage in [
            "",
            "w1",
            "w2.x",
            &format!("{text}~bad"),
            &format!("{text}~e!x"),
        ] {
            assert!(Composite::decode(garbage, &query).is_err(), "{garbage}");
        }
    }
}
