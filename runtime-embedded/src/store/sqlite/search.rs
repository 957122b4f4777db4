//! Finding Workers in SQLite: filters, sort orders and counts as indexed
//! queries.
//!
//! A metadata pair drives the query from `worker_metadata`, whose key
//! `(key, value, worker_id)` hands out the matching Workers in id order; a
//! profile drives it from `workers_by_profile`; otherwise the id key or
//! `workers_by_updated` does. Other conditions filter the rows found.

use rusqlite::types::Value;
use yoi_runtime_api::dto::{
    PageKey, PagePhase, PassOrder, SortOrder, WorkerFilter, WorkerSort, state_name,
};

use super::{SUMMARY_COLUMNS, summary_row};
use crate::store::StoredSummary;

/// A query's FROM and WHERE, and its parameters.
struct Query {
    from: String,
    conditions: Vec<String>,
    params: Vec<Value>,
    /// The column that orders Workers by id.
    id_column: &'static str,
}

impl Query {
    fn new(filter: &WorkerFilter) -> Self {
        let mut query = Query {
            from: "workers AS w".to_owned(),
            conditions: Vec::new(),
            params: Vec::new(),
            id_column: "w.id",
        };
        let mut pairs = filter.metadata.iter();
        if let Some((key, value)) = pairs.next() {
            // CROSS JOIN keeps this order: the pair's index drives.
            query.from = "worker_metadata AS m CROSS JOIN workers AS w".to_owned();
            query
                .conditions
                .push("m.key = ? AND m.value = ? AND w.id = m.worker_id".into());
            query.params.push(Value::Text(key.clone()));
            query.params.push(Value::Text(value.clone()));
            query.id_column = "m.worker_id";
        }
        for (key, value) in pairs {
            query.push_pair(key, value);
        }
        query.push_profile_and_state(filter);
        query
    }

    /// The Worker has this metadata pair.
    fn push_pair(&mut self, key: &str, value: &str) {
        self.conditions.push(
            "EXISTS (SELECT 1 FROM worker_metadata AS o \
             WHERE o.key = ? AND o.value = ? AND o.worker_id = w.id)"
                .into(),
        );
        self.params.push(Value::Text(key.to_owned()));
        self.params.push(Value::Text(value.to_owned()));
    }

    fn push_profile_and_state(&mut self, filter: &WorkerFilter) {
        if let Some(profile) = &filter.profile {
            self.conditions.push("w.profile = ?".into());
            self.params.push(Value::Text(profile.clone()));
        }
        if !filter.state.is_empty() {
            let marks = vec!["?"; filter.state.len()].join(", ");
            self.conditions.push(format!("w.state IN ({marks})"));
            self.params.extend(
                filter
                    .state
                    .iter()
                    .map(|s| Value::Text(state_name(*s).to_owned())),
            );
        }
    }

    /// The filter as conditions on the Worker row `w` alone (metadata
    /// pairs as `EXISTS`), for queries that choose their own `FROM`.
    fn conditions(filter: &WorkerFilter) -> Self {
        let mut query = Query {
            from: String::new(),
            conditions: Vec::new(),
            params: Vec::new(),
            id_column: "w.id",
        };
        for (key, value) in &filter.metadata {
            query.push_pair(key, value);
        }
        query.push_profile_and_state(filter);
        query
    }

    fn condition(mut self, sql: String, params: impl IntoIterator<Item = Value>) -> Self {
        self.conditions.push(sql);
        self.params.extend(params);
        self
    }

    fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// How many Workers match.
pub(super) fn count(
    tx: &rusqlite::Transaction<'_>,
    filter: &WorkerFilter,
) -> rusqlite::Result<u64> {
    if let [(key, value)] = filter.metadata.iter().collect::<Vec<_>>()[..]
        && filter.state.is_empty()
        && filter.profile.is_none()
    {
        // One pair alone: its rows are the answer.
        return tx
            .prepare_cached("SELECT COUNT(*) FROM worker_metadata WHERE key = ?1 AND value = ?2")?
            .query_row(rusqlite::params![key, value], |row| row.get::<_, i64>(0))
            .map(|n| n as u64);
    }
    let query = Query::new(filter);
    let sql = format!(
        "SELECT COUNT(*) FROM {}{}",
        query.from,
        query.where_clause()
    );
    let count: i64 = tx
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(query.params), |row| row.get(0))?;
    Ok(count as u64)
}

