//! One STOMP session's bookkeeping, free of I/O: version and heart-beat negotiation,
//! deliveries awaiting ACK or NACK, open transactions and the order of receipts. The
//! connection task owns it and makes the broker calls.
//!
//! Invariants:
//! - Every delivery recorded in [`Unacked`] is still owned by its queue for its consumer: when a
//!   subscription ends, the connection takes its records and requeues them, so an ACK never
//!   settles a tag the queue has forgotten or given to another.
//! - Receipts go out in the order their frames came in, even when a SEND's receipt waits for
//!   its queues to accept the message: [`Receipts`] releases a ready receipt only after every
//!   earlier one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use mqbridge_broker_api::ConsumerId;

use crate::codec::{Frame, Version};

/// How a subscription's deliveries are acknowledged (the SUBSCRIBE `ack` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Delivered means acknowledged.
    Auto,
    /// An ACK acknowledges that message and every earlier one of the same subscription.
    Client,
    /// An ACK acknowledges that message only.
    ClientIndividual,
}

impl AckMode {
    pub fn parse(text: Option<&str>) -> Option<AckMode> {
        match text {
            None | Some("auto") => Some(AckMode::Auto),
            Some("client") => Some(AckMode::Client),
            Some("client-individual") => Some(AckMode::ClientIndividual),
            Some(_) => None,
        }
    }
}

/// The version both sides speak: the highest in `accept-version` that we speak too. A CONNECT
/// without the header is a STOMP 1.0 client.
pub fn negotiate_version(accept_version: Option<&str>) -> Option<Version> {
    let Some(accepted) = accept_version else {
        return Some(Version::V1_0);
    };
    accepted.split(',').filter_map(Version::parse).max()
}

/// Heart-beat periods after negotiation; `None` is "no heart-beats that way".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartBeat {
    /// How often we send something.
    pub send: Option<Duration>,
    /// How often the client promised to send something.
    pub expect: Option<Duration>,
}

/// STOMP 1.2 "Heart-beating": the client says `cx,cy` (it can send every cx ms, wants to
/// receive every cy ms) and we say `sx,sy`; we send every max(sx, cy) ms unless either is 0,
/// and expect the client every max(cx, sy) ms unless either is 0. `None` for a malformed
/// header.
pub fn negotiate_heart_beat(client: Option<&str>, server: (u64, u64)) -> Option<HeartBeat> {
    let (cx, cy) = match client {
        None => (0, 0),
        Some(text) => {
            let (x, y) = text.split_once(',')?;
            (x.trim().parse::<u64>().ok()?, y.trim().parse::<u64>().ok()?)
        }
    };
    let (sx, sy) = server;
    let period = |ours: u64, theirs: u64| {
        (ours > 0 && theirs > 0).then(|| Duration::from_millis(ours.max(theirs)))
    };
    Some(HeartBeat {
        send: period(sx, cy),
        expect: period(sy, cx),
    })
}

/// A delivery awaiting the client's ACK or NACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub consumer: ConsumerId,
    /// The queue's own tag for the delivery.
    pub tag: u64,
    pub mode: AckMode,
}

/// Deliveries awaiting acknowledgement, by our delivery number (the number in `message-id`).
#[derive(Debug, Default)]
pub struct Unacked {
    next: u64,
    pending: BTreeMap<u64, Pending>,
}

impl Unacked {
    /// Numbers the next delivery; every delivery gets one, acknowledged or not.
    pub fn next_number(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub fn record(&mut self, number: u64, pending: Pending) {
        debug_assert!(pending.mode != AckMode::Auto, "auto deliveries need no ACK");
        self.pending.insert(number, pending);
    }

    pub fn contains(&self, number: u64) -> bool {
        self.pending.contains_key(&number)
    }

    /// Removes what an ACK or NACK of `number` settles: in `client` mode that delivery and
    /// every earlier one of the same subscription (STOMP 1.2, SUBSCRIBE "ack Header"), else
    /// that delivery alone. Empty if `number` is unknown.
    pub fn take(&mut self, number: u64) -> Vec<Pending> {
        let Some(pending) = self.pending.remove(&number) else {
            return Vec::new();
        };
        if pending.mode != AckMode::Client {
            return vec![pending];
        }
        let earlier: Vec<u64> = self
            .pending
            .range(..number)
            .filter(|(_, p)| p.consumer == pending.consumer)
            .map(|(n, _)| *n)
            .collect();
        let mut taken: Vec<Pending> = earlier
            .iter()
            .filter_map(|n| self.pending.remove(n))
            .collect();
        taken.push(pending);
        taken
    }

    /// Removes a consumer's deliveries, returning their queue tags (to requeue them when the
    /// subscription ends).
    pub fn take_consumer(&mut self, consumer: ConsumerId) -> Vec<u64> {
        let mut tags = Vec::new();
        self.pending.retain(|_, p| {
            let mine = p.consumer == consumer;
            if mine {
                tags.push(p.tag);
            }
            !mine
        });
        tags
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Limits that keep one client's transactions from holding unbounded memory.
pub const TRANSACTIONS_MAX: usize = 64;
/// Frames (SEND, ACK, NACK) one transaction may hold until COMMIT.
pub const TRANSACTION_FRAMES_MAX: usize = 10_000;
/// Body octets one transaction may hold until COMMIT.
pub const TRANSACTION_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Why a transaction frame is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    #[error("transaction '{0}' is already open")]
    AlreadyOpen(String),
    #[error("no transaction '{0}' is open")]
    Unknown(String),
    #[error("more than {TRANSACTIONS_MAX} transactions open at once")]
    TooMany,
    #[error(
        "transaction '{0}' holds more than {TRANSACTION_FRAMES_MAX} frames or \
         {TRANSACTION_BYTES_MAX} octets"
    )]
    TooLarge(String),
}

