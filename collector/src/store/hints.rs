//! What this collector remembers between write transactions to spare the store a read:
//! hints, never the truth. Each one may be missing or stale (another replica wrote since, a
//! transaction rolled back) without harm, because a hint only ever lets ingest skip work that
//! would change nothing, and when it is absent the store is asked. Bounded by the number of
//! enrolled agents.

use std::collections::HashMap;
use std::sync::Mutex;

/// The hints, shared by every transaction of one store handle.
#[derive(Debug, Default)]
pub struct Hints {
    /// When this collector last recorded a disk sample for each agent.
    last_sample_ms: Mutex<HashMap<String, i64>>,
}

impl Hints {
    /// When this collector last recorded a disk sample of `agent_id`, if it did.
    pub fn last_sample(&self, agent_id: &str) -> Option<i64> {
        self.last_sample_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent_id)
            .copied()
    }

    /// Notes that `agent_id` has a disk sample at `at_ms`.
    pub fn sampled(&self, agent_id: &str, at_ms: i64) {
        let mut map = self
            .last_sample_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match map.get_mut(agent_id) {
            Some(t) => *t = (*t).max(at_ms),
            None => {
                map.insert(agent_id.to_owned(), at_ms);
            }
        }
    }
}
