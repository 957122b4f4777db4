//! The `client_input_id`s a Worker remembers: the newest
//! `max_remembered_client_ids`, each with the acceptance a retry is
//! answered with and its text's digest.

use std::collections::{HashMap, VecDeque};

use yoi_runtime_api::InputId;

use crate::store::RememberedInput;

/// Remembered ids, looked up by id and forgotten oldest first.
#[derive(Debug, Default)]
pub(super) struct RememberedInputs {
    by_id: HashMap<InputId, RememberedInput>,
    /// Oldest first.
    order: VecDeque<InputId>,
}

impl RememberedInputs {
    /// What a store kept, oldest first.
    pub(super) fn restore(stored: Vec<(InputId, RememberedInput)>) -> Self {
        let order = stored.iter().map(|(id, _)| id.clone()).collect();
        Self {
            by_id: stored.into_iter().collect(),
            order,
        }
    }

    pub(super) fn get(&self, id: &InputId) -> Option<&RememberedInput> {
        self.by_id.get(id)
    }

    /// Remembers `id`, forgetting the oldest beyond `max`.
    pub(super) fn remember(&mut self, id: InputId, remembered: RememberedInput, max: usize) {
        if self.by_id.insert(id.clone(), remembered).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > max {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use yoi_runtime_api::EventCursor;
    use yoi_runtime_api::dto::{InputAcceptance, WorkerState};

    use super::*;

    fn remembered(n: u64) -> RememberedInput {
        RememberedInput {
            acceptance: InputAcceptance {
                input_id: InputId::new(format!("in-{n}")).unwrap(),
                transcript_index: n,
                state: WorkerState::Running,
                cursor: EventCursor::new(format!("{n}.e")).unwrap(),
            },
            text_digest: Some(RememberedInput::text_digest(&n.to_string())),
        }
    }

    fn id(n: u64) -> InputId {
        InputId::new(format!("c-{n}")).unwrap()
    }

    #[test]
    fn the_oldest_are_forgotten_beyond_the_maximum() {
        let mut ids = RememberedInputs::restore(vec![(id(0), remembered(0))]);
        for n in 1..5 {
            ids.remember(id(n), remembered(n), 3);
        }
        assert!(ids.get(&id(0)).is_none());
        assert!(ids.get(&id(1)).is_none());
        for n in 2..5 {
            assert_eq!(ids.get(&id(n)), Some(&remembered(n)));
        }
        assert!(ids.get(&id(4)).unwrap().is_retried_by("4"));
        assert!(!ids.get(&id(4)).unwrap().is_retried_by("5"));
        assert_eq!(ids.order.len(), 3);
    }
}
