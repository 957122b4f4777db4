//! The contract between a yoi workspace backend and the Runtimes that host
//! its long-lived LLM Workers.
//!
//! Everything above a Runtime speaks this crate: validated [ids](id), the
//! [DTOs](dto) that cross the boundary, a [`Capabilities`] struct, one
//! [`RuntimeError`] enum with stable [`ErrorCode`]s, and the async
//! [`Runtime`] trait. With the `conformance` feature, the conformance suite
//! (module `conformance`) checks that an implementation keeps the contract. The crate knows nothing of HTTP servers, storage or model
//! providers, and depends on no Runtime implementation.
//!
//! Features: `http` (an HTTP status for every error code), `openapi`
//! (`utoipa` schemas for every DTO), `conformance` (the suite).
//!
//! # Example
//!
//! A Runtime only has to implement what it supports; everything else returns
//! `unsupported_operation` by default.
//!
//! ```
//! use async_trait::async_trait;
//! use yoi_runtime_api::dto::{
//!     ImplementationKind, RuntimeState, RuntimeStatus, RuntimeSummary, WorkerCounts,
//!     WorkerDetail,
//! };
//! use yoi_runtime_api::{Capabilities, ErrorCode, Runtime, RuntimeError, RuntimeId, WorkerId};
//!
//! #[derive(Debug)]
//! struct Empty(RuntimeId);
//!
//! #[async_trait]
//! impl Runtime for Empty {
//!     fn id(&self) -> &RuntimeId {
//!         &self.0
//!     }
//!     fn capabilities(&self) -> Capabilities {
//!         Capabilities::default()
//!     }
//!     async fn summary(&self) -> Result<RuntimeSummary, RuntimeError> {
//!         Ok(RuntimeSummary {
//!             runtime_id: self.0.clone(),
//!             display_name: "Nothing here".into(),
//!             implementation: ImplementationKind::Embedded,
//!             capabilities: self.capabilities(),
//!         })
//!     }
//!     async fn status(&self) -> Result<RuntimeStatus, RuntimeError> {
//!         Ok(RuntimeStatus {
//!             runtime_id: self.0.clone(),
//!             state: RuntimeState::Ready,
//!             workers: WorkerCounts::default(),
//!         })
//!     }
//!     async fn worker(&self, worker_id: &WorkerId) -> Result<WorkerDetail, RuntimeError> {
//!         Err(RuntimeError::UnknownWorker {
//!             runtime_id: self.0.clone(),
//!             worker_id: worker_id.clone(),
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let rt: std::sync::Arc<yoi_runtime_api::DynRuntime> =
//!     std::sync::Arc::new(Empty("empty".parse().unwrap()));
//! let worker: WorkerId = "w-1".parse().unwrap();
//! assert_eq!(rt.worker(&worker).await.unwrap_err().code(), ErrorCode::UnknownWorker);
//! let err = rt.cancel(&worker).await.unwrap_err();
//! assert_eq!(err.code(), ErrorCode::UnsupportedOperation);
//! assert_eq!(err.to_string(), "runtime 'empty' does not support cancel");
//! // Ids are validated when parsed.
//! assert!("../etc".parse::<WorkerId>().is_err());
//! # }
//! ```
#![deny(missing_docs)]

pub mod capabilities;
#[cfg(feature = "conformance")]
pub mod conformance;
/// Helpers for the tests of Runtime implementations (feature `test-util`):
/// creating, sending, waiting on events, paging.
#[cfg(feature = "test-util")]
pub mod test_util {
    pub use crate::conformance::support::*;
    pub use crate::conformance::{SLOW_PROFILE, Seeder, TURN_TIMEOUT, ThroughInputs};
}
pub mod digest;
pub mod dto;
pub mod error;
pub mod id;
#[cfg(feature = "openapi")]
mod openapi;
mod runtime;
mod timestamp;

pub use capabilities::{Capabilities, resolve_limit};

/// The version of the contract's HTTP form. A server sends it on every
/// response in the [`CONTRACT_VERSION_HEADER`] header; a remote client
/// refuses a peer that speaks another version.
pub const CONTRACT_VERSION: u32 = 1;
/// The response header that carries [`CONTRACT_VERSION`].
pub const CONTRACT_VERSION_HEADER: &str = "yoi-contract-version";
pub use error::{BusyReason, ErrorCode, InternalSource, Operation, Result, RuntimeError};
#[cfg(feature = "http")]
pub use error::{PROBLEM_JSON, Problem};
pub use id::{EventCursor, IdError, IdErrorReason, InputId, ProfileName, RuntimeId, WorkerId};
pub use runtime::{DynRuntime, EventStream, Runtime};
pub use timestamp::Timestamp;

#[cfg(test)]
mod snapshot_tests;
