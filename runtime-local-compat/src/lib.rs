//! A read-only Runtime over Workers that run as separate local processes
//! and are known only by record files in a workspace folder.
//!
//! Layout (see `docs/local-compat-records.md`):
//!
//! ```text
//! <workspace>/.yoi/workers/<name>/worker.json       the record
//! <workspace>/.yoi/workers/<name>/transcript.jsonl  optional, one entry a line
//! ```
//!
//! Records are read on every call, so the view is always current. A record
//! that is unreadable, malformed, misnamed or from another workspace is
//! skipped and reported as a [`Diagnostic`], never as an error response.
//! **Socket and session paths in records are never read into memory**: the
//! record type has no field for them, so they cannot reach a response.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use yoi_runtime_api::dto::{
    EntryRole, EntryStatus, ImplementationKind, ProfileRef, RuntimeState, RuntimeStatus,
    RuntimeSummary, TranscriptEntry, TranscriptPage, TranscriptQuery, WorkerCounts, WorkerDetail,
    WorkerListQuery, WorkerPage, WorkerState, WorkerSummary,
};
use yoi_runtime_api::{
    Capabilities, ProfileName, Result, Runtime, RuntimeError, RuntimeId, Timestamp, WorkerId,
    resolve_limit,
};

use yoi_runtime_api::dto::{Diagnostic, DiagnosticLevel};

/// The id this Runtime is registered under.
pub const LOCAL_COMPAT_ID: &str = "local-compat";
/// The name people see when none is configured.
pub const DEFAULT_DISPLAY_NAME: &str = "Local workers (read-only)";
/// Records larger than this are skipped.
const MAX_RECORD_BYTES: u64 = 64 * 1024;
const MAX_TRANSCRIPT_PAGE: u32 = 200;
const MAX_WORKER_PAGE: u32 = 500;

/// The fields of `worker.json` this server reads. Others (`pid`,
/// `socket_path`, `session_path`, ...) are ignored on purpose.
#[derive(Debug, Deserialize)]
struct Record {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    profile: ProfileName,
    state: WorkerState,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// The workspace the Worker belongs to; when present it must be this one.
    #[serde(default)]
    workspace: Option<PathBuf>,
}

/// One line of `transcript.jsonl`.
#[derive(Debug, Deserialize)]
struct Line {
    role: EntryRole,
    text: String,
    at: Timestamp,
    #[serde(default = "complete")]
    status: EntryStatus,
}

fn complete() -> EntryStatus {
    EntryStatus::Complete
}

/// The local compatibility Runtime.
pub struct LocalCompatRuntime {
    id: RuntimeId,
    display_name: String,
    shared: Arc<Source>,
}

struct Source {
    workspace: PathBuf,
    diagnostics: Mutex<Vec<Diagnostic>>,
}

impl std::fmt::Debug for LocalCompatRuntime {
    /// Never prints the workspace path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCompatRuntime")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCompatSource").finish_non_exhaustive()
    }
}

fn warning(code: &str, message: String) -> Diagnostic {
    Diagnostic {
        level: DiagnosticLevel::Warning,
        code: code.to_owned(),
        message,
    }
}

impl Source {
    fn workers_dir(&self) -> PathBuf {
        self.workspace.join(".yoi").join("workers")
    }

