//! [`LocalCompatRuntime`] and its implementation of the contract.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use yoi_runtime_api::dto::{
    Diagnostic, ImplementationKind, RuntimeState, RuntimeStatus, RuntimeSummary, TranscriptPage,
    TranscriptQuery, WorkerDetail, WorkerListQuery, WorkerPage, WorkerSummary,
};
use yoi_runtime_api::{
    Capabilities, Operation, Result, Runtime, RuntimeError, RuntimeId, WorkerId, resolve_limit,
};

use crate::catalog::Catalog;
use crate::options::LocalCompatLimits;
use crate::transcript::Transcripts;

/// The id this Runtime is registered under by default.
pub const LOCAL_COMPAT_ID: &str = "local-compat";
/// The name people see when none is configured.
pub const DEFAULT_DISPLAY_NAME: &str = "Local workers (read-only)";
const MAX_TRANSCRIPT_PAGE: u32 = 200;
const MAX_WORKER_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 50;

/// The read-only Runtime over a workspace's record files.
#[derive(Clone)]
pub struct LocalCompatRuntime {
    id: RuntimeId,
    display_name: String,
    limits: LocalCompatLimits,
    source: Arc<Source>,
    /// Slots for file-system work; see `max_concurrent_reads`.
    reads: Arc<Semaphore>,
}

/// What the blocking reads share. Locks are taken on blocking threads
/// only, never across `.await`; the catalog's lock is taken before the
/// transcripts' lock.
struct Source {
    catalog: Mutex<Catalog>,
    transcripts: Mutex<Transcripts>,
}

/// Counters of the work done so far, for monitoring and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadStats {
    /// Scans of the workers folder.
    pub folder_scans: u64,
    /// Transcript bytes read while indexing.
    pub transcript_bytes_scanned: u64,
}

