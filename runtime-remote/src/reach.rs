//! Whether the peer could be reached lately. **While it cannot, calls fail
//! at once** (`runtime_unavailable`, "unreachable") instead of each one
//! connecting, backing off and retrying on its own: a host that went down
//! costs its callers nothing, and the Runtimes beside it in a merged answer
//! are not held up. Every [`RETRY_DOWN_AFTER`] one call is let through to
//! try; the first answer of any kind marks the peer reachable again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long calls fail at once after the peer was found unreachable,
/// before one is let through to try again.
pub(crate) const RETRY_DOWN_AFTER: Duration = Duration::from_secs(1);

/// What a call may do now.
#[derive(Debug)]
pub(crate) enum Pass<'a> {
    /// The peer answered last time: call, retrying where safe.
    Call,
    /// The peer is down and it is time to try again: call once, without
    /// retries; other calls fail while the trial is held. Dropping it
    /// (the call ended, or its caller went away) lets the next one try.
    Trial(Trial<'a>),
    /// The peer is down: fail without calling.
    Refuse,
}

/// The one call trying a peer that was down.
#[derive(Debug)]
pub(crate) struct Trial<'a> {
    reach: &'a Reach,
}

impl Drop for Trial<'_> {
    fn drop(&mut self) {
        self.reach.trying.store(false, Ordering::Release);
    }
}

/// The peer's reachability, shared by every call of one client.
#[derive(Debug)]
pub(crate) struct Reach {
    started: Instant,
    /// Milliseconds after `started` when the peer was last found
    /// unreachable, plus one; 0 while it is reachable.
    down_at: AtomicU64,
    /// A [`Trial`] is held.
    trying: AtomicBool,
}

impl Default for Reach {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            down_at: AtomicU64::new(0),
            trying: AtomicBool::new(false),
        }
    }
}

impl Reach {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// What the next call may do.
    pub(crate) fn pass(&self) -> Pass<'_> {
        let down_at = self.down_at.load(Ordering::Acquire);
        if down_at == 0 {
            return Pass::Call;
        }
        let waited = self.now().saturating_sub(down_at);
        if waited < RETRY_DOWN_AFTER.as_millis() as u64 || self.trying.swap(true, Ordering::AcqRel)
        {
            return Pass::Refuse;
        }
        Pass::Trial(Trial { reach: self })
    }

    /// The peer answered (anything, errors included). Every answered call
    /// comes here: it only reads, unless the peer was down, so the cores
    /// making calls do not pass the cache line between them.
    pub(crate) fn reached(&self) {
        if self.down_at.load(Ordering::Relaxed) != 0 {
            self.down_at.store(0, Ordering::Release);
        }
    }

    /// The peer could not be connected to.
    pub(crate) fn unreachable(&self) {
        self.down_at.store(self.now(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_trial(pass: &Pass<'_>) -> bool {
        matches!(pass, Pass::Trial(_))
    }

    #[test]
    fn a_down_peer_refuses_calls_then_lets_one_try() {
        let reach = Reach::default();
        assert!(matches!(reach.pass(), Pass::Call));
        reach.unreachable();
        assert!(matches!(reach.pass(), Pass::Refuse), "within the window");
        // Found down five seconds ago: past the window.
        let Some(started) = Instant::now().checked_sub(Duration::from_secs(5)) else {
            return;
        };
        let reach = Reach {
            started,
            down_at: AtomicU64::new(1),
            trying: AtomicBool::new(false),
        };
        let trial = reach.pass();
        assert!(is_trial(&trial));
        assert!(matches!(reach.pass(), Pass::Refuse), "one trial at a time");
        // A trial whose caller went away without an outcome lets the next
        // call try: the peer is never refused for good.
        drop(trial);
        let trial = reach.pass();
        assert!(is_trial(&trial));
        reach.unreachable();
        drop(trial);
        assert!(
            matches!(reach.pass(), Pass::Refuse),
            "down again: a new window"
        );
        reach.reached();
        assert!(matches!(reach.pass(), Pass::Call));
    }
}
