//! The clock that dates `updated_at`, and the snapshot a paging pass takes
//! of it.
//!
//! An `updated_at` pass (ADR 0013) orders Workers by their `updated_at` as
//! of its snapshot time `S`. For that order to hold from the first page on,
//! **every `updated_at` at or before `S` must be visible to the first page**:
//! in the memory index, or recorded in the store so the page's durability
//! wait covers it. A critical section dates a change first and indexes or
//! records it later in the same section, so a snapshot taken in between
//! would see the Worker at its old place and find it moved on the next
//! page (shown twice, or never).
//!
//! So a section that dates a change holds an [`Open`] stamp from before it
//! reads the clock until it has recorded the change, and
//! [`Stamps::snapshot`] waits for the stamps open when it read the clock.
//! Open stamps are counted in two halves by an epoch's parity: a snapshot
//! reads the clock, moves the epoch on, and waits for the half it left to
//! empty. Stamps opened after that read the clock later, so they date
//! their changes after `S` and the snapshot need not wait for them. The
//! section's side is two atomic counts and no lock.
//!
//! A leaf module: it knows nothing of Workers or stores.

use std::pin::pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::SeqCst};

use tokio::sync::Notify;
use yoi_runtime_api::Timestamp;
use yoi_runtime_api::dto::{PASS_HORIZON_SECS, timestamp_nanos};

/// How far back the wall clock may have stepped since the latest change on
/// disk for the clock to still follow the disk: as long as an
/// `updated_at` pass may take.
pub(crate) const MAX_STEP_BACK_NANOS: i64 = PASS_HORIZON_SECS * 1_000_000_000;

/// A Runtime's clock for `updated_at`, with its open stamps.
#[derive(Debug, Default)]
pub(crate) struct Stamps {
    /// The last time handed out, in Unix nanoseconds.
    clock: AtomicI64,
    /// Moved on by every snapshot; its parity picks the half of `open` new
    /// stamps count in.
    epoch: AtomicUsize,
    /// Stamps handed out and not yet closed, by the parity of the epoch
    /// they opened in.
    open: [AtomicUsize; 2],
    /// Woken when the half a snapshot waits for empties.
    emptied: Notify,
    /// One snapshot at a time: a second one moving the epoch on again
    /// would count new stamps in the half the first is waiting for.
    snapshots: tokio::sync::Mutex<()>,
}

/// A stamp handed out and not yet closed; closed when dropped.
#[must_use = "the stamp closes when this is dropped"]
#[derive(Debug)]
pub(crate) struct Open<'a> {
    stamps: &'a Stamps,
    half: usize,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        let was = self.stamps.open[self.half].fetch_sub(1, SeqCst);
        // Only a half a snapshot has left behind can be waited on.
        if was == 1 && self.stamps.epoch.load(SeqCst) % 2 != self.half {
            self.stamps.emptied.notify_waiters();
        }
    }
}

impl Stamps {
    /// The current time, later than any handed out before: `updated_at`
    /// values never tie, so they order Workers on their own.
    pub(crate) fn now(&self) -> Timestamp {
        nanos_to_timestamp(self.next())
    }

    /// Makes every time handed out from now on later than `at` (the latest
    /// on disk, when the wall clock may have stepped back since), unless
    /// `at` is more than [`MAX_STEP_BACK_NANOS`] ahead of the wall clock:
    /// then a clock that was wrong when it was written would pin every
    /// later time to its error, so the wall clock is kept; returns how far
    /// ahead `at` was in that case.
    pub(crate) fn not_before(&self, at: Timestamp) -> Option<i64> {
        let at = timestamp_nanos(at);
        let ahead = at.saturating_sub(timestamp_nanos(Timestamp::now()));
        if ahead > MAX_STEP_BACK_NANOS {
            return Some(ahead);
        }
        self.clock.fetch_max(at, SeqCst);
        None
    }

    /// The current time (as [`Stamps::now`]) for dating a change, with the
    /// stamp to hold until the change is in the index or the store.
    pub(crate) fn stamp(&self) -> (Timestamp, Open<'_>) {
        let half = self.epoch.load(SeqCst) % 2;
        self.open[half].fetch_add(1, SeqCst);
        let open = Open { stamps: self, half };
        (self.now(), open)
    }

    /// A snapshot time `S` for a new pass: every stamp at or before `S` is
    /// closed when this returns.
    pub(crate) async fn snapshot(&self) -> i64 {
        let _one_at_a_time = self.snapshots.lock().await;
        // The half new stamps do not go to is empty unless a snapshot was
        // dropped while it waited; its stamps are older than this one's.
        self.drained((self.epoch.load(SeqCst) + 1) % 2).await;
        let snapshot = self.next();
        // A stamp dated before `snapshot` read the epoch before this move,
        // and counted itself in the half left behind before reading the
        // clock; every count here is sequentially consistent.
        let left = self.epoch.fetch_add(1, SeqCst) % 2;
        self.drained(left).await;
        snapshot
    }

