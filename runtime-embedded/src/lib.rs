//! An in-process yoi [`Runtime`](yoi_runtime_api::Runtime).
//!
//! [`EmbeddedRuntime`] hosts tool-less Workers inside the calling process and
//! is reached by direct library calls: no socket, no HTTP, no token. Each
//! Worker runs its turns through the model backend of its profile: the
//! builtin offline [`EchoBackend`](backend::EchoBackend) (the `default`
//! profile), or an OpenAI-compatible endpoint
//! ([`OpenAiBackend`](backend::OpenAiBackend)) whose key never leaves the
//! process.
//!
//! # Example
//!
//! ```
//! use futures_util::StreamExt;
//! use yoi_runtime_api::dto::{CreateWorkerRequest, InputRequest, TranscriptQuery, WorkerEventKind};
//! use yoi_runtime_api::Runtime;
//! use yoi_runtime_embedded::EmbeddedRuntime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), yoi_runtime_api::RuntimeError> {
//! let runtime = EmbeddedRuntime::with_defaults();
//! let worker = runtime.create_worker(CreateWorkerRequest::default()).await?;
//! let worker_id = worker.summary.worker_id;
//!
//! // Accepted at once; the reply streams in the background.
//! let accepted = runtime.send_input(&worker_id, InputRequest::new("hello")).await?;
//!
//! // Follow the Worker's events from the acceptance until the turn completes.
//! let mut events = runtime.subscribe(&worker_id, Some(accepted.cursor)).await?;
//! while let Some(event) = events.next().await {
//!     if let WorkerEventKind::TurnCompleted { .. } = event?.kind {
//!         break;
//!     }
//! }
//!
//! let page = runtime.transcript(&worker_id, TranscriptQuery::default()).await?;
//! assert_eq!(page.entries[1].text, "echo: hello");
//! # Ok(())
//! # }
//! ```

pub mod backend;
mod context;
mod directory;
mod error;
mod follow;
mod ids;
mod listing;
mod log;
mod options;
mod profile;
mod runtime;
mod search;
mod shared;
mod stamps;
pub mod store;
mod turn;
mod worker;

pub use error::ConfigError;
pub use options::{EmbeddedOptions, Limits};
pub use profile::{BackendConfig, DEFAULT_PROFILE, ProfileConfig};
pub use runtime::EmbeddedRuntime;
