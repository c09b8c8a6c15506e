//! FIFO queues (`.fifo`): message groups, deduplication and sequence numbers.
//!
//! - Order and one in-flight batch per group come from the core: a FIFO queue is declared with
//!   `x-message-groups`, and each message carries its MessageGroupId in
//!   [`MESSAGE_GROUP_HEADER`]. A receive is one owner, so it may take several messages of a
//!   group, in order, while no other receive gets any of that group until they are deleted or
//!   visible again. AMQP and STOMP consumers of the queue follow the same rule.
//! - Deduplication is this adapter's: a send whose deduplication id was seen in the last five
//!   minutes (per queue, or per group with `DeduplicationScope=messageGroup`) succeeds without
//!   enqueueing and answers with the first send's MessageId and SequenceNumber, as AWS does.
//!   The table is in memory: a restart forgets it.
//! - Sequence numbers are 20 decimal digits, increasing across the whole broker and across
//!   restarts (they start from the clock in microseconds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{ErrorKind, SqsError};
use crate::recent::Recent;
use crate::service::now_ms;

pub use mqbridge_broker_api::MESSAGE_GROUP_HEADER;

/// The header holding a FIFO message's deduplication id.
pub const DEDUPLICATION_HEADER: &str = "x-sqs-deduplication-id";
/// The header holding a FIFO message's sequence number.
pub const SEQUENCE_HEADER: &str = "x-sqs-sequence-number";
/// The queue argument that gives a core queue SQS FIFO's group rule.
pub const GROUPS_ARGUMENT: &str = "x-message-groups";

/// AWS: "the 5-minute deduplication interval".
const WINDOW: Duration = Duration::from_secs(300);
/// AWS: MessageGroupId and MessageDeduplicationId are at most 128 characters.
const ID_LENGTH_MAX: usize = 128;
/// Deduplication ids remembered at once; beyond it the oldest are forgotten early.
const REMEMBERED_MAX: usize = 1_000_000;

/// Checks a MessageGroupId or MessageDeduplicationId: AWS allows 1 to 128 characters from
/// `!` to `~` (alphanumerics and punctuation).
pub fn check_id(parameter: &str, value: &str) -> Result<(), SqsError> {
    let valid = (1..=ID_LENGTH_MAX).contains(&value.len())
        && value.bytes().all(|b| (b'!'..=b'~').contains(&b));
    if valid {
        return Ok(());
    }
    Err(SqsError::invalid(format!(
        "Value {value} for parameter {parameter} is invalid. Reason: {parameter} can only \
         include alphanumeric and punctuation characters. 1 to {ID_LENGTH_MAX} in length."
    )))
}

/// ContentBasedDeduplication's id: the SHA-256 of the body, in hex.
pub fn content_id(body: &str) -> String {
    crate::hex::encode(&Sha256::digest(body.as_bytes()))
}

/// The next sequence number: larger than every one handed out before, here or before a
/// restart (as long as the clock does not go back).
pub fn next_sequence_number() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now_us = now_ms().saturating_mul(1000);
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now_us.max(last + 1))
        })
        .unwrap_or_default();
    format!("{:020}", now_us.max(previous + 1))
}

/// What a first send answered, to answer its duplicates the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSend {
    pub message_id: String,
    pub sequence_number: String,
}

/// The deduplication ids seen in the last five minutes.
#[derive(Debug)]
pub struct Deduplication {
    seen: Mutex<Recent<FirstSend>>,
}

impl Default for Deduplication {
    fn default() -> Self {
        Deduplication {
            seen: Mutex::new(Recent::new(WINDOW, REMEMBERED_MAX)),
        }
    }
}

impl Deduplication {
    /// The key of a deduplication id: per queue, or per group when the scope is the group.
    pub fn key(queue: &str, group: Option<&str>, id: &str) -> String {
        format!("{queue}\n{}\n{id}", group.unwrap_or(""))
    }

    /// Records `send` under `key` unless a send with that key is remembered; returns the
    /// remembered one if so.
    pub fn claim(&self, key: &str, send: &FirstSend) -> Option<FirstSend> {
        let now = Instant::now();
        let mut seen = self.lock();
        if let Some(first) = seen.get(key, now) {
            return Some(first.clone());
        }
        seen.insert(key.to_owned(), send.clone(), now);
        None
    }

    /// Forgets a claim whose message was not stored, so that a retry is not a duplicate.
    pub fn release(&self, key: &str, send: &FirstSend) {
        self.lock().remove_if(key, |first| first == send);
    }

    /// Forgets every id of `queue` (the queue was deleted).
    pub fn forget_queue(&self, queue: &str) {
        let prefix = format!("{queue}\n");
        self.lock().retain_keys(|key| !key.starts_with(&prefix));
    }

    fn lock(&self) -> MutexGuard<'_, Recent<FirstSend>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The error AWS gives a FIFO send that names no deduplication id on a queue without
/// content-based deduplication.
pub fn no_deduplication_id() -> SqsError {
    SqsError::invalid(
        "The queue should either have ContentBasedDeduplication enabled or \
         MessageDeduplicationId provided explicitly",
    )
}

/// The error AWS gives a parameter FIFO queues do not take (a per-message DelaySeconds).
pub fn not_for_fifo(parameter: &str, value: &str) -> SqsError {
    SqsError::new(
        ErrorKind::InvalidParameterValue,
        format!(
            "Value {value} for parameter {parameter} is invalid. Reason: The request include \
             parameter that is not valid for this queue type."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(id: &str) -> FirstSend {
        FirstSend {
            message_id: id.to_owned(),
            sequence_number: next_sequence_number(),
        }
    }

    #[test]
    fn a_second_claim_gets_the_first_send_until_released() {
        let dedup = Deduplication::default();
        let key = Deduplication::key("q.fifo", None, "d1");
        let first = send("m1");
        assert_eq!(dedup.claim(&key, &first), None);
        assert_eq!(dedup.claim(&key, &send("m2")), Some(first.clone()));
        let other_group = Deduplication::key("q.fifo", Some("g"), "d1");
        assert_eq!(dedup.claim(&other_group, &send("m3")), None);
        dedup.release(&key, &first);
        assert_eq!(dedup.claim(&key, &send("m4")), None);
        dedup.forget_queue("q.fifo");
        assert_eq!(dedup.claim(&key, &send("m5")), None);
    }

    #[test]
    fn sequence_numbers_increase_and_have_twenty_digits() {
        let a = next_sequence_number();
        let b = next_sequence_number();
        assert_eq!(a.len(), 20);
        assert!(b > a, "{b} after {a}");
    }

    #[test]
    fn ids_are_printable_ascii_up_to_128() {
        assert!(check_id("MessageGroupId", "g-1:!~").is_ok());
        assert!(check_id("MessageGroupId", "").is_err());
        assert!(check_id("MessageGroupId", "a b").is_err());
        assert!(check_id("MessageGroupId", &"x".repeat(129)).is_err());
        assert_eq!(content_id("hello").len(), 64);
    }
}
