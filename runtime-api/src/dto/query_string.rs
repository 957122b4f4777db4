//! The query-string form of [`WorkerListQuery`] and [`WorkerFilter`], shared
//! by the HTTP server (which parses it) and the remote client (which writes
//! it), so the two cannot drift apart.
//!
//! `state` repeats or takes a comma-separated list; `metadata.KEY=VALUE`
//! repeats with different keys; every other name appears at most once.
//! **An unknown name is `invalid_request`, never ignored**: a misspelt
//! filter would otherwise widen the result silently.

use crate::dto::search::state_name;
use crate::dto::search::{SortOrder, WorkerFilter, WorkerListQuery, WorkerSort, parse_state};
use crate::error::{Result, RuntimeError};

/// The longest `cursor` accepted, in bytes.
pub const MAX_CURSOR_BYTES: usize = 512;

const METADATA_PREFIX: &str = "metadata.";

/// The names a list query takes.
const LIST_NAMES: &str = "limit, after, cursor, sort, order, state, profile, metadata.KEY";
/// The names a count takes.
const FILTER_NAMES: &str = "state, profile, metadata.KEY";

impl WorkerFilter {
    /// Reads a filter from decoded query pairs; any other name is
    /// `invalid_request`.
    pub fn from_query_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let mut filter = WorkerFilter::default();
        for (name, value) in pairs {
            if !filter.take_pair(name, value)? {
                return Err(unknown(name, FILTER_NAMES));
            }
        }
        Ok(filter)
    }

    /// Takes one pair if it is a filter's; false when the name is not.
    fn take_pair(&mut self, name: &str, value: &str) -> Result<bool> {
        if name == "state" {
            for state in value.split(',').filter(|s| !s.is_empty()) {
                let state = parse_state(state).ok_or_else(|| {
                    RuntimeError::invalid_request(format!(
                        "state '{}' is not one of idle, running, stopping, stopped, failed",
                        state.escape_debug()
                    ))
                })?;
                if !self.state.contains(&state) {
                    self.state.push(state);
                }
            }
            Ok(true)
        } else if name == "profile" {
            once(&self.profile, name)?;
            self.profile = Some(value.to_owned());
            Ok(true)
        } else if let Some(key) = name.strip_prefix(METADATA_PREFIX) {
            if self.metadata.contains_key(key) {
                return Err(RuntimeError::invalid_request(format!(
                    "metadata.{key} is given twice; a Worker has one value per key"
                )));
            }
            self.metadata.insert(key.to_owned(), value.to_owned());
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The filter's query pairs.
    pub fn to_query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        if !self.state.is_empty() {
            let states: Vec<&str> = self.state.iter().map(|s| state_name(*s)).collect();
            pairs.push(("state".to_owned(), states.join(",")));
        }
        if let Some(profile) = &self.profile {
            pairs.push(("profile".to_owned(), profile.clone()));
        }
        for (key, value) in &self.metadata {
            pairs.push((format!("{METADATA_PREFIX}{key}"), value.clone()));
        }
        pairs
    }
}

impl WorkerListQuery {
    /// Reads a list query from decoded query pairs; an unknown name, a
    /// repeated one or a bad value is `invalid_request`.
    pub fn from_query_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let mut query = WorkerListQuery::default();
        let (mut sort, mut order) = (None, None);
        for (name, value) in pairs {
            match name {
                "limit" => {
                    once(&query.limit, name)?;
                    query.limit = Some(value.parse().map_err(|_| {
                        RuntimeError::invalid_request("limit must be a whole number")
                    })?);
                }
                "after" => {
                    once(&query.after, name)?;
                    query.after = Some(
                        value
                            .parse()
                            .map_err(|e| RuntimeError::invalid_request(format!("after: {e}")))?,
                    );
                }
                "cursor" => {
                    once(&query.cursor, name)?;
                    if value.len() > MAX_CURSOR_BYTES {
                        return Err(RuntimeError::invalid_request(
                            "cursor is not one this API issued; start again without a cursor",
                        ));
                    }
                    query.cursor = Some(value.to_owned());
                }
                "sort" => {
                    once(&sort, name)?;
                    sort = Some(match value {
                        "created_at" => WorkerSort::CreatedAt,
                        "updated_at" => WorkerSort::UpdatedAt,
                        _ => {
                            return Err(RuntimeError::invalid_request(
                                "sort must be created_at or updated_at",
                            ));
                        }
                    });
                }
                "order" => {
                    once(&order, name)?;
                    order = Some(match value {
                        "asc" => SortOrder::Asc,
                        "desc" => SortOrder::Desc,
                        _ => {
                            return Err(RuntimeError::invalid_request("order must be asc or desc"));
                        }
                    });
                }
                _ => {
                    if !query.filter.take_pair(name, value)? {
                        return Err(unknown(name, LIST_NAMES));
                    }
                }
            }
        }
        query.sort = sort.unwrap_or_default();
        query.order = order.unwrap_or_default();
        Ok(query)
    }

    /// The query's pairs, defaults left out.
    pub fn to_query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit".to_owned(), limit.to_string()));
        }
        if let Some(after) = &self.after {
            pairs.push(("after".to_owned(), after.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            pairs.push(("cursor".to_owned(), cursor.clone()));
        }
        if self.sort != WorkerSort::default() {
            pairs.push(("sort".to_owned(), self.sort.as_str().to_owned()));
        }
        if self.order != SortOrder::default() {
            pairs.push(("order".to_owned(), self.order.as_str().to_owned()));
        }
        pairs.extend(self.filter.to_query_pairs());
        pairs
    }
}

fn once<T>(slot: &Option<T>, name: &str) -> Result<()> {
    if slot.is_some() {
        Err(RuntimeError::invalid_request(format!(
            "query parameter '{name}' is given twice"
        )))
    } else {
        Ok(())
    }
}

fn unknown(name: &str, known: &str) -> RuntimeError {
    RuntimeError::invalid_request(format!(
        "unknown query parameter '{}' (this route takes {known})",
        name.escape_debug()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::WorkerState;

    #[test]
    fn list_query_round_trips_through_its_pairs() {
        let query = WorkerListQuery::from_query_pairs([
            ("state", "idle,stopped"),
            ("state", "idle"),
            ("metadata.project", "x"),
            ("metadata.team", "a b"),
            ("profile", "default"),
            ("sort", "updated_at"),
            ("order", "desc"),
            ("limit", "5"),
        ])
        .unwrap();
        assert_eq!(
            query.filter.state,
            vec![WorkerState::Idle, WorkerState::Stopped]
        );
        assert_eq!(query.filter.metadata.len(), 2);
        assert_eq!(query.sort, WorkerSort::UpdatedAt);
        let pairs = query.to_query_pairs();
        let back =
            WorkerListQuery::from_query_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap();
        assert_eq!(back, query);
    }

    #[test]
    fn unknown_repeated_and_bad_names_are_refused() {
        for pairs in [
            vec![("stat", "idle")],
            vec![("limit", "1"), ("limit", "2")],
            vec![("metadata.a", "1"), ("metadata.a", "2")],
            vec![("sort", "name")],
            vec![("order", "up")],
            vec![("state", "sleeping")],
            vec![("limit", "-1")],
        ] {
            let err = WorkerListQuery::from_query_pairs(pairs.clone()).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidRequest, "{pairs:?}");
        }
        let err = WorkerFilter::from_query_pairs([("limit", "1")]).unwrap_err();
        assert!(err.to_string().contains("'limit'"), "{err}");
        assert!(WorkerListQuery::from_query_pairs([]).unwrap() == WorkerListQuery::default());
    }
}
