//! One upstream stream per remote Worker, shared by its subscribers.
//!
//! The first subscriber of a Worker opens the upstream subscription (which
//! reconnects on its own, see `follow`); a pump task copies its events into
//! a bounded buffer. Later subscribers whose cursor the buffer still holds
//! (or who start where the share started) read from the buffer and then
//! live, with no request to the peer; others get a subscription of their
//! own. A subscriber that falls more than [`BUFFER`] events behind is told
//! so (`runtime_unavailable`) and its stream ends; its reconnect with
//! `Last-Event-ID` resumes. When the last subscriber goes, the upstream
//! subscription is closed. A share whose upstream failed takes no new
//! subscribers: they open a new one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use futures_util::StreamExt;
use tokio::sync::Notify;
use yoi_runtime_api::dto::WorkerEvent;
use yoi_runtime_api::{EventCursor, EventStream, RuntimeError, RuntimeId, WorkerId};

/// Events a share keeps for subscribers that join late or read slowly.
pub(crate) const BUFFER: usize = 4096;

/// What [`Shares::join`] found.
pub(crate) enum Joined {
    /// A stream from the share.
    Stream(EventStream),
    /// A share exists, but not at this cursor.
    Elsewhere,
    /// No live share.
    NoShare,
}

/// The shares of one [`RemoteRuntime`](crate::RemoteRuntime).
#[derive(Default)]
pub(crate) struct Shares {
    live: Mutex<Live>,
    /// Upstream subscriptions opened, for tests and metrics.
    pub(crate) opened: AtomicU64,
}

/// The shares by Worker. A share that ended leaves its entry behind until
/// the map has grown to twice what it held after the last sweep, so the
/// map stays within a small multiple of the live shares however many
/// Workers were ever followed.
#[derive(Default)]
struct Live {
    shares: HashMap<WorkerId, Weak<Share>>,
    sweep_at: usize,
}

impl Live {
    fn insert(&mut self, worker_id: WorkerId, share: Weak<Share>) {
        self.shares.insert(worker_id, share);
        if self.shares.len() > self.sweep_at {
            self.shares.retain(|_, share| share.strong_count() > 0);
            self.sweep_at = (self.shares.len() * 2).max(64);
        }
    }
}

struct Share {
    runtime_id: RuntimeId,
    /// Where the upstream stream started: after this cursor (or from the
    /// oldest retained event).
    start: Option<EventCursor>,
    state: Mutex<State>,
    changed: Notify,
    /// The pump task, stopped when the last subscriber goes.
    pump: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Some(pump) = self.pump.get() {
            pump.abort();
        }
    }
}

#[derive(Default)]
struct State {
    events: VecDeque<WorkerEvent>,
    /// The position of `events[0]` among all events of the share.
    first: u64,
    /// The upstream ended: normally (`None`) or with this error's wire form.
    ended: Option<Option<serde_json::Value>>,
}

fn lock(share: &Share) -> std::sync::MutexGuard<'_, State> {
    share.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shares {
    /// A stream from the live share of `worker_id` after `after`, if it
    /// can serve it.
    pub(crate) fn join(&self, worker_id: &WorkerId, after: Option<&EventCursor>) -> Joined {
        let share = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shares
            .get(worker_id)
            .and_then(Weak::upgrade);
        let Some(share) = share else {
            return Joined::NoShare;
        };
        let position = {
            let state = lock(&share);
            if matches!(state.ended, Some(Some(_))) {
                // Failed: whoever comes now tries the peer afresh, rather
                // than meeting the same failure for as long as anyone who
                // saw it holds the share.
                return Joined::NoShare;
            }
            if after == share.start.as_ref() && state.first == 0 {
                Some(0)
            } else {
                after.and_then(|cursor| {
                    let index = state.events.iter().position(|e| &e.cursor == cursor)?;
                    Some(state.first + index as u64 + 1)
                })
            }
        };
        match position {
            Some(position) => Joined::Stream(read(share, position)),
            // Another cursor: a stream of its own, leaving the share be.
            None => Joined::Elsewhere,
        }
    }

    /// Shares `upstream` (opened after `after`) among `worker_id`'s
    /// subscribers; returns the first subscriber's stream.
    pub(crate) fn start(
        &self,
        runtime_id: RuntimeId,
        worker_id: WorkerId,
        after: Option<EventCursor>,
        upstream: EventStream,
    ) -> EventStream {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let share = Arc::new(Share {
            runtime_id,
            start: after,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            pump: OnceLock::new(),
        });
        // Spawned once the share exists, so the pump can always reach it
        // while a subscriber holds it.
        let task = tokio::spawn(pump(Arc::downgrade(&share), upstream));
        let _ = share.pump.set(task.abort_handle());
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(worker_id, Arc::downgrade(&share));
        read(share, 0)
    }

    /// Entries in the map, live or ended.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shares
            .len()
    }
}

