//! Bounds on what the local-compat Runtime reads.

use std::time::Duration;

/// Bounds on every read of the workspace. The defaults keep one request's
/// memory and time small whatever the files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalCompatLimits {
    /// Records (`worker.json`) larger than this are skipped (default 64 KiB).
    pub max_record_bytes: u64,
    /// Transcript lines longer than this are skipped (default 256 KiB).
    pub max_line_bytes: u64,
    /// Bytes of one `transcript.jsonl` that are read at all; the rest is
    /// ignored with a diagnostic (default 64 MiB).
    pub max_transcript_bytes: u64,
    /// Text bytes in one transcript page; a page stops early past this
    /// (default 4 MiB).
    pub max_page_bytes: u64,
    /// Transcript line indexes kept in memory, most recently used first
    /// (default 1,024).
    pub max_indexed_transcripts: usize,
    /// How long one call may spend on the file system before it answers
    /// `runtime_unavailable` (default 2 s).
    pub read_deadline: Duration,
    /// File-system reads that run at once; more wait (default 4). A read
    /// stuck in the kernel holds its slot, so it can never take the whole
    /// blocking pool.
    pub max_concurrent_reads: usize,
}

impl Default for LocalCompatLimits {
    fn default() -> Self {
        Self {
            max_record_bytes: 64 * 1024,
            max_line_bytes: 256 * 1024,
            max_transcript_bytes: 64 * 1024 * 1024,
            max_page_bytes: 4 * 1024 * 1024,
            max_indexed_transcripts: 1024,
            read_deadline: Duration::from_secs(2),
            max_concurrent_reads: 4,
        }
    }
}
