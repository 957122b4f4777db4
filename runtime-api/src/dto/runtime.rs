use serde::{Deserialize, Serialize};

use crate::capabilities::Capabilities;
use crate::id::{ProfileName, RuntimeId};

/// How a Runtime is implemented, as far as clients need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImplementationKind {
    /// Runs inside the backend process, reached by direct calls.
    Embedded,
    /// A read-only view of Workers that run as separate local processes.
    LocalCompat,
    /// A separate Runtime process reached over the network.
    Remote,
}

/// Who a Runtime is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuntimeSummary {
    /// The Runtime's id, unique in a registry.
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// How it is implemented.
    pub implementation: ImplementationKind,
    /// What it can do.
    pub capabilities: Capabilities,
}

/// Whether a Runtime can serve requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RuntimeState {
    /// Serving normally.
    Ready,
    /// Serving, but something is wrong (see diagnostics).
    Degraded,
    /// Not serving.
    Unavailable,
}

/// How many Workers a Runtime has in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerCounts {
    /// Workers waiting for input.
    pub idle: u64,
    /// Workers running a turn.
    pub running: u64,
    /// Workers being stopped.
    pub stopping: u64,
    /// Workers that were stopped.
    pub stopped: u64,
    /// Workers that failed.
    pub failed: u64,
}

impl WorkerCounts {
    /// The Workers in `state`.
    pub fn of(&self, state: crate::dto::WorkerState) -> u64 {
        use crate::dto::WorkerState as S;
        match state {
            S::Idle => self.idle,
            S::Running => self.running,
            S::Stopping => self.stopping,
            S::Stopped => self.stopped,
            S::Failed => self.failed,
        }
    }

    /// Adds one Worker in `state`.
    pub fn add(&mut self, state: crate::dto::WorkerState) {
        use crate::dto::WorkerState as S;
        let slot = match state {
            S::Idle => &mut self.idle,
            S::Running => &mut self.running,
            S::Stopping => &mut self.stopping,
            S::Stopped => &mut self.stopped,
            S::Failed => &mut self.failed,
        };
        *slot += 1;
    }

    /// All Workers.
    pub fn total(&self) -> u64 {
        self.idle + self.running + self.stopping + self.stopped + self.failed
    }
}

/// A Runtime's health and load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuntimeStatus {
    /// The Runtime's id.
    pub runtime_id: RuntimeId,
    /// Whether it can serve requests.
    pub state: RuntimeState,
    /// Its Workers by state.
    pub workers: WorkerCounts,
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DiagnosticLevel {
    /// For information.
    Info,
    /// Something was skipped or looks wrong.
    Warning,
}

/// One finding about a Runtime or its source, safe to show: **it never
/// contains a file system path, socket, host, token or key**.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diagnostic {
    /// How serious it is.
    pub level: DiagnosticLevel,
    /// A stable code, for example `malformed_record`.
    pub code: String,
    /// What was found, for people.
    pub message: String,
}

impl Diagnostic {
    /// A warning with `code` and `message`.
    pub fn warning(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            level: DiagnosticLevel::Warning,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A profile Workers can be created with. **Only its name, backend kind and
/// whether it is the default: never a URL, model key or prompt.**
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileInfo {
    /// The name to pass as `profile` when creating a Worker.
    pub name: ProfileName,
    /// The kind of backend behind it, for example `echo` or `openai`.
    pub backend: String,
    /// Whether Workers created without a profile get this one.
    pub default: bool,
}

/// The profiles of a Runtime, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileList {
    /// The profiles.
    pub items: Vec<ProfileInfo>,
}