impl std::fmt::Debug for LocalCompatRuntime {
    /// Never prints the workspace path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCompatRuntime")
            .field("id", &self.id)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl LocalCompatRuntime {
    /// A Runtime over the records under `workspace`, with default limits.
    pub fn new(workspace: PathBuf) -> Self {
        Self::with_limits(workspace, LocalCompatLimits::default())
    }

    /// A Runtime over the records under `workspace`.
    pub fn with_limits(workspace: PathBuf, limits: LocalCompatLimits) -> Self {
        Self {
            id: RuntimeId::new(LOCAL_COMPAT_ID).unwrap_or_else(|_| unreachable!("a valid id")),
            display_name: DEFAULT_DISPLAY_NAME.to_owned(),
            limits,
            source: Arc::new(Source {
                catalog: Mutex::new(Catalog::new(workspace, limits.max_record_bytes)),
                transcripts: Mutex::new(Transcripts::new(limits)),
            }),
            reads: Arc::new(Semaphore::new(limits.max_concurrent_reads.max(1))),
        }
    }

    /// The same Runtime under another id and name (for `[[runtimes]]`
    /// entries of kind `local_compat`).
    pub fn with_identity(mut self, runtime_id: RuntimeId, display_name: String) -> Self {
        self.id = runtime_id;
        self.display_name = display_name;
        self
    }

    /// Work done so far.
    pub fn read_stats(&self) -> ReadStats {
        ReadStats {
            folder_scans: lock(&self.source.catalog).scans,
            transcript_bytes_scanned: lock(&self.source.transcripts).bytes_scanned,
        }
    }

    /// Runs file work on the blocking pool, in one of the read slots and
    /// under the read deadline. A read that misses the deadline answers
    /// `runtime_unavailable`; its thread finishes on its own, keeping its
    /// slot until then.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Source) -> T + Send + 'static,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + self.limits.read_deadline;
        let slot = tokio::time::timeout_at(deadline, self.reads.clone().acquire_owned())
            .await
            .map_err(|_| self.slow())?
            .map_err(|_| self.slow())?;
        let source = self.source.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work(&source)
        });
        tokio::time::timeout_at(deadline, task)
            .await
            .map_err(|_| self.slow())?
            .map_err(|e| RuntimeError::internal("reading worker records failed", e))
    }

    fn slow(&self) -> RuntimeError {
        RuntimeError::RuntimeUnavailable {
            runtime_id: self.id.clone(),
            message: format!(
                "the workspace did not answer within {} ms",
                self.limits.read_deadline.as_millis()
            ),
        }
    }

    fn unknown(&self, worker_id: &WorkerId) -> RuntimeError {
        RuntimeError::UnknownWorker {
            runtime_id: self.id.clone(),
            worker_id: worker_id.clone(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every section leaves consistent data behind, so a poisoned lock is
    // still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Source {
    /// The summary of Worker `id`, reading only its own files.
    fn summary(&self, runtime_id: &RuntimeId, id: &WorkerId) -> Option<WorkerSummary> {
        let mut catalog = lock(&self.catalog);
        let record = catalog.get(id).ok()??;
        let folder = catalog.folder(id)?;
        drop(catalog);
        let len = lock(&self.transcripts).len(id, &folder);
        Some(record.summary(runtime_id, id, len))
    }
}

#[async_trait]
impl Runtime for LocalCompatRuntime {
    fn id(&self) -> &RuntimeId {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            list_workers: true,
            transcript: true,
            max_transcript_page: Some(MAX_TRANSCRIPT_PAGE),
            max_worker_page: Some(MAX_WORKER_PAGE),
            ..Capabilities::default()
        }
    }

    async fn summary(&self) -> Result<RuntimeSummary> {
        Ok(RuntimeSummary {
            runtime_id: self.id.clone(),
            display_name: self.display_name.clone(),
            implementation: ImplementationKind::LocalCompat,
            capabilities: self.capabilities(),
        })
    }

    async fn status(&self) -> Result<RuntimeStatus> {
        let workers = self
            .blocking(|source| {
                let mut catalog = lock(&source.catalog);
                catalog.refresh();
                catalog.counts()
            })
            .await?;
        Ok(RuntimeStatus {
            runtime_id: self.id.clone(),
            state: RuntimeState::Ready,
            workers,
        })
    }

    async fn list_workers(&self, query: WorkerListQuery) -> Result<WorkerPage> {
        if query.is_search() {
            // It lists folders in name order; it cannot filter or sort.
            return Err(RuntimeError::unsupported(
                self.id.clone(),
                Operation::SearchWorkers,
            ));
        }
        let limit = resolve_limit(query.limit, DEFAULT_PAGE, MAX_WORKER_PAGE)? as usize;
        let runtime_id = self.id.clone();
        self.blocking(move |source| {
            let (ids, more) = {
                let mut catalog = lock(&source.catalog);
                catalog.refresh();
                catalog.page(query.after.as_ref(), limit)
            };
            // A record that became invalid since the scan drops out of the
            // page; paging still continues after the last id looked at.
            let items: Vec<WorkerSummary> = ids
                .iter()
                .filter_map(|id| source.summary(&runtime_id, id))
                .collect();
            WorkerPage {
                next_after: if more { ids.last().cloned() } else { None },
                next_cursor: None,
                items,
            }
        })
        .await
    }

    async fn diagnostics(&self) -> Result<Vec<Diagnostic>> {
        self.blocking(|source| {
            let mut diagnostics = {
                let mut catalog = lock(&source.catalog);
                catalog.refresh();
                catalog.diagnostics().to_vec()
            };
            diagnostics.extend(lock(&source.transcripts).diagnostics());
            diagnostics
        })
        .await
    }

    async fn worker(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        let (runtime_id, id) = (self.id.clone(), worker_id.clone());
        let summary = self
            .blocking(move |source| source.summary(&runtime_id, &id))
            .await?
            .ok_or_else(|| self.unknown(worker_id))?;
        Ok(WorkerDetail {
            summary,
            intent: None,
            forked_from: None,
        })
    }

    async fn transcript(
        &self,
        worker_id: &WorkerId,
        query: TranscriptQuery,
    ) -> Result<TranscriptPage> {
        let limit = resolve_limit(query.limit, DEFAULT_PAGE, MAX_TRANSCRIPT_PAGE)?;
        let start = query.start.unwrap_or(0);
        let id = worker_id.clone();
        let page = self
            .blocking(move |source| {
                let folder = {
                    let mut catalog = lock(&source.catalog);
                    // The Worker must exist with a valid record.
                    catalog.get(&id).ok()??;
                    catalog.folder(&id)?
                };
                Some(lock(&source.transcripts).page(&id, &folder, start, limit))
            })
            .await?
            .ok_or_else(|| self.unknown(worker_id))?;
        let end = start + page.entries.len() as u64;
        Ok(TranscriptPage {
            start,
            limit,
            total: page.total,
            next_start: (!page.entries.is_empty() && end < page.total).then_some(end),
            entries: page.entries,
        })
    }
}
