//! The [`Runtime`] trait.

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures_core::Stream;

use crate::capabilities::Capabilities;
use crate::dto::ForkRequest;
use crate::dto::{
    CreateWorkerRequest, Diagnostic, EventPage, EventQuery, InputAcceptance, InputRequest,
    ProfileList, RollbackRequest, RuntimeStatus, RuntimeSummary, TranscriptPage, TranscriptQuery,
    UpdateWorkerRequest, WorkerCount, WorkerDetail, WorkerEvent, WorkerFilter, WorkerListQuery,
    WorkerPage,
};
use crate::error::{Operation, Result, RuntimeError};
use crate::id::{EventCursor, RuntimeId, WorkerId};

/// A stream of events: replay from a cursor, then live.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<WorkerEvent>> + Send + 'static>>;

/// A Runtime behind a pointer, as registries and conformance cases hold it.
pub type DynRuntime = dyn Runtime;

/// A host of long-lived LLM Workers.
///
/// # Contract
///
/// Every implementation, in-process or remote, behaves as follows, and the
/// conformance suite (module `conformance`, feature `conformance`) checks it:
///
/// - **Ids.** A Worker is identified by `(runtime_id, worker_id)`. Asking a
///   Runtime for a Worker it does not host is `unknown_worker`, even when
///   another Runtime hosts a Worker with that id.
/// - **Capabilities.** [`Runtime::capabilities`] is cheap, never fails and does
///   not change during the Runtime's life. Each method names the flag it needs;
///   when the flag is off the method returns `unsupported_operation` and has no
///   effect. Nothing panics on an unsupported call: the default method bodies
///   return that error.
/// - **Inputs.** [`Runtime::send_input`] returns as soon as the input is
///   recorded, before its turn ends. An input with a `client_input_id` seen
///   before returns the first acceptance and records nothing, also after
///   the Worker stopped; with a text other than the first's it is
///   `input_id_conflict` and records nothing. While a turn
///   runs, `on_busy` decides: `reject` is `worker_busy`; `queue` records the
///   input and runs it after the inputs before it (`worker_busy` when the
///   queue is full); `interrupt` cancels the running turn, keeps its partial
///   reply marked `cancelled`, and runs the new input next.
/// - **Every accepted input appears exactly once in the transcript**, in the
///   order the inputs were accepted.
/// - **Cancel and stop are idempotent.** Cancel ends the running turn and
///   drops queued inputs (marking them `cancelled`); the Worker stays usable.
///   Stop does the same and moves the Worker to `stopped`; later inputs are
///   `worker_stopped`. Repeating either emits no new events.
/// - **Delete** stops the Worker (so its streams end after
///   `worker_stopped`) and forgets it and all its data: afterwards every
///   call naming it is `unknown_worker`.
/// - **Events.** Each Worker has an append-only log. Cursors are opaque and
///   strictly ordered within one Worker's log. Reading after a cursor returns
///   exactly the events that followed it, with no gaps and no duplicates;
///   [`Runtime::subscribe`] does the same and then follows live, and ends after
///   the `worker_stopped` event. A cursor older than the retained log, or
///   one the log never issued, is `cursor_expired`.
/// - **Pages** are bounded: a `limit` above the advertised maximum is
///   `limit_too_large`, never silently clamped.
/// - **Finding Workers.** A filter matches a Worker when every condition
///   holds; [`Runtime::count_workers`] counts exactly what
///   [`Runtime::list_workers`] pages through. **A paging pass shows every
///   Worker that exists throughout it exactly once**, whatever is created,
///   updated or deleted meanwhile; a `sort=updated_at` pass orders Workers
///   by `updated_at` as of its first page, and may take up to
///   [`PASS_HORIZON_SECS`](crate::dto::PASS_HORIZON_SECS) (the rule is in
///   [`WorkerCursor`](crate::dto::WorkerCursor)'s module). Cursors use
///   [`WorkerCursor`](crate::dto::WorkerCursor)'s form; one made for
///   another sort, order or filter, or of an expired pass, is
///   `invalid_request`.
/// - **Secrets.** Nothing returned by a Runtime contains a socket path, session
///   path, store path, credentialed URL, token or provider key.
#[async_trait]
pub trait Runtime: Send + Sync + Debug + 'static {
    /// The Runtime's id. Cheap, never fails.
    fn id(&self) -> &RuntimeId;

    /// What the Runtime supports. Cheap, never fails, constant.
    fn capabilities(&self) -> Capabilities;

    /// Who the Runtime is. Needs no capability.
    async fn summary(&self) -> Result<RuntimeSummary>;

    /// The Runtime's health and Worker counts. Needs no capability.
    async fn status(&self) -> Result<RuntimeStatus>;

    /// A page of Workers. Needs `list_workers`; a query with a filter,
    /// another sort or order, or a cursor ([`WorkerListQuery::is_search`])
    /// also needs `search_workers`. Without one, Workers come in id order
    /// and `next_after` is set.
    async fn list_workers(&self, query: WorkerListQuery) -> Result<WorkerPage> {
        let _ = query;
        Err(self.unsupported(Operation::ListWorkers))
    }

    /// How many Workers match `filter`. Needs `search_workers`.
    async fn count_workers(&self, filter: WorkerFilter) -> Result<WorkerCount> {
        let _ = filter;
        Err(self.unsupported(Operation::SearchWorkers))
    }

    /// One Worker in full. Needs no capability: every Runtime can show the
    /// Workers it lists.
    async fn worker(&self, worker_id: &WorkerId) -> Result<WorkerDetail>;

    /// Creates a Worker. Needs `create_worker`.
    async fn create_worker(&self, request: CreateWorkerRequest) -> Result<WorkerDetail> {
        let _ = request;
        Err(self.unsupported(Operation::CreateWorker))
    }

    /// Sends input to a Worker. Needs `send_input`, and `busy_queue` or
    /// `busy_interrupt` for those policies.
    async fn send_input(
        &self,
        worker_id: &WorkerId,
        request: InputRequest,
    ) -> Result<InputAcceptance> {
        let _ = (worker_id, request);
        Err(self.unsupported(Operation::SendInput))
    }

    /// Cancels the running turn and drops queued inputs. Needs `cancel`.
    async fn cancel(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        let _ = worker_id;
        Err(self.unsupported(Operation::Cancel))
    }

    /// Stops the Worker for good. Needs `stop`.
    async fn stop(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        let _ = worker_id;
        Err(self.unsupported(Operation::Stop))
    }

    /// Deletes the Worker: stops it if needed (its streams end after
    /// `worker_stopped`) and removes it and all its data. Afterwards its id
    /// is `unknown_worker` and its cursors read nothing. Needs
    /// `delete_worker`.
    async fn delete_worker(&self, worker_id: &WorkerId) -> Result<()> {
        let _ = worker_id;
        Err(self.unsupported(Operation::DeleteWorker))
    }

    /// A page of the Worker's transcript. Needs `transcript`.
    async fn transcript(
        &self,
        worker_id: &WorkerId,
        query: TranscriptQuery,
    ) -> Result<TranscriptPage> {
        let _ = (worker_id, query);
        Err(self.unsupported(Operation::Transcript))
    }

    /// A page of the Worker's events after a cursor. Needs `events_poll`.
    async fn events(&self, worker_id: &WorkerId, query: EventQuery) -> Result<EventPage> {
        let _ = (worker_id, query);
        Err(self.unsupported(Operation::Events))
    }

    /// The Worker's events after `after` (from the oldest retained when
    /// `None`), then live, with no gaps and no duplicates; the stream ends
    /// after `worker_stopped`. Errors such as `cursor_expired` are returned
    /// before the stream starts. Needs `events_subscribe`.
    async fn subscribe(
        &self,
        worker_id: &WorkerId,
        after: Option<EventCursor>,
    ) -> Result<EventStream> {
        let _ = (worker_id, after);
        Err(self.unsupported(Operation::Subscribe))
    }

    /// Runtime-level events (`worker_created`, `worker_stopped`,
    /// `state_changed` of every Worker) after `after`, then live. Cursors of
    /// this stream belong to it, not to any Worker's log. Needs
    /// `events_subscribe`.
    async fn subscribe_runtime(&self, after: Option<EventCursor>) -> Result<EventStream> {
        let _ = after;
        Err(self.unsupported(Operation::Subscribe))
    }

    /// Renames a Worker and/or patches its metadata (a JSON merge patch);
    /// works on stopped Workers too, and logs `worker_updated`. Needs
    /// `update_worker`.
    async fn update_worker(
        &self,
        worker_id: &WorkerId,
        request: UpdateWorkerRequest,
    ) -> Result<WorkerDetail> {
        let _ = (worker_id, request);
        Err(self.unsupported(Operation::UpdateWorker))
    }

    /// Takes back the last `turns` completed turns: their entries stay in
    /// the transcript as `rolled_back` (indices never change) and are left
    /// out of what the model is sent; logs `rolled_back`. `worker_busy`
    /// while a turn runs or inputs wait. Needs `rollback`.
    async fn rollback(
        &self,
        worker_id: &WorkerId,
        request: RollbackRequest,
    ) -> Result<WorkerDetail> {
        let _ = (worker_id, request);
        Err(self.unsupported(Operation::Rollback))
    }

    /// A new Worker with `worker_id`'s profile and a copy of its completed
    /// transcript entries before `at` (a running turn is not copied), a
    /// fresh event log, and `forked_from` naming the source. Needs
    /// `fork_worker`.
    async fn fork_worker(
        &self,
        worker_id: &WorkerId,
        request: ForkRequest,
    ) -> Result<WorkerDetail> {
        let _ = (worker_id, request);
        Err(self.unsupported(Operation::ForkWorker))
    }

    /// The profiles Workers can be created with, in name order, with the
    /// default marked. Needs `list_profiles`.
    async fn profiles(&self) -> Result<ProfileList> {
        Err(self.unsupported(Operation::ListProfiles))
    }

    /// Findings about the Runtime's source that are safe to show (skipped
    /// records, a peer that cannot be reached). Needs no capability; the
    /// default is none.
    async fn diagnostics(&self) -> Result<Vec<Diagnostic>> {
        Ok(Vec::new())
    }

    /// The `unsupported_operation` error for `operation` on this Runtime.
    fn unsupported(&self, operation: Operation) -> RuntimeError {
        RuntimeError::unsupported(self.id().clone(), operation)
    }
}