#[derive(Debug, Default)]
struct Transaction {
    frames: Vec<Frame>,
    bytes: usize,
}

/// Open transactions: SEND, ACK and NACK frames held until COMMIT (STOMP 1.2, BEGIN).
#[derive(Debug, Default)]
pub struct Transactions {
    open: HashMap<String, Transaction>,
}

impl Transactions {
    pub fn begin(&mut self, id: &str) -> Result<(), TransactionError> {
        if self.open.contains_key(id) {
            return Err(TransactionError::AlreadyOpen(id.to_owned()));
        }
        if self.open.len() == TRANSACTIONS_MAX {
            return Err(TransactionError::TooMany);
        }
        self.open.insert(id.to_owned(), Transaction::default());
        Ok(())
    }

    pub fn add(&mut self, id: &str, frame: Frame) -> Result<(), TransactionError> {
        let transaction = self
            .open
            .get_mut(id)
            .ok_or_else(|| TransactionError::Unknown(id.to_owned()))?;
        transaction.bytes += frame.body.len();
        if transaction.frames.len() == TRANSACTION_FRAMES_MAX
            || transaction.bytes > TRANSACTION_BYTES_MAX
        {
            return Err(TransactionError::TooLarge(id.to_owned()));
        }
        transaction.frames.push(frame);
        Ok(())
    }

    /// Ends a transaction, returning its frames in the order they came (for COMMIT).
    pub fn end(&mut self, id: &str) -> Result<Vec<Frame>, TransactionError> {
        self.open
            .remove(id)
            .map(|t| t.frames)
            .ok_or_else(|| TransactionError::Unknown(id.to_owned()))
    }
}

/// Receipts owed to the client, in frame order.
#[derive(Debug, Default)]
pub struct Receipts {
    /// (receipt id, the publish confirm it waits for). An entry without a receipt id holds
    /// back the receipts after it without producing one (the SENDs of a COMMIT with a receipt).
    owed: VecDeque<(Option<String>, Option<u64>)>,
}

impl Receipts {
    /// A receipt that can go as soon as the earlier ones have.
    pub fn ready(&mut self, receipt: String) {
        self.owed.push_back((Some(receipt), None));
    }

    /// A receipt that waits for the publish confirm `confirm`.
    pub fn after_confirm(&mut self, receipt: String, confirm: u64) {
        self.owed.push_back((Some(receipt), Some(confirm)));
    }

    /// Holds later receipts back until the publish confirm `confirm`.
    pub fn wait(&mut self, confirm: u64) {
        self.owed.push_back((None, Some(confirm)));
    }

    /// Marks `confirm` done; returns the receipt that waited for it, if any.
    pub fn confirmed(&mut self, confirm: u64) -> Option<String> {
        let slot = self.owed.iter_mut().find(|(_, c)| *c == Some(confirm))?;
        slot.1 = None;
        slot.0.clone()
    }

    /// Removes the receipts that may go now, in order.
    pub fn release(&mut self) -> Vec<String> {
        let mut released = Vec::new();
        while self.owed.front().is_some_and(|(_, c)| c.is_none()) {
            if let Some((Some(receipt), _)) = self.owed.pop_front() {
                released.push(receipt);
            }
        }
        released
    }

    pub fn is_empty(&self) -> bool {
        self.owed.is_empty()
    }
}

/// Our `message-id` for delivery `number` on connection `connection`: unique in the broker, so
/// that an ACK carrying another connection's id is recognised as unknown.
pub fn message_id(connection: u64, number: u64) -> String {
    format!("T_{connection}-{number}")
}

