//! The list of Workers, cached and refreshed by the folder's mtime.
//!
//! Scanning `.yoi/workers` costs a directory read and one record read per
//! Worker, so it happens only when the folder's modification time changes
//! (a Worker folder added, removed or renamed); unchanged records are kept
//! without being read again. A list page then costs O(page): the Workers
//! on it have their record re-checked by a `stat`, and re-read only if it
//! changed.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use yoi_runtime_api::WorkerId;
use yoi_runtime_api::dto::{Diagnostic, DiagnosticLevel, WorkerCounts};

use crate::record::{WorkerRecord, read_record};
use crate::safe_fs::{Stamp, is_real_dir};

/// Where the records are, and what is known of them.
#[derive(Debug)]
pub(crate) struct Catalog {
    workspace: PathBuf,
    max_record_bytes: u64,
    /// The folder's mtime at the last scan; `None` before the first, or
    /// when that scan was racy (see `refresh`).
    scanned_at: Option<Option<SystemTime>>,
    records: BTreeMap<WorkerId, WorkerRecord>,
    /// What the last scan skipped.
    diagnostics: Vec<Diagnostic>,
    /// Scans so far, for tests and diagnostics.
    pub(crate) scans: u64,
}

/// How recent a folder change makes a scan untrusted.
const RACY_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

/// The most diagnostics one scan keeps; the rest are counted in one line.
const MAX_SCAN_DIAGNOSTICS: usize = 100;

impl Catalog {
    pub(crate) fn new(workspace: PathBuf, max_record_bytes: u64) -> Self {
        Self {
            workspace,
            max_record_bytes,
            scanned_at: None,
            records: BTreeMap::new(),
            diagnostics: Vec::new(),
            scans: 0,
        }
    }

    fn workers_dir(&self) -> PathBuf {
        self.workspace.join(".yoi").join("workers")
    }

    /// The folder of Worker `id`, if it is a real folder.
    pub(crate) fn folder(&self, id: &WorkerId) -> Option<PathBuf> {
        let folder = self.workers_dir().join(id.as_str());
        is_real_dir(&folder).then_some(folder)
    }

    fn canonical_workspace(&self) -> Option<PathBuf> {
        std::fs::canonicalize(&self.workspace).ok()
    }

    /// Rescans when the folder changed since the last scan.
    pub(crate) fn refresh(&mut self) {
        let dir = self.workers_dir();
        let modified = std::fs::symlink_metadata(&dir)
            .ok()
            .filter(|m| m.file_type().is_dir())
            .map(|m| m.modified().ok());
        let Some(modified) = modified else {
            self.records.clear();
            self.diagnostics = vec![Diagnostic {
                level: DiagnosticLevel::Info,
                code: "no_workers_folder".to_owned(),
                message: "the workspace has no .yoi/workers folder".to_owned(),
            }];
            self.scanned_at = None;
            return;
        };
        if self.scanned_at == Some(modified) {
            return;
        }
        let started = SystemTime::now();
        self.scan(&dir);
        // Timestamps are coarse: a change in the same tick as the one seen
        // would leave the mtime unchanged. While the folder changed only
        // moments before the scan, the scan is not trusted and the next
        // call scans again (git's "racy" rule).
        let racy = modified.is_none_or(|m| {
            started
                .duration_since(m)
                .map_or(true, |age| age < RACY_WINDOW)
        });
        self.scanned_at = (!racy).then_some(modified);
    }

    fn scan(&mut self, dir: &Path) {
        self.scans += 1;
        let workspace = self.canonical_workspace();
        let mut diagnostics = Vec::new();
        let mut skipped = 0usize;
        let mut note = |diagnostic: Diagnostic| {
            if diagnostics.len() < MAX_SCAN_DIAGNOSTICS {
                diagnostics.push(diagnostic);
            } else {
                skipped += 1;
            }
        };
        let mut records = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            self.records.clear();
            self.diagnostics = vec![Diagnostic::warning(
                "unreadable_workers_folder",
                "the workspace's .yoi/workers folder cannot be read",
            )];
            return;
        };
        for entry in entries.flatten() {
            // `file_type` does not follow symbolic links.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let id = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<WorkerId>().ok());
            let Some(id) = id else {
                if kind.is_dir() || kind.is_symlink() {
                    note(Diagnostic::warning(
                        "invalid_worker_name",
                        "a worker folder's name is not a valid worker id",
                    ));
                }
                continue;
            };
            if kind.is_symlink() {
                note(Diagnostic::warning(
                    "symlinked_worker",
                    format!("the folder of worker '{id}' is a symbolic link; it is not followed"),
                ));
                continue;
            }
            if !kind.is_dir() {
                continue;
            }
            let folder = entry.path();
            // Keep a record whose file did not change since it was read.
            if let Some(known) = self.records.remove(&id)
                && record_stamp(&folder) == Some(known.stamp)
            {
                records.insert(id, known);
                continue;
            }
            match read_record(&folder, &id, workspace.as_deref(), self.max_record_bytes) {
                Ok(record) => {
                    records.insert(id, record);
                }
                Err(diagnostic) => note(diagnostic),
            }
        }
        if skipped > 0 {
            diagnostics.push(Diagnostic::warning(
                "more_skipped",
                format!("{skipped} more records were skipped"),
            ));
        }
        self.records = records;
        self.diagnostics = diagnostics;
    }

    /// The record of `id`, re-read if its file changed since it was cached.
    /// Also finds Workers added since the last scan. `Err` explains a skip.
    pub(crate) fn get(&mut self, id: &WorkerId) -> Result<Option<WorkerRecord>, Diagnostic> {
        let Some(folder) = self.folder(id) else {
            self.records.remove(id);
            return Ok(None);
        };
        if let Some(known) = self.records.get(id)
            && record_stamp(&folder) == Some(known.stamp)
        {
            return Ok(Some(known.clone()));
        }
        let workspace = self.canonical_workspace();
        match read_record(&folder, id, workspace.as_deref(), self.max_record_bytes) {
            Ok(record) => {
                self.records.insert(id.clone(), record.clone());
                Ok(Some(record))
            }
            Err(diagnostic) => {
                self.records.remove(id);
                Err(diagnostic)
            }
        }
    }

    /// Up to `limit` Worker ids after `after`, and whether more follow.
    pub(crate) fn page(&self, after: Option<&WorkerId>, limit: usize) -> (Vec<WorkerId>, bool) {
        let lower = match after {
            Some(id) => Bound::Excluded(id.clone()),
            None => Bound::Unbounded,
        };
        let mut range = self.records.range((lower, Bound::Unbounded));
        let ids = range
            .by_ref()
            .take(limit)
            .map(|(id, _)| id.clone())
            .collect();
        (ids, range.next().is_some())
    }

    /// Workers by state, as of the last scan.
    pub(crate) fn counts(&self) -> WorkerCounts {
        let mut counts = WorkerCounts::default();
        for record in self.records.values() {
            counts.add(record.state);
        }
        counts
    }

    pub(crate) fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

fn record_stamp(folder: &Path) -> Option<Stamp> {
    std::fs::symlink_metadata(folder.join("worker.json"))
        .ok()
        .map(|m| Stamp::of(&m))
}
