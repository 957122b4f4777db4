//! Profiles: which model backend a Worker talks to, and with what prompt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use yoi_runtime_api::ProfileName;
use yoi_runtime_api::dto::ProfileInfo;

use crate::backend::{EchoBackend, ModelBackend, OpenAiBackend, OpenAiConfig};
use crate::error::ConfigError;

/// The name of the builtin profile: `echo` with no delay.
pub const DEFAULT_PROFILE: &str = "default";

/// How a profile produces replies.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BackendConfig {
    /// The builtin offline [`EchoBackend`].
    Echo {
        /// How long one turn takes, spread over its deltas.
        delay: Duration,
    },
    /// An OpenAI-compatible endpoint ([`OpenAiBackend`]).
    OpenAi(OpenAiConfig),
    /// Any backend, for embedding applications and tests.
    Custom(Arc<dyn ModelBackend>),
}

/// A profile as configured.
#[derive(Debug, Clone)]
pub struct ProfileConfig {
    /// Its name.
    pub name: ProfileName,
    /// The system prompt sent first in every conversation.
    pub system_prompt: Option<String>,
    /// Where replies come from.
    pub backend: BackendConfig,
}

impl ProfileConfig {
    /// An echo profile with this name and per-turn delay.
    pub fn echo(name: ProfileName, delay: Duration) -> Self {
        Self {
            name,
            system_prompt: None,
            backend: BackendConfig::Echo { delay },
        }
    }
}

/// A profile ready to run turns.
#[derive(Debug)]
pub(crate) struct Profile {
    pub(crate) name: ProfileName,
    pub(crate) system_prompt: Option<String>,
    pub(crate) backend: Arc<dyn ModelBackend>,
}

/// The profiles of one runtime and its default.
pub(crate) struct ProfileCatalog {
    profiles: BTreeMap<ProfileName, Arc<Profile>>,
    default: Arc<Profile>,
}

impl std::fmt::Debug for ProfileCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.profiles
                    .iter()
                    .map(|(name, p)| (name.as_str(), &p.backend)),
            )
            .finish()
    }
}

impl ProfileCatalog {
    /// The builtin `default` profile plus `configs` (which may replace it).
    pub(crate) fn build(
        configs: Vec<ProfileConfig>,
        default: &ProfileName,
    ) -> Result<Self, ConfigError> {
        let builtin = ProfileConfig::echo(builtin_name(), Duration::ZERO);
        let mut profiles = BTreeMap::new();
        profiles.insert(builtin.name.clone(), Arc::new(resolve(builtin)?));
        let mut seen = std::collections::BTreeSet::new();
        for config in configs {
            if !seen.insert(config.name.clone()) {
                return Err(ConfigError::DuplicateProfile { name: config.name });
            }
            profiles.insert(config.name.clone(), Arc::new(resolve(config)?));
        }
        let default =
            profiles
                .get(default)
                .cloned()
                .ok_or_else(|| ConfigError::UnknownDefaultProfile {
                    name: default.clone(),
                })?;
        Ok(Self { profiles, default })
    }

    pub(crate) fn get(&self, name: &ProfileName) -> Option<&Arc<Profile>> {
        self.profiles.get(name)
    }

    pub(crate) fn default_profile(&self) -> &Arc<Profile> {
        &self.default
    }

    /// Every profile, in name order, with the default marked.
    pub(crate) fn infos(&self) -> Vec<ProfileInfo> {
        self.profiles
            .values()
            .map(|profile| ProfileInfo {
                name: profile.name.clone(),
                backend: profile.backend.kind().to_owned(),
                default: Arc::ptr_eq(profile, &self.default),
            })
            .collect()
    }

    /// Every profile's name, in order.
    pub(crate) fn names(&self) -> Vec<ProfileName> {
        self.profiles.keys().cloned().collect()
    }
}

pub(crate) fn builtin_name() -> ProfileName {
    ProfileName::new(DEFAULT_PROFILE).unwrap_or_else(|_| unreachable!("'default' is a valid id"))
}

fn resolve(config: ProfileConfig) -> Result<Profile, ConfigError> {
    let backend: Arc<dyn ModelBackend> = match config.backend {
        BackendConfig::Echo { delay } => Arc::new(EchoBackend::new(delay)),
        BackendConfig::OpenAi(openai) => Arc::new(OpenAiBackend::new(openai).map_err(
            |source| ConfigError::InvalidBackend {
                profile: config.name.clone(),
                source,
            },
        )?),
        BackendConfig::Custom(backend) => backend,
    };
    Ok(Profile {
        name: config.name,
        system_prompt: config.system_prompt,
        backend,
    })
}
