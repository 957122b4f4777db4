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
            query.conditions.push(
                "EXISTS (SELECT 1 FROM worker_metadata AS o \
                 WHERE o.key = ? AND o.value = ? AND o.worker_id = w.id)"
                    .into(),
            );
            query.params.push(Value::Text(key.clone()));
            query.params.push(Value::Text(value.clone()));
        }
        if let Some(profile) = &filter.profile {
            query.conditions.push("w.profile = ?".into());
            query.params.push(Value::Text(profile.clone()));
        }
        if !filter.state.is_empty() {
            let marks = vec!["?"; filter.state.len()].join(", ");
            query.conditions.push(format!("w.state IN ({marks})"));
            query.params.extend(
                filter
                    .state
                    .iter()
                    .map(|s| Value::Text(state_name(*s).to_owned())),
            );
        }
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
    let mut found = Vec::new();
    match pass.sort {
        WorkerSort::CreatedAt => {
            let mut query = Query::new(filter);
            if let Some(after) = after {
                let sql = format!("{} {cmp} ?", query.id_column);
                query = query.condition(sql, [Value::Text(after.worker_id.to_string())]);
            }
            let order = format!("{} {dir}", query.id_column);
            run(tx, pass, query, &order, want, &mut found)?;
        }
        WorkerSort::UpdatedAt => {
            if after.is_none_or(|k| k.phase == PagePhase::Main) {
                let mut query = Query::new(filter)
                    .condition("w.updated_at <= ?".into(), [Value::Integer(pass.snapshot)]);
                if let Some(after) = after {
                    query = query.condition(
                        format!("(w.updated_at, w.id) {cmp} (?, ?)"),
                        [
                            Value::Integer(after.nanos),
                            Value::Text(after.worker_id.to_string()),
                        ],
                    );
                }
                let order = format!("w.updated_at {dir}, w.id {dir}");
                run(tx, pass, query, &order, want, &mut found)?;
            }
            if found.len() < want {
                let mut query = Query::new(filter)
                    .condition("w.updated_at > ?".into(), [Value::Integer(pass.snapshot)]);
                if let Some(after) = after.filter(|k| k.phase == PagePhase::Tail) {
                    query = query.condition(
                        format!("w.id {cmp} ?"),
                        [Value::Text(after.worker_id.to_string())],
                    );
                }
                let order = format!("w.id {dir}");
                let rest = want - found.len();
                run(tx, pass, query, &order, rest, &mut found)?;
            }
        }
    }
    Ok(found)
}

fn run(
    tx: &rusqlite::Transaction<'_>,
    pass: &PassOrder,
    mut query: Query,
    order: &str,
    want: usize,
    found: &mut Vec<(PageKey, StoredSummary)>,
) -> rusqlite::Result<()> {
    let columns = SUMMARY_COLUMNS
        .split(',')
        .map(|c| format!("w.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    query.params.push(Value::Integer(want as i64));
    let sql = format!(
        "SELECT {columns} FROM {}{} ORDER BY {order} LIMIT ?",
        query.from,
        query.where_clause()
    );
    let rows = tx
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(query.params), summary_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    found.extend(rows.into_iter().map(|summary| {
        let key = pass.key(
            &summary.meta.worker_id,
            yoi_runtime_api::dto::timestamp_nanos(summary.status.updated_at),
        );
        (key, summary)
    }));
    Ok(())
}
