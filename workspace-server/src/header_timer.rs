//! hyper's header timer for one connection: one Tokio timer, moved forward.
//!
//! hyper asks its timer for a new sleep each time a connection starts
//! reading a request head, and drops it once the head is read. With
//! `hyper_util`'s `TokioTimer` that is a fresh Tokio timer per request:
//! registered in the runtime's timer wheel under its lock when first polled,
//! and taken out under the lock again when dropped, on every keep-alive
//! request. This timer keeps one Tokio `Sleep` per connection instead. Each
//! new deadline moves it forward, which Tokio does with one atomic update
//! while the timer is still registered (deadlines only grow: each is "now
//! plus the header timeout"). The sleeps hyper holds are handles to it.
//!
//! **Only one head is read at a time on an HTTP/1 connection**, so the
//! newest deadline is the only one that matters; an older handle that is
//! still polled sees the newest deadline, never an earlier one.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// The timer of one connection; give each connection its own.
#[derive(Clone, Debug)]
pub(crate) struct HeaderTimer {
    sleep: Arc<Mutex<Pin<Box<Sleep>>>>,
}

impl HeaderTimer {
    /// A timer for a connection served on the current Tokio runtime. Its
    /// Tokio timer is registered only when hyper first waits on it.
    pub(crate) fn new() -> Self {
        // Any deadline: the first `sleep_until` moves it.
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        Self {
            sleep: Arc::new(Mutex::new(Box::pin(sleep))),
        }
    }

    fn move_to(&self, deadline: Instant) {
        let mut sleep = self.sleep.lock().unwrap_or_else(PoisonError::into_inner);
        sleep.as_mut().reset(deadline.into());
    }
}

/// A sleep hyper holds: polls the connection's one timer.
struct Handle {
    sleep: Arc<Mutex<Pin<Box<Sleep>>>>,
}

impl Future for Handle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut sleep = self.sleep.lock().unwrap_or_else(PoisonError::into_inner);
        sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for Handle {}

impl hyper::rt::Timer for HeaderTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    /// Tokio's clock, which the deadlines are measured on (the same as
    /// `Instant::now()` unless a test paused it).
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.move_to(deadline);
        Box::pin(Handle {
            sleep: Arc::clone(&self.sleep),
        })
    }

    fn reset(&self, _sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        // Every handle of this timer polls the one `Sleep`.
        self.move_to(new_deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_at_its_deadline() {
        let timer = HeaderTimer::new();
        let started = tokio::time::Instant::now();
        timer.sleep(Duration::from_millis(200)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_moves_the_one_timer_forward() {
        let timer = HeaderTimer::new();
        let started = tokio::time::Instant::now();
        let first = timer.sleep(Duration::from_millis(100));
        // A new head starts before the first deadline: the connection is
        // timed from it, and hyper has dropped the first sleep.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        timer.sleep(Duration::from_millis(100)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(150));
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_works_again_after_it_fired() {
        let timer = HeaderTimer::new();
        let started = tokio::time::Instant::now();
        timer.sleep(Duration::from_millis(100)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        timer.sleep(Duration::from_millis(100)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn reset_moves_a_held_sleep() {
        let timer = HeaderTimer::new();
        let started = tokio::time::Instant::now();
        let mut sleep = timer.sleep(Duration::from_millis(100));
        timer.reset(&mut sleep, timer.now() + Duration::from_millis(300));
        sleep.await;
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }
}
