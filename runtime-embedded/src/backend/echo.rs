use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;

use super::{BackendError, ChatRequest, ChatRole, DeltaStream, ModelBackend};

/// The builtin offline backend: replies `echo: <input>`, streamed as one
/// delta per word, deterministic from the input.
///
/// With a `delay`, a turn takes about that long, spread over its deltas, so
/// busy, queue, interrupt and cancel can be exercised for real.
#[derive(Debug, Clone, Default)]
pub struct EchoBackend {
    delay: Duration,
}

impl EchoBackend {
    /// An echo backend whose turns take about `delay`.
    pub fn new(delay: Duration) -> Self {
        Self { delay }
    }
}

/// The deltas the echo backend streams for `input`: `"echo:"` and then each
/// word of the input with the whitespace before it. Concatenated, they are
/// `"echo: "` followed by the input with its outer whitespace trimmed.
pub fn echo_reply_chunks(input: &str) -> Vec<String> {
    let mut chunks = vec!["echo:".to_owned()];
    let mut current = String::from(" ");
    for (i, ch) in input.trim().char_indices() {
        if ch.is_whitespace() && !current.trim().is_empty() && i > 0 {
            chunks.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.trim().is_empty() {
        chunks.push(current);
    }
    chunks
}

#[async_trait]
impl ModelBackend for EchoBackend {
    fn kind(&self) -> &'static str {
        "echo"
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, BackendError> {
        let input = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == ChatRole::User)
            .map(|m| m.content.as_str())
            .unwrap_or_default();
        let chunks = echo_reply_chunks(input);
        let pause = self.delay / u32::try_from(chunks.len()).unwrap_or(u32::MAX).max(1);
        let stream = futures_util::stream::iter(chunks).then(move |chunk| async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            Ok(chunk)
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ChatMessage;

    #[test]
    fn chunks_concatenate_to_the_reply() {
        for input in [
            "hello",
            "hello world",
            "  spaced   out\ttext ",
            "ünïcode wörds",
        ] {
            let chunks = echo_reply_chunks(input);
            assert!(chunks.len() >= 2, "{chunks:?}");
            assert_eq!(chunks.concat(), format!("echo: {}", input.trim()));
        }
        assert_eq!(echo_reply_chunks("a b"), ["echo:", " a", " b"]);
    }

    #[tokio::test]
    async fn streams_the_last_user_message() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage {
                    role: ChatRole::User,
                    content: "first".into(),
                },
                ChatMessage {
                    role: ChatRole::Assistant,
                    content: "echo: first".into(),
                },
                ChatMessage {
                    role: ChatRole::User,
                    content: "second one".into(),
                },
            ],
        };
        let stream = EchoBackend::default().stream(request).await.unwrap();
        let deltas: Vec<String> = stream.map(Result::unwrap).collect().await;
        assert_eq!(deltas, ["echo:", " second", " one"]);
    }
}
