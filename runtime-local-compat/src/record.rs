//! `worker.json`: reading, validating, and what is kept of it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use yoi_runtime_api::dto::{
    Diagnostic, ProfileRef, WorkerState, WorkerSummary, validate_display_name,
};
use yoi_runtime_api::{ProfileName, RuntimeId, Timestamp, WorkerId};

use crate::safe_fs::{Refused, Stamp, read_small};

/// The fields of `worker.json` this Runtime reads. Others (`pid`,
/// `socket_path`, `session_path`, ...) are ignored on purpose: **there is no
/// field for a socket or session path, so none can reach a response**.
#[derive(Deserialize)]
struct RawRecord {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    profile: ProfileName,
    state: WorkerState,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// The workspace the Worker belongs to; when present it must be this
    /// one. Checked, then dropped.
    #[serde(default)]
    workspace: Option<PathBuf>,
}

/// A valid record, as kept in memory: no paths.
#[derive(Debug, Clone)]
pub(crate) struct WorkerRecord {
    display_name: Option<String>,
    profile: ProfileName,
    pub(crate) state: WorkerState,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// The version of `worker.json` this was read from.
    pub(crate) stamp: Stamp,
}

impl WorkerRecord {
    pub(crate) fn summary(
        &self,
        runtime_id: &RuntimeId,
        worker_id: &WorkerId,
        transcript_len: u64,
    ) -> WorkerSummary {
        WorkerSummary {
            runtime_id: runtime_id.clone(),
            worker_id: worker_id.clone(),
            display_name: self
                .display_name
                .clone()
                .unwrap_or_else(|| worker_id.to_string()),
            profile: ProfileRef {
                name: self.profile.clone(),
                fallback: false,
            },
            state: self.state,
            created_at: self.created_at,
            updated_at: self.updated_at,
            transcript_len,
            pending_inputs: 0,
            last_cursor: None,
            metadata: Default::default(),
        }
    }
}

/// Reads the record in `folder` (the Worker `id`'s folder). `Err` is the
/// diagnostic that explains the skip; it names the Worker, never a path.
pub(crate) fn read_record(
    folder: &Path,
    id: &WorkerId,
    workspace: Option<&Path>,
    max_bytes: u64,
) -> Result<WorkerRecord, Diagnostic> {
    let (bytes, stamp) =
        read_small(&folder.join("worker.json"), max_bytes).map_err(|refused| match refused {
            Refused::TooLarge => Diagnostic::warning(
                "oversized_record",
                format!("the record of worker '{id}' is too large"),
            ),
            Refused::NotRegular => Diagnostic::warning(
                "irregular_record",
                format!("the record of worker '{id}' is not a regular file; it is not read"),
            ),
            Refused::Missing | Refused::Io => Diagnostic::warning(
                "unreadable_record",
                format!("the record of worker '{id}' cannot be read"),
            ),
        })?;
    // serde's message could quote a value (such as a path), so only the
    // position is reported.
    let raw: RawRecord = serde_json::from_slice(&bytes).map_err(|e| {
        Diagnostic::warning(
            "malformed_record",
            format!(
                "the record of worker '{id}' is malformed (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    if raw.name != id.as_str() {
        return Err(Diagnostic::warning(
            "misnamed_record",
            format!("the record in folder '{id}' names a different worker"),
        ));
    }
    if let Some(name) = &raw.display_name
        && let Err(err) = validate_display_name(name)
    {
        return Err(Diagnostic::warning(
            "invalid_record",
            format!("the record of worker '{id}' has an invalid display name: {err}"),
        ));
    }
    if let Some(theirs) = &raw.workspace {
        let same = workspace
            .is_some_and(|ours| std::fs::canonicalize(theirs).ok().as_deref() == Some(ours));
        if !same {
            return Err(Diagnostic::warning(
                "foreign_record",
                format!("the record of worker '{id}' belongs to another workspace"),
            ));
        }
    }
    Ok(WorkerRecord {
        display_name: raw.display_name,
        profile: raw.profile,
        state: raw.state,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
        stamp,
    })
}
