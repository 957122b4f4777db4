//! A read-only yoi Runtime over Workers that run as separate local
//! processes and are known only by record files in a workspace folder.
//!
//! Layout (see `docs/local-compat-records.md`):
//!
//! ```text
//! <workspace>/.yoi/workers/<name>/worker.json       the record
//! <workspace>/.yoi/workers/<name>/transcript.jsonl  optional, one entry a line
//! ```
//!
//! A record that is unreadable, malformed, misnamed, from another workspace
//! or not a regular file is skipped and reported as a diagnostic, never as
//! an error response. The files are not trusted:
//!
//! - **only regular files are read; symbolic links are never followed**,
//!   and files are opened non-blocking, so a FIFO or device cannot hang or
//!   flood a request;
//! - every read is bounded (record size, line length, transcript bytes,
//!   bytes per page) and runs under a deadline in a bounded number of
//!   blocking threads;
//! - the Worker list is cached and rescanned only when the workers folder
//!   changes, and transcripts are indexed by line offset, so a list page
//!   or a transcript page costs O(page);
//! - **socket and session paths in records are never read into memory**:
//!   the record type has no field for them.

mod catalog;
mod options;
mod record;
mod runtime;
mod safe_fs;
mod transcript;

pub use options::LocalCompatLimits;
pub use runtime::{DEFAULT_DISPLAY_NAME, LOCAL_COMPAT_ID, LocalCompatRuntime, ReadStats};
