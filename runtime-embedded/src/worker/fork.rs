//! Forking: what a fork copies from its source.

use std::sync::Arc;

use yoi_runtime_api::dto::{EntryStatus, TranscriptEntry};
use yoi_runtime_api::{Result, RuntimeError};

use super::{Inner, Locked, Worker};
use crate::context::RuntimeContext;
use crate::log::entry_bytes;
use crate::profile::Profile;

/// What a fork takes from its source.
pub(crate) struct ForkSeed {
    /// The source's completed entries before `at`, oldest first.
    pub(crate) entries: Vec<TranscriptEntry>,
    /// Where the copy ends.
    pub(crate) at: u64,
    /// The source's profile, which the fork gets too.
    pub(crate) profile: Arc<Profile>,
    /// Whether that profile was the source's fallback.
    pub(crate) fallback: bool,
}

impl Worker {
    /// The completed entries before `at` (default: the end), read in one
    /// critical section; a running turn's entries are not complete, so
    /// they are not copied. `at` past the end is `invalid_request`.
    pub(crate) fn fork_seed(&self, at: Option<u64>) -> Result<ForkSeed> {
        let inner = self.read();
        let (at, copied) = copied(&inner, at)?;
        Ok(ForkSeed {
            entries: copied.cloned().collect(),
            at,
            profile: self.profile.clone(),
            fallback: self.fallback,
        })
    }

    /// What the copy [`Self::fork_seed`] would make costs in memory, by
    /// the measure of `max_retained_bytes`, without making it.
    pub(crate) fn fork_bytes(&self, at: Option<u64>) -> Result<usize> {
        let inner = self.read();
        let (_, copied) = copied(&inner, at)?;
        Ok(copied.map(entry_bytes).sum())
    }

    /// Appends copied `entries` (re-indexed from this Worker's end), in one
    /// critical section; journaled, without events.
    pub(crate) fn append_copies(&self, shared: &RuntimeContext, entries: Vec<TranscriptEntry>) {
        let mut locked: Locked<'_> = self.lock(shared);
        for entry in entries {
            locked.push_entry(entry);
        }
    }
}

/// Where a fork's copy ends (`at`, default the end) and the entries it
/// copies: the completed ones before it.
fn copied(inner: &Inner, at: Option<u64>) -> Result<(u64, impl Iterator<Item = &TranscriptEntry>)> {
    let total = inner.transcript.total();
    let at = at.unwrap_or(total);
    if at > total {
        return Err(RuntimeError::invalid_request(format!(
            "at {at} is past the end of the transcript ({total} entries)"
        )));
    }
    let entries = inner
        .transcript
        .oldest_first()
        .filter(move |e| e.index < at && e.status == EntryStatus::Complete);
    Ok((at, entries))
}
