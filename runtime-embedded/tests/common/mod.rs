//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use yoi_runtime_api::ProfileName;
use yoi_runtime_api::conformance::SLOW_PROFILE;
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, ProfileConfig};

/// A runtime with the `conformance-slow` profile the suite needs.
pub fn runtime_with_slow_profile() -> EmbeddedRuntime {
    EmbeddedRuntime::new(EmbeddedOptions {
        profiles: vec![ProfileConfig::echo(
            ProfileName::new(SLOW_PROFILE).unwrap(),
            Duration::from_millis(600),
        )],
        ..EmbeddedOptions::default()
    })
    .unwrap()
}
