//! Why options could not become a Runtime.

use yoi_runtime_api::ProfileName;

use crate::backend::OpenAiConfigError;

/// Why options could not become a runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Two profiles have the same name.
    #[error("profile '{name}' is defined twice")]
    DuplicateProfile {
        /// The repeated name.
        name: ProfileName,
    },
    /// `default_profile` names no profile.
    #[error("default profile '{name}' is not defined")]
    UnknownDefaultProfile {
        /// The missing name.
        name: ProfileName,
    },
    /// A profile's backend settings are wrong.
    #[error("profile '{profile}': {source}")]
    InvalidBackend {
        /// The profile.
        profile: ProfileName,
        /// What is wrong.
        #[source]
        source: OpenAiConfigError,
    },
    /// A limit is zero or contradicts another.
    #[error("invalid limits: {message}")]
    InvalidLimits {
        /// What is wrong.
        message: String,
    },
    /// The store could not be opened or read at start.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