/// The delivery number in a `message-id` of ours on `connection`.
pub fn parse_message_id(connection: u64, text: &str) -> Option<u64> {
    let (owner, number) = text.strip_prefix("T_")?.split_once('-')?;
    if owner.parse::<u64>().ok()? != connection {
        return None;
    }
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Command;

    #[test]
    fn the_highest_common_version_wins() {
        assert_eq!(negotiate_version(None), Some(Version::V1_0));
        assert_eq!(negotiate_version(Some("1.0,1.1")), Some(Version::V1_1));
        assert_eq!(negotiate_version(Some("1.2,1.0")), Some(Version::V1_2));
        assert_eq!(negotiate_version(Some("1.1,2.0")), Some(Version::V1_1));
        assert_eq!(negotiate_version(Some("2.0")), None);
    }

    #[test]
    fn heart_beats_take_the_slower_of_the_two_wishes() {
        let beat = negotiate_heart_beat(Some("500,3000"), (1000, 1000)).expect("valid");
        assert_eq!(beat.send, Some(Duration::from_millis(3000)));
        assert_eq!(beat.expect, Some(Duration::from_millis(1000)));
        let none = negotiate_heart_beat(Some("0,0"), (1000, 1000)).expect("valid");
        assert_eq!((none.send, none.expect), (None, None));
        assert_eq!(
            negotiate_heart_beat(None, (1000, 1000)),
            Some(HeartBeat {
                send: None,
                expect: None
            })
        );
        assert_eq!(negotiate_heart_beat(Some("fast"), (1000, 1000)), None);
    }

    fn pending(consumer: u64, tag: u64, mode: AckMode) -> Pending {
        Pending {
            consumer: ConsumerId(consumer),
            tag,
            mode,
        }
    }

    #[test]
    fn client_mode_acks_cumulatively_within_its_subscription() {
        let mut unacked = Unacked::default();
        for (consumer, tag) in [(1, 10), (2, 20), (1, 11), (1, 12)] {
            let number = unacked.next_number();
            unacked.record(number, pending(consumer, tag, AckMode::Client));
        }
        // Number 3 is consumer 1's tag 11: it takes tag 10 along, not consumer 2's.
        let tags: Vec<u64> = unacked.take(3).iter().map(|p| p.tag).collect();
        assert_eq!(tags, [10, 11]);
        assert_eq!(unacked.len(), 2);
        assert!(unacked.take(3).is_empty());
    }

    #[test]
    fn client_individual_mode_acks_one() {
        let mut unacked = Unacked::default();
        for tag in [1, 2, 3] {
            let number = unacked.next_number();
            unacked.record(number, pending(1, tag, AckMode::ClientIndividual));
        }
        let tags: Vec<u64> = unacked.take(2).iter().map(|p| p.tag).collect();
        assert_eq!(tags, [2]);
        assert_eq!(unacked.take_consumer(ConsumerId(1)), [1, 3]);
        assert!(unacked.is_empty());
    }

    #[test]
    fn transactions_hold_frames_until_they_end() {
        let mut transactions = Transactions::default();
        transactions.begin("t").expect("begin");
        assert_eq!(
            transactions.begin("t"),
            Err(TransactionError::AlreadyOpen("t".into()))
        );
        transactions
            .add("t", Frame::new(Command::Send))
            .expect("add");
        transactions
            .add("t", Frame::new(Command::Ack))
            .expect("add");
        assert!(transactions.add("u", Frame::new(Command::Ack)).is_err());
        let frames = transactions.end("t").expect("commit");
        let commands: Vec<_> = frames.iter().map(|f| f.command).collect();
        assert_eq!(commands, [Command::Send, Command::Ack]);
        assert!(transactions.end("t").is_err());
    }

    #[test]
    fn receipts_keep_frame_order() {
        let mut receipts = Receipts::default();
        receipts.after_confirm("send-1".into(), 1);
        receipts.ready("subscribe-2".into());
        assert!(receipts.release().is_empty());
        assert_eq!(receipts.confirmed(1).as_deref(), Some("send-1"));
        assert_eq!(receipts.release(), ["send-1", "subscribe-2"]);
        assert!(receipts.is_empty());
    }

    #[test]
    fn hidden_waits_hold_later_receipts() {
        let mut receipts = Receipts::default();
        receipts.wait(1);
        receipts.wait(2);
        receipts.ready("commit".into());
        assert_eq!(receipts.confirmed(2), None);
        assert!(receipts.release().is_empty());
        receipts.confirmed(1);
        assert_eq!(receipts.release(), ["commit"]);
    }

    #[test]
    fn message_ids_belong_to_their_connection() {
        let id = message_id(7, 42);
        assert_eq!(parse_message_id(7, &id), Some(42));
        assert_eq!(parse_message_id(8, &id), None);
        assert_eq!(parse_message_id(7, "42"), None);
    }
}