/// Up to `want` matching Workers after `after`, in the pass's order, with
/// their keys.
pub(super) fn page(
    tx: &rusqlite::Transaction<'_>,
    pass: &PassOrder,
    filter: &WorkerFilter,
    after: Option<&PageKey>,
    want: usize,
) -> rusqlite::Result<Vec<(PageKey, StoredSummary)>> {
    let (cmp, dir) = match pass.order {
        SortOrder::Asc => (">", "ASC"),
        SortOrder::Desc => ("<", "DESC"),
    };
    let columns = columns();
    let mut found = Vec::new();
    match pass.sort {
        WorkerSort::CreatedAt => {
            let mut query = Query::new(filter);
            if let Some(after) = after {
                let sql = format!("{} {cmp} ?", query.id_column);
                query = query.condition(sql, [Value::Text(after.worker_id.to_string())]);
            }
            let sql = format!(
                "SELECT {columns}, 0 FROM {}{} ORDER BY {} {dir} LIMIT ?",
                query.from,
                query.where_clause(),
                query.id_column
            );
            run(tx, &sql, query.params, want, &mut found, |id, _| {
                pass.main_key(id, 0)
            })?;
        }
        WorkerSort::UpdatedAt => {
            let snapshot = Value::Integer(pass.snapshot);
            if after.is_none_or(|k| k.phase == PagePhase::Main) {
                // Not moved since the snapshot: as they are; moved since:
                // where their crossing move says they stood. One merged
                // order (SQLite merges the two ordered halves).
                let cursor = |column: &str| {
                    after.map(|a| {
                        (
                            format!("({column}, w.id) {cmp} (?, ?)"),
                            vec![
                                Value::Integer(a.nanos),
                                Value::Text(a.worker_id.to_string()),
                            ],
                        )
                    })
                };
                let mut unmoved = Query::conditions(filter)
                    .condition("w.updated_at <= ?".into(), [snapshot.clone()]);
                let mut moved = Query::conditions(filter).condition(
                    "m.new_key > ? AND m.old_key <= ? AND w.id = m.worker_id".into(),
                    [snapshot.clone(), snapshot.clone()],
                );
                if let Some((sql, params)) = cursor("w.updated_at") {
                    unmoved = unmoved.condition(sql, params);
                }
                if let Some((sql, params)) = cursor("m.old_key") {
                    moved = moved.condition(sql, params);
                }
                let sql = format!(
                    "SELECT {columns}, w.updated_at FROM workers AS w{}
                     UNION ALL
                     SELECT {columns}, m.old_key FROM worker_moves AS m, workers AS w{}
                     ORDER BY 15 {dir}, 1 {dir} LIMIT ?",
                    unmoved.where_clause(),
                    moved.where_clause()
                );
                let mut params = unmoved.params;
                params.extend(moved.params);
                run(tx, &sql, params, want, &mut found, |id, nanos| {
                    pass.main_key(id, nanos)
                })?;
            }
            if found.len() < want {
                // Created since the snapshot, by creation time.
                let mut query =
                    Query::conditions(filter).condition("w.created_at > ?".into(), [snapshot]);
                if let Some(after) = after.filter(|k| k.phase == PagePhase::Tail) {
                    query = query.condition(
                        format!("(w.created_at, w.id) {cmp} (?, ?)"),
                        [
                            Value::Integer(after.nanos),
                            Value::Text(after.worker_id.to_string()),
                        ],
                    );
                }
                let sql = format!(
                    "SELECT {columns}, w.created_at FROM workers AS w{} \
                     ORDER BY w.created_at {dir}, w.id {dir} LIMIT ?",
                    query.where_clause()
                );
                let rest = want - found.len();
                run(tx, &sql, query.params, rest, &mut found, |id, nanos| {
                    pass.tail_key(id, nanos)
                })?;
            }
        }
    }
    Ok(found)
}

/// The summary columns, of the Worker row `w`.
fn columns() -> String {
    SUMMARY_COLUMNS
        .split(',')
        .map(|c| format!("w.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `sql` (summary columns, then the key's nanoseconds, then `LIMIT ?`)
/// and appends what it finds with the key `make_key` gives.
fn run(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    mut params: Vec<Value>,
    want: usize,
    found: &mut Vec<(PageKey, StoredSummary)>,
    make_key: impl Fn(&yoi_runtime_api::WorkerId, i64) -> PageKey,
) -> rusqlite::Result<()> {
    params.push(Value::Integer(want as i64));
    let rows = tx
        .prepare_cached(sql)?
        .query_map(rusqlite::params_from_iter(params), |row| {
            Ok((summary_row(row)?, row.get::<_, i64>(14)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    found.extend(rows.into_iter().map(|(summary, nanos)| {
        let key = make_key(&summary.meta.worker_id, nanos);
        (key, summary)
    }));
    Ok(())
}
