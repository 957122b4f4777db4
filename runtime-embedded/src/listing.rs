//! Listing, finding and counting Workers: from the memory index when every
//! Worker is in memory, from the store otherwise.

use std::sync::Arc;

use yoi_runtime_api::dto::{
    PASS_HORIZON_SECS, PageKey, PassOrder, SortOrder, WorkerCount, WorkerCursor, WorkerFilter,
    WorkerListQuery, WorkerPage, WorkerSort, WorkerSummary, state_name, timestamp_nanos,
};
use yoi_runtime_api::{Result, RuntimeError};

use crate::shared::Shared;

/// Where a query starts: its pass order and the key it continues after.
async fn start(query: &WorkerListQuery, shared: &Shared) -> Result<(PassOrder, Option<PageKey>)> {
    match (&query.cursor, &query.after) {
        (Some(_), Some(_)) => Err(RuntimeError::invalid_request(
            "pass either cursor or after, not both",
        )),
        (Some(text), None) => {
            let cursor = WorkerCursor::decode(text, query.sort, query.order, &query.filter)?;
            let now = timestamp_nanos(shared.context.stamps.now());
            if cursor.pass.sort == WorkerSort::UpdatedAt
                && cursor.pass.snapshot < now.saturating_sub(PASS_HORIZON_SECS * 1_000_000_000)
            {
                return Err(pass_too_old());
            }
            Ok((cursor.pass, Some(cursor.last)))
        }
        (None, Some(after)) => {
            if query.sort != WorkerSort::CreatedAt || query.order != SortOrder::Asc {
                return Err(RuntimeError::invalid_request(
                    "after works with the default sort and order only; use cursor",
                ));
            }
            let pass = new_pass(query, shared).await;
            Ok((pass, Some(pass.main_key(after, 0))))
        }
        (None, None) => Ok((new_pass(query, shared).await, None)),
    }
}

/// A cursor of an `updated_at` pass older than the moves the Runtime keeps.
fn pass_too_old() -> RuntimeError {
    RuntimeError::invalid_request(format!(
        "this cursor's pass started longer ago than the {PASS_HORIZON_SECS} s an updated_at pass \
         may take (or more Workers changed meanwhile than the Runtime keeps track of); \
         start again without a cursor"
    ))
}

async fn new_pass(query: &WorkerListQuery, shared: &Shared) -> PassOrder {
    PassOrder {
        sort: query.sort,
        order: query.order,
        // Later than every `updated_at` handed out so far, earlier than
        // every one to come, and taken once every change dated before it
        // is in the index or recorded in the store (`stamps.rs`), so the
        // first page sees each Worker at its place as of the snapshot.
        snapshot: match query.sort {
            WorkerSort::UpdatedAt => shared.context.stamps.snapshot().await,
            WorkerSort::CreatedAt => 0,
        },
    }
}

impl Shared {
    /// A page of Workers for `query`, with at most `limit` of them.
    pub(crate) async fn list(
        self: &Arc<Self>,
        query: WorkerListQuery,
        limit: usize,
    ) -> Result<WorkerPage> {
        query.filter.validate()?;
        let (pass, after) = start(&query, self).await?;
        let (found, more) = self.find(pass, query.filter.clone(), after, limit).await?;
        let last = found.last().filter(|_| more).map(|(key, _)| key.clone());
        let next_cursor = last.as_ref().map(|last| {
            WorkerCursor {
                pass,
                filter: query.filter.fingerprint(),
                last: last.clone(),
            }
            .encode()
        });
        let next_after = last
            .filter(|_| pass.sort == WorkerSort::CreatedAt && pass.order == SortOrder::Asc)
            .map(|key| key.worker_id);
        Ok(WorkerPage {
            items: found.into_iter().map(|(_, summary)| summary).collect(),
            next_after,
            next_cursor,
        })
    }

    /// Up to `limit` matching Workers after `after` with their keys, and
    /// whether more follow. Resident Workers are shown as they are now.
    async fn find(
        self: &Arc<Self>,
        pass: PassOrder,
        filter: WorkerFilter,
        after: Option<PageKey>,
        limit: usize,
    ) -> Result<(Vec<(PageKey, WorkerSummary)>, bool)> {
        if let Some(index) = &self.context.index {
            let (keys, more) = index
                .page(&pass, &filter, after.as_ref(), limit)
                .ok_or_else(pass_too_old)?;
            let found = keys
                .into_iter()
                // A Worker deleted since the index was read is left out.
                .filter_map(|key| {
                    let worker = self.directory.get(&key.worker_id)?;
                    Some((key, worker.summary(&self.context)))
                })
                .collect();
            return Ok((found, more));
        }
        // Read your writes: a Worker just stopped or renamed is found as it
        // is now, not as the last group commit left it.
        self.all_durable().await?;
        let shared = self.clone();
        let mut stored = tokio::task::spawn_blocking(move || {
            shared
                .store
                .search(&pass, &filter, after.as_ref(), limit + 1)
        })
        .await
        .map_err(|e| RuntimeError::internal("listing workers failed", e))?
        .map_err(|err| self.store_failed(&err))?
        .ok_or_else(pass_too_old)?;
        let more = stored.len() > limit;
        stored.truncate(limit);
        let found = stored
            .into_iter()
            .map(|(key, stored)| {
                let summary = match self.directory.get(&stored.meta.worker_id) {
                    Some(worker) => worker.summary(&self.context),
                    None => self.stored_summary(stored),
                };
                (key, summary)
            })
            .collect();
        Ok((found, more))
    }

    /// Waits until everything recorded is on disk, so that the store
    /// answers as memory would. While the store's writes fail or stall that
    /// cannot happen, and the store answers with what it has: lists and
    /// counts go on, behind by the changes the disk has not taken (Workers
    /// in memory are still shown as they are now).
    async fn all_durable(&self) -> Result<()> {
        if self.store.is_stalled() {
            return Ok(());
        }
        match self.store.durable(self.store.recorded()).await {
            Ok(()) => Ok(()),
            Err(_) if self.store.has_failed() => Ok(()),
            Err(err) => Err(self.store_failed(&err)),
        }
    }

    /// How many Workers match `filter`.
    pub(crate) async fn count(self: &Arc<Self>, filter: WorkerFilter) -> Result<WorkerCount> {
        filter.validate()?;
        if filter.profile.is_none() && filter.metadata.is_empty() {
            // States alone: the per-state counts the status keeps.
            let counts = self.context.counts();
            let count = if filter.state.is_empty() {
                counts.total()
            } else {
                let mut states = filter.state.clone();
                states.sort_unstable_by_key(|s| state_name(*s));
                states.dedup();
                states.into_iter().map(|s| counts.of(s)).sum()
            };
            return Ok(WorkerCount { count });
        }
        if let Some(index) = &self.context.index {
            return Ok(WorkerCount {
                count: index.count(&filter),
            });
        }
        self.all_durable().await?;
        let shared = self.clone();
        let count = tokio::task::spawn_blocking(move || shared.store.count(&filter))
            .await
            .map_err(|e| RuntimeError::internal("counting workers failed", e))?
            .map_err(|err| self.store_failed(&err))?;
        Ok(WorkerCount { count })
    }
}