/// Copies upstream events into the share until the upstream ends or the
/// last subscriber leaves.
async fn pump(share: Weak<Share>, mut upstream: EventStream) {
    while let Some(item) = upstream.next().await {
        let Some(share) = share.upgrade() else {
            return;
        };
        {
            let mut state = lock(&share);
            match item {
                Ok(event) => {
                    state.events.push_back(event);
                    if state.events.len() > BUFFER {
                        state.events.pop_front();
                        state.first += 1;
                    }
                }
                Err(err) => {
                    state.ended = Some(serde_json::to_value(&err).ok());
                }
            }
        }
        share.changed.notify_waiters();
        if lock(&share).ended.is_some() {
            return;
        }
    }
    if let Some(share) = share.upgrade() {
        lock(&share).ended.get_or_insert(None);
        share.changed.notify_waiters();
    }
}

/// One subscriber's view of a share, from `position` on.
fn read(share: Arc<Share>, position: u64) -> EventStream {
    Box::pin(futures_util::stream::unfold(
        (share, position, false),
        |(share, mut position, done)| async move {
            if done {
                return None;
            }
            loop {
                // Armed before reading, so an event added in between wakes us.
                let notified = share.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let state = lock(&share);
                    if position < state.first {
                        let err = RuntimeError::RuntimeUnavailable {
                            runtime_id: share.runtime_id.clone(),
                            message: "this subscriber fell behind the shared stream; subscribe again from its last event".to_owned(),
                        };
                        return Some((Err(err), (share.clone(), position, true)));
                    }
                    if let Some(event) = state.events.get((position - state.first) as usize) {
                        let event = event.clone();
                        drop(state);
                        position += 1;
                        return Some((Ok(event), (share.clone(), position, false)));
                    }
                    if let Some(end) = &state.ended {
                        return end.as_ref().map(|wire| {
                            let err = serde_json::from_value::<RuntimeError>(wire.clone())
                                .unwrap_or_else(|_| {
                                    RuntimeError::internal(
                                        "the shared stream failed",
                                        "undecodable error",
                                    )
                                });
                            (Err(err), (share.clone(), position, true))
                        });
                    }
                }
                notified.await;
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yoi_runtime_api::Timestamp;
    use yoi_runtime_api::dto::WorkerEventKind;

    fn worker(n: usize) -> WorkerId {
        WorkerId::new(format!("w-{n}")).unwrap()
    }

    #[tokio::test]
    async fn ended_shares_do_not_pile_up() {
        let shares = Shares::default();
        let runtime_id = RuntimeId::new("remote").unwrap();
        // Ten Workers followed for the whole test...
        let kept: Vec<EventStream> = (0..10)
            .map(|n| {
                let upstream = Box::pin(futures_util::stream::pending());
                shares.start(runtime_id.clone(), worker(n), None, upstream)
            })
            .collect();
        // ...and ten thousand followed once and left.
        for n in 10..10_010 {
            let upstream = Box::pin(futures_util::stream::pending());
            drop(shares.start(runtime_id.clone(), worker(n), None, upstream));
        }
        assert!(shares.entries() <= 128, "{} entries", shares.entries());
        for n in 0..10 {
            assert!(matches!(shares.join(&worker(n), None), Joined::Stream(_)));
        }
        drop(kept);
    }

    /// A share whose upstream failed (the host stayed down past the
    /// reconnects) is not joined: a subscriber that comes after the failure
    /// (a browser reconnecting) gets a fresh upstream, even while the
    /// subscribers that saw the failure still hold the share.
    #[tokio::test]
    async fn a_failed_share_is_not_joined() {
        let shares = Shares::default();
        let runtime_id = RuntimeId::new("remote").unwrap();
        let event = WorkerEvent {
            cursor: EventCursor::new("1.abc").unwrap(),
            worker_id: worker(1),
            at: Timestamp::now(),
            kind: WorkerEventKind::WorkerStopped {},
        };
        let failure = RuntimeError::RuntimeUnavailable {
            runtime_id: runtime_id.clone(),
            message: "unreachable".to_owned(),
        };
        let upstream = Box::pin(futures_util::stream::iter([
            Ok(event.clone()),
            Err(failure),
        ]));
        let mut first = shares.start(runtime_id, worker(1), None, upstream);
        assert_eq!(first.next().await.unwrap().unwrap(), event);
        assert!(first.next().await.unwrap().is_err());
        // `first` is still held, so the share is alive.
        assert!(matches!(
            shares.join(&worker(1), Some(&event.cursor)),
            Joined::NoShare
        ));
        assert!(matches!(shares.join(&worker(1), None), Joined::NoShare));
        drop(first);
    }
}
