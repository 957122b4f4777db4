//! The `yoi` command's library: configuration, and the one function that
//! turns a configuration into the workspace server's [`AppState`].
//!
//! `main`, the tests, the load generator and the benchmarks all build their
//! servers with [`build`] (or [`build_state`], its state alone), so what
//! they exercise is what ships.

pub mod backup;
pub mod chat;
pub mod config;
pub mod listen;
pub mod log_fields;
pub mod log_format;
pub mod log_output;
pub mod request_line;
mod wiring;

pub use wiring::{Assembly, WiringError, build, build_state};

/// Re-exported so callers of [`build_state`] need not name the server crate.
pub use yoi_workspace_server::AppState;
