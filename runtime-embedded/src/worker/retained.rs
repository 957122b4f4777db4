//! Each Worker's share of the Runtime's retained bytes: the estimated
//! bytes of its transcript and event log in memory.
//!
//! **The Runtime's total is the sum of its live `Worker` objects' shares**:
//! a Worker adds the change of every critical section as the section ends
//! (so the total is never stale by more than the sections in flight), and
//! takes its share back when it is deleted or retired (at once, although a
//! turn task or a follower may hold the object a little longer) or
//! dropped (evicted to a persistent store).

use std::sync::atomic::Ordering;

use super::{Inner, Worker};

/// The share of a Worker that gave its bytes back for good.
const RELEASED: usize = usize::MAX;

impl Worker {
    /// Brings the Runtime's total up to date with this Worker's bytes;
    /// called with the Worker's lock held.
    pub(super) fn account(&self, inner: &Inner) {
        let now = inner.transcript.bytes() + inner.log.bytes();
        // Most sections only read: a load settles those without writing.
        if self.accounted.load(Ordering::Relaxed) == now {
            return;
        }
        let Ok(before) =
            self.accounted
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |before| {
                    (before != RELEASED).then_some(now)
                })
        else {
            return;
        };
        if now > before {
            self.retained.fetch_add(now - before, Ordering::Relaxed);
        } else if now < before {
            self.retained.fetch_sub(before - now, Ordering::Relaxed);
        }
    }

    /// Marks the Worker deleted or retired, under its lock, and gives its
    /// share back for good. Called before its deletion is recorded, so
    /// **no change of the Worker reaches the store after its deletion**:
    /// each section records under the same lock, and one that ends after
    /// this records nothing.
    pub(crate) fn forget(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.forgotten = true;
        self.release();
        drop(inner);
    }

    /// Gives this Worker's share back for good.
    fn release(&self) {
        let share = self.accounted.swap(RELEASED, Ordering::Relaxed);
        if share != RELEASED {
            self.retained.fetch_sub(share, Ordering::Relaxed);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.release();
    }
}
