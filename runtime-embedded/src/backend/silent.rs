//! A backend whose replies never arrive.

use async_trait::async_trait;

use super::{BackendError, ChatRequest, DeltaStream, ModelBackend};

/// A backend whose replies never arrive: every turn stays running until it
/// is cancelled, interrupted or stopped. For tests and benchmarks that need
/// a turn held open, or a transcript filled without waiting for replies.
#[derive(Debug, Clone, Copy, Default)]
pub struct SilentBackend;

#[async_trait]
impl ModelBackend for SilentBackend {
    fn kind(&self) -> &'static str {
        "silent"
    }

    async fn stream(&self, _: ChatRequest) -> Result<DeltaStream, BackendError> {
        Ok(Box::pin(futures_util::stream::pending()))
    }
}