macro_rules! forward_runtime {
    ($ptr:ident) => {
        // Every method forwards, so a new default method cannot silently
        // skip the wrapped Runtime's own implementation.
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: Runtime + ?Sized> Runtime for $ptr<T> {
            fn id(&self) -> &RuntimeId {
                (**self).id()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn summary(&self) -> Result<RuntimeSummary> {
                (**self).summary().await
            }
            async fn status(&self) -> Result<RuntimeStatus> {
                (**self).status().await
            }
            async fn list_workers(&self, query: WorkerListQuery) -> Result<WorkerPage> {
                (**self).list_workers(query).await
            }
            async fn count_workers(&self, filter: WorkerFilter) -> Result<WorkerCount> {
                (**self).count_workers(filter).await
            }
            async fn worker(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
                (**self).worker(worker_id).await
            }
            async fn create_worker(&self, request: CreateWorkerRequest) -> Result<WorkerDetail> {
                (**self).create_worker(request).await
            }
            async fn send_input(
                &self,
                worker_id: &WorkerId,
                request: InputRequest,
            ) -> Result<InputAcceptance> {
                (**self).send_input(worker_id, request).await
            }
            async fn cancel(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
                (**self).cancel(worker_id).await
            }
            async fn stop(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
                (**self).stop(worker_id).await
            }
            async fn delete_worker(&self, worker_id: &WorkerId) -> Result<()> {
                (**self).delete_worker(worker_id).await
            }
            async fn transcript(
                &self,
                worker_id: &WorkerId,
                query: TranscriptQuery,
            ) -> Result<TranscriptPage> {
                (**self).transcript(worker_id, query).await
            }
            async fn events(&self, worker_id: &WorkerId, query: EventQuery) -> Result<EventPage> {
                (**self).events(worker_id, query).await
            }
            async fn subscribe(
                &self,
                worker_id: &WorkerId,
                after: Option<EventCursor>,
            ) -> Result<EventStream> {
                (**self).subscribe(worker_id, after).await
            }
            async fn subscribe_runtime(&self, after: Option<EventCursor>) -> Result<EventStream> {
                (**self).subscribe_runtime(after).await
            }
            async fn update_worker(
                &self,
                worker_id: &WorkerId,
                request: UpdateWorkerRequest,
            ) -> Result<WorkerDetail> {
                (**self).update_worker(worker_id, request).await
            }
            async fn rollback(
                &self,
                worker_id: &WorkerId,
                request: RollbackRequest,
            ) -> Result<WorkerDetail> {
                (**self).rollback(worker_id, request).await
            }
            async fn fork_worker(
                &self,
                worker_id: &WorkerId,
                request: ForkRequest,
            ) -> Result<WorkerDetail> {
                (**self).fork_worker(worker_id, request).await
            }
            async fn profiles(&self) -> Result<ProfileList> {
                (**self).profiles().await
            }
            async fn diagnostics(&self) -> Result<Vec<Diagnostic>> {
                (**self).diagnostics().await
            }
            fn unsupported(&self, operation: Operation) -> RuntimeError {
                (**self).unsupported(operation)
            }
        }
    };
}

forward_runtime!(Arc);
forward_runtime!(Box);