    /// Reads one record; `Err` is the diagnostic explaining the skip.
    fn read_record(&self, dir: &Path, id: &WorkerId) -> std::result::Result<Record, Diagnostic> {
        let path = dir.join("worker.json");
        let mut text = String::new();
        let read = fs::File::open(&path)
            .and_then(|f| f.take(MAX_RECORD_BYTES + 1).read_to_string(&mut text));
        if read.is_err() {
            return Err(warning(
                "unreadable_record",
                format!("the record of worker '{id}' cannot be read"),
            ));
        }
        if text.len() as u64 > MAX_RECORD_BYTES {
            return Err(warning(
                "oversized_record",
                format!("the record of worker '{id}' is too large"),
            ));
        }
        // serde's message could quote a value (such as a path), so only the
        // position is reported.
        let record: Record = serde_json::from_str(&text).map_err(|e| {
            warning(
                "malformed_record",
                format!(
                    "the record of worker '{id}' is malformed (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if record.name != id.as_str() {
            return Err(warning(
                "misnamed_record",
                format!("the record in folder '{id}' names a different worker"),
            ));
        }
        if let Some(theirs) = &record.workspace {
            let ours = fs::canonicalize(&self.workspace).ok();
            if fs::canonicalize(theirs).ok() != ours || ours.is_none() {
                return Err(warning(
                    "foreign_record",
                    format!("the record of worker '{id}' belongs to another workspace"),
                ));
            }
        }
        Ok(record)
    }

    /// Every valid record, sorted by id; skipped ones become diagnostics.
    fn scan(&self) -> Vec<(WorkerId, Record)> {
        let mut diagnostics = Vec::new();
        let mut records = Vec::new();
        match fs::read_dir(self.workers_dir()) {
            Err(_) => diagnostics.push(Diagnostic {
                level: DiagnosticLevel::Info,
                code: "no_workers_folder".to_owned(),
                message: "the workspace has no .yoi/workers folder".to_owned(),
            }),
            Ok(entries) => {
                for entry in entries.flatten() {
                    if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                        continue;
                    }
                    let Some(id) = entry
                        .file_name()
                        .to_str()
                        .and_then(|n| n.parse::<WorkerId>().ok())
                    else {
                        diagnostics.push(warning(
                            "invalid_worker_name",
                            "a worker folder's name is not a valid worker id".to_owned(),
                        ));
                        continue;
                    };
                    match self.read_record(&entry.path(), &id) {
                        Ok(record) => records.push((id, record)),
                        Err(diagnostic) => diagnostics.push(diagnostic),
                    }
                }
            }
        }
        records.sort_by(|a, b| a.0.cmp(&b.0));
        *self.diagnostics.lock().unwrap_or_else(|e| e.into_inner()) = diagnostics;
        records
    }

    /// The transcript's valid lines, counting and skipping bad ones.
    fn transcript_lines(&self, id: &WorkerId) -> impl Iterator<Item = Line> + use<> {
        let path = self
            .workers_dir()
            .join(id.as_str())
            .join("transcript.jsonl");
        let lines = fs::File::open(path).ok().map(|f| BufReader::new(f).lines());
        lines
            .into_iter()
            .flatten()
            .map_while(std::result::Result::ok)
            .filter_map(|line| serde_json::from_str::<Line>(&line).ok())
    }

    fn summary(&self, runtime_id: &RuntimeId, id: WorkerId, record: Record) -> WorkerSummary {
        WorkerSummary {
            runtime_id: runtime_id.clone(),
            display_name: record.display_name.unwrap_or_else(|| id.to_string()),
            transcript_len: self.transcript_lines(&id).count() as u64,
            worker_id: id,
            profile: ProfileRef {
                name: record.profile,
                fallback: false,
            },
            state: record.state,
            created_at: record.created_at,
            updated_at: record.updated_at,
            pending_inputs: 0,
            last_cursor: None,
        }
    }
}

impl LocalCompatRuntime {
    /// A Runtime over the records under `workspace`.
    pub fn new(workspace: PathBuf) -> Self {
        Self {
            id: RuntimeId::new(LOCAL_COMPAT_ID).unwrap_or_else(|_| unreachable!("a valid id")),
            display_name: DEFAULT_DISPLAY_NAME.to_owned(),
            shared: Arc::new(Source {
                workspace,
                diagnostics: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The same Runtime under another id and name (for `[[runtimes]]`
    /// entries of kind `local_compat`).
    pub fn with_identity(mut self, runtime_id: RuntimeId, display_name: String) -> Self {
        self.id = runtime_id;
        self.display_name = display_name;
        self
    }

    /// Runs blocking file work off the async executor.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Source) -> T + Send + 'static,
    ) -> Result<T> {
        let source = self.shared.clone();
        tokio::task::spawn_blocking(move || work(&source))
            .await
            .map_err(|e| RuntimeError::internal("reading worker records failed", e))
    }

    fn unknown(&self, worker_id: &WorkerId) -> RuntimeError {
        RuntimeError::UnknownWorker {
            runtime_id: self.id.clone(),
            worker_id: worker_id.clone(),
        }
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
        let records = self.blocking(Source::scan).await?;
        let mut workers = WorkerCounts::default();
        for (_, record) in &records {
            workers.add(record.state);
        }
        Ok(RuntimeStatus {
            runtime_id: self.id.clone(),
            state: RuntimeState::Ready,
            workers,
        })
    }

    async fn list_workers(&self, query: WorkerListQuery) -> Result<WorkerPage> {
        let limit = resolve_limit(query.limit, 50, MAX_WORKER_PAGE)? as usize;
        let runtime_id = self.id.clone();
        self.blocking(move |source| {
            let records = source.scan();
            let mut rest = records
                .into_iter()
                .filter(|(id, _)| query.after.as_ref().is_none_or(|after| id > after));
            let items: Vec<WorkerSummary> = rest
                .by_ref()
                .take(limit)
                .map(|(id, record)| source.summary(&runtime_id, id, record))
                .collect();
            let more = rest.next().is_some();
            WorkerPage {
                next_after: if more {
                    items.last().map(|w| w.worker_id.clone())
                } else {
                    None
                },
                items,
            }
        })
        .await
    }

    async fn diagnostics(&self) -> Result<Vec<Diagnostic>> {
        self.blocking(|source| {
            source.scan();
            source
                .diagnostics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
        .await
    }

    async fn worker(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        let (runtime_id, id) = (self.id.clone(), worker_id.clone());
        let summary = self
            .blocking(move |source| {
                let dir = source.workers_dir().join(id.as_str());
                let record = source.read_record(&dir, &id).ok()?;
                Some(source.summary(&runtime_id, id, record))
            })
            .await?
            .ok_or_else(|| self.unknown(worker_id))?;
        Ok(WorkerDetail {
            summary,
            intent: None,
        })
    }

    async fn transcript(
        &self,
        worker_id: &WorkerId,
        query: TranscriptQuery,
    ) -> Result<TranscriptPage> {
        let limit = resolve_limit(query.limit, 50, MAX_TRANSCRIPT_PAGE)?;
        // Confirms the Worker exists (and its record is valid).
        self.worker(worker_id).await?;
        let id = worker_id.clone();
        let start = query.start.unwrap_or(0);
        self.blocking(move |source| {
            let mut total = 0u64;
            let mut entries = Vec::new();
            for (index, line) in source.transcript_lines(&id).enumerate() {
                let index = index as u64;
                total += 1;
                if index >= start && entries.len() < limit as usize {
                    entries.push(TranscriptEntry {
                        index,
                        role: line.role,
                        text: line.text,
                        at: line.at,
                        status: line.status,
                        input_id: None,
                    });
                }
            }
            let end = start + entries.len() as u64;
            TranscriptPage {
                start,
                limit,
                total,
                next_start: (!entries.is_empty() && end < total).then_some(end),
                entries,
            }
        })
        .await
    }
}
