//! ReceiveRequestAttemptId (FIFO queues): a ReceiveMessage retried with the same attempt id
//! within five minutes gets the same messages and receipt handles again, as long as none of
//! them was deleted or had its visibility changed meanwhile, and their visibility timeout starts
//! over. That lets a client whose answer was lost on the network retry without waiting for the
//! messages (and their groups) to become visible again. Kept in memory.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::recent::Recent;

/// AWS: "You can use ReceiveRequestAttemptId only for 5 minutes after a ReceiveMessage action."
const WINDOW: Duration = Duration::from_secs(300);
/// Attempts remembered at once; beyond it the oldest are forgotten early.
const REMEMBERED_MAX: usize = 100_000;

/// An answered receive: the answer and the receipt handles in it.
#[derive(Debug, Clone)]
pub struct Answered {
    pub answer: Value,
    pub receipts: Vec<String>,
}

#[derive(Debug)]
pub struct Attempts {
    answered: Mutex<Recent<Answered>>,
}

impl Default for Attempts {
    fn default() -> Self {
        Attempts {
            answered: Mutex::new(Recent::new(WINDOW, REMEMBERED_MAX)),
        }
    }
}

impl Attempts {
    pub fn key(queue: &str, attempt: &str) -> String {
        format!("{queue}\n{attempt}")
    }

    /// The answer given to `key` in the last five minutes, if any.
    pub fn find(&self, key: &str) -> Option<Answered> {
        self.lock().get(key, Instant::now()).cloned()
    }

    pub fn remember(&self, key: String, answered: Answered) {
        self.lock().insert(key, answered, Instant::now());
    }

    fn lock(&self) -> MutexGuard<'_, Recent<Answered>> {
        self.answered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_found_by_queue_and_attempt() {
        let attempts = Attempts::default();
        let answered = Answered {
            answer: serde_json::json!({"Messages": []}),
            receipts: vec!["r1".into()],
        };
        attempts.remember(Attempts::key("q.fifo", "a1"), answered);
        let found = attempts
            .find(&Attempts::key("q.fifo", "a1"))
            .expect("found");
        assert_eq!(found.receipts, ["r1"]);
        assert!(attempts.find(&Attempts::key("q.fifo", "a2")).is_none());
        assert!(attempts.find(&Attempts::key("other.fifo", "a1")).is_none());
    }
}