    /// Returns once no stamp is open in `half`, which new stamps no longer
    /// go to.
    async fn drained(&self, half: usize) {
        let mut emptied = pin!(self.emptied.notified());
        loop {
            emptied.as_mut().enable();
            if self.open[half].load(SeqCst) == 0 {
                return;
            }
            emptied.as_mut().await;
            emptied.set(self.emptied.notified());
        }
    }

    fn next(&self) -> i64 {
        let wall = timestamp_nanos(Timestamp::now());
        let previous = self
            .clock
            .fetch_update(SeqCst, SeqCst, |last| {
                Some(wall.max(last.saturating_add(1)))
            })
            .unwrap_or(wall);
        wall.max(previous.saturating_add(1))
    }
}

fn nanos_to_timestamp(nanos: i64) -> Timestamp {
    Timestamp::from_unix_nanos(i128::from(nanos)).unwrap_or_else(Timestamp::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_never_tie() {
        let stamps = Stamps::default();
        let mut last = stamps.now();
        for _ in 0..1000 {
            let (next, _open) = stamps.stamp();
            assert!(next > last);
            last = stamps.now();
            assert!(last > next);
        }
    }

    #[test]
    fn the_clock_follows_the_disk_back_an_hour_at_most() {
        let stamps = Stamps::default();
        let wall = timestamp_nanos(Timestamp::now());
        let minutes_ahead = wall + 600_000_000_000;
        assert_eq!(stamps.not_before(nanos_to_timestamp(minutes_ahead)), None);
        assert!(timestamp_nanos(stamps.now()) > minutes_ahead);
        let stamps = Stamps::default();
        let days_ahead = wall + 3 * 86_400_000_000_000;
        assert!(stamps.not_before(nanos_to_timestamp(days_ahead)).is_some());
        assert!(timestamp_nanos(stamps.now()) < days_ahead);
    }

    #[tokio::test]
    async fn a_snapshot_waits_for_stamps_open_before_it() {
        let stamps = Stamps::default();
        let (dated, open) = stamps.stamp();
        let mut snapshot = pin!(stamps.snapshot());
        assert!(
            futures_util::poll!(snapshot.as_mut()).is_pending(),
            "a stamp dated before the snapshot is still open"
        );
        // A stamp opened meanwhile dates its change after the snapshot, so
        // the snapshot does not wait for it.
        let (later, still_open) = stamps.stamp();
        drop(open);
        let taken = snapshot.await;
        assert!(timestamp_nanos(dated) < taken);
        assert!(timestamp_nanos(later) > taken);
        drop(still_open);
        // Every half is empty again: the next snapshot is immediate.
        let mut next = pin!(stamps.snapshot());
        assert!(futures_util::poll!(next.as_mut()).is_ready());
    }

    #[tokio::test]
    async fn a_snapshot_after_one_dropped_mid_wait_still_waits() {
        let stamps = Stamps::default();
        let (dated, open) = stamps.stamp();
        {
            let mut dropped = pin!(stamps.snapshot());
            assert!(futures_util::poll!(dropped.as_mut()).is_pending());
        }
        let mut snapshot = pin!(stamps.snapshot());
        assert!(
            futures_util::poll!(snapshot.as_mut()).is_pending(),
            "the stamp the dropped snapshot waited for is still open"
        );
        drop(open);
        assert!(timestamp_nanos(dated) < snapshot.await);
    }

    #[tokio::test]
    async fn a_snapshot_with_nothing_open_is_immediate() {
        let stamps = Stamps::default();
        drop(stamps.stamp());
        let mut snapshot = pin!(stamps.snapshot());
        assert!(futures_util::poll!(snapshot.as_mut()).is_ready());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_time_at_or_before_a_snapshot_is_still_open() {
        use std::collections::BTreeSet;
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        // Sections date a change, keep the time as pending for a while
        // (their work), and close the stamp once it is no longer pending.
        let stamps = Arc::new(Stamps::default());
        let pending = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sections: Vec<_> = (0..2)
            .map(|_| {
                let (stamps, pending, stop) = (stamps.clone(), pending.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(SeqCst) {
                        let (time, open) = stamps.stamp();
                        let time = timestamp_nanos(time);
                        pending.lock().unwrap().insert(time);
                        for _ in 0..100 {
                            std::hint::spin_loop();
                        }
                        pending.lock().unwrap().remove(&time);
                        drop(open);
                    }
                })
            })
            .collect();
        for _ in 0..2000 {
            let snapshot = stamps.snapshot().await;
            let pending = pending.lock().unwrap();
            let early = pending.range(..=snapshot).next();
            assert!(
                early.is_none(),
                "{early:?} is at or before {snapshot} and still open"
            );
        }
        stop.store(true, SeqCst);
        for section in sections {
            section.join().unwrap();
        }
    }
}
