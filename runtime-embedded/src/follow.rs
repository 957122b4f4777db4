//! Subscriptions: replay from the log, then follow it live.
//!
//! A subscriber never receives events pushed at it; it reads the log after
//! its own cursor and, when it has caught up, waits for the log's `Notify`.
//! The wait is armed before the read, so an event appended between the read
//! and the wait still wakes it. A slow subscriber therefore cannot miss
//! anything: if it falls so far behind that its cursor leaves the retained
//! log, it gets `cursor_expired` and the stream ends, never a silent gap.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Notify;
use yoi_runtime_api::dto::WorkerEvent;
use yoi_runtime_api::{EventStream, Result};

use crate::log::cursor_seq;

/// How many events a subscriber reads from the log at a time.
const READ_BATCH: usize = 256;

/// A log that can be followed.
pub(crate) trait LogSource: Send + Sync + 'static {
    /// Woken after every append.
    fn notify(&self) -> &Notify;
    /// Events after `after`, and whether the log is closed for good.
    fn read(&self, after: Option<u64>, limit: usize) -> Result<(Vec<Arc<WorkerEvent>>, bool)>;
}

struct Follow<S> {
    source: Arc<S>,
    after: Option<u64>,
    /// Shared with the log: a pointer per event, not a copy.
    buffer: VecDeque<Arc<WorkerEvent>>,
    done: bool,
}

/// A stream of the events of `source` after `after`, replayed then live.
/// The caller has already checked that `after` is readable.
pub(crate) fn follow<S: LogSource>(source: Arc<S>, after: Option<u64>) -> EventStream {
    let state = Follow {
        source,
        after,
        buffer: VecDeque::new(),
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.buffer.pop_front() {
                st.after = cursor_seq(&event.cursor).ok();
                // The one copy, made as the event is handed out.
                return Some((Ok(Arc::unwrap_or_clone(event)), st));
            }
            if st.done {
                return None;
            }
            let source = st.source.clone();
            let notified = source.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match source.read(st.after, READ_BATCH) {
                Ok((events, _)) if !events.is_empty() => st.buffer.extend(events),
                Ok((_, true)) => return None,
                Ok((_, false)) => notified.await,
                Err(err) => {
                    st.done = true;
                    return Some((Err(err), st));
                }
            }
        }
    }))
}
