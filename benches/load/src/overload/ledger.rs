//! The ledger: which message ids the broker confirmed and how often each was delivered.
//!
//! A message id is the publishing connection's index and the message's sequence number on
//! that connection's channel, which is also its publisher-confirm delivery tag (tags count
//! publishes from 1 after `confirm.select`, AMQP 0-9-1 confirm extension). Both travel in the
//! first `MessageId::WIRE_BYTES` octets of every body:
//!
//! ```text
//! +-----------------+------------------------+------------------------+
//! | publisher (u32) | sequence = tag (u64)   | filler up to --size    |
//! |   big-endian    |   big-endian           |                        |
//! +-----------------+------------------------+------------------------+
//! ```
//!
//! One octet per message holds its state: confirmed, nacked, and how many times a consumer
//! received it (saturating). The ledger keeps `outstanding` up to date (confirmed and not yet
//! received), so the drain can end the moment it reaches zero. Publishers' confirm readers
//! and the consumers share it behind a `std::sync::Mutex`, locked once per confirm frame or
//! per socket read, never across an `.await`.

use anyhow::bail;

/// A message's identity, as carried at the front of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageId {
    pub publisher: u32,
    pub sequence: u64,
}

impl MessageId {
    /// Octets of a body the id takes.
    pub const WIRE_BYTES: usize = 12;

    /// Writes the id at the front of `body`.
    pub fn encode(self, body: &mut [u8]) {
        body[..4].copy_from_slice(&self.publisher.to_be_bytes());
        body[4..Self::WIRE_BYTES].copy_from_slice(&self.sequence.to_be_bytes());
    }

    /// Reads the id at the front of `body`, or `None` when the body is too short.
    pub fn decode(body: &[u8]) -> Option<Self> {
        let publisher = body.get(..4)?.try_into().ok()?;
        let sequence = body.get(4..Self::WIRE_BYTES)?.try_into().ok()?;
        Some(Self {
            publisher: u32::from_be_bytes(publisher),
            sequence: u64::from_be_bytes(sequence),
        })
    }
}

/// The broker acked the message: it is stored and must be delivered.
const CONFIRMED: u8 = 0b01;
/// The broker nacked it: it may or may not be delivered.
const NACKED: u8 = 0b10;
/// The receive count lives in the six high bits.
const RECEIPT_SHIFT: u32 = 2;
const RECEIPTS_MAX: u8 = u8::MAX >> RECEIPT_SHIFT;

/// Settle and receipt state of every message of one publisher; index = sequence - 1.
#[derive(Debug, Default)]
struct PublisherLog {
    states: Vec<u8>,
    /// Sequences below this are all settled, so a `multiple` confirm starts here.
    first_unsettled: u64,
}

impl PublisherLog {
    fn state_mut(&mut self, sequence: u64) -> &mut u8 {
        let index = (sequence - 1) as usize;
        if index >= self.states.len() {
            self.states.resize(index + 1, 0);
        }
        &mut self.states[index]
    }
}

/// What the ledger concludes once the run is over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    pub confirmed: u64,
    pub nacked: u64,
    /// Confirmed and never delivered.
    pub lost: u64,
    /// Deliveries beyond the first of a message (redeliveries after a requeue).
    pub duplicates: u64,
    /// Delivered messages the broker never confirmed (nacked, or published as the run
    /// stopped); allowed, reported for completeness.
    pub received_unconfirmed: u64,
}

/// Confirms and receipts of every publisher of a run.
#[derive(Debug)]
pub struct Ledger {
    publishers: Vec<PublisherLog>,
    outstanding: u64,
}

impl Ledger {
    pub fn new(publishers: u32) -> Self {
        Self {
            publishers: (0..publishers).map(|_| PublisherLog::default()).collect(),
            outstanding: 0,
        }
    }

    /// Records a `basic.ack` (`acked`) or `basic.nack` from publisher `publisher`'s channel
    /// and returns how many messages it newly settled.
    pub fn settle(&mut self, publisher: u32, tag: u64, multiple: bool, acked: bool) -> u64 {
        let Some(log) = self
            .publishers
            .get_mut(publisher as usize)
            .filter(|_| tag > 0)
        else {
            return 0;
        };
        let flag = if acked { CONFIRMED } else { NACKED };
        let first = if multiple {
            log.first_unsettled.max(1)
        } else {
            tag
        };
        let mut settled = 0;
        for sequence in first..=tag {
            let state = log.state_mut(sequence);
            if *state & (CONFIRMED | NACKED) != 0 {
                continue;
            }
            *state |= flag;
            settled += 1;
            if acked && *state >> RECEIPT_SHIFT == 0 {
                self.outstanding += 1;
            }
        }
        let log = &mut self.publishers[publisher as usize];
        log.first_unsettled = log.first_unsettled.max(1);
        while log
            .states
            .get((log.first_unsettled - 1) as usize)
            .is_some_and(|state| state & (CONFIRMED | NACKED) != 0)
        {
            log.first_unsettled += 1;
        }
        settled
    }

    /// Records deliveries; fails on an id no publisher of this run can have sent.
    pub fn receive(&mut self, ids: &[MessageId]) -> anyhow::Result<()> {
        for id in ids {
            let Some(log) = self.publishers.get_mut(id.publisher as usize) else {
                bail!("received a message from unknown publisher {}", id.publisher);
            };
            if id.sequence == 0 {
                bail!("received sequence 0, which no publisher sends");
            }
            let state = log.state_mut(id.sequence);
            let receipts = *state >> RECEIPT_SHIFT;
            if receipts == 0 && *state & CONFIRMED != 0 {
                self.outstanding -= 1;
            }
            let receipts = receipts.saturating_add(1).min(RECEIPTS_MAX);
            *state = (*state & (CONFIRMED | NACKED)) | (receipts << RECEIPT_SHIFT);
        }
        Ok(())
    }

    /// Confirmed messages no consumer has received yet.
    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }

    pub fn verdict(&self) -> Verdict {
        let mut verdict = Verdict::default();
        for state in self.publishers.iter().flat_map(|log| &log.states) {
            let receipts = u64::from(state >> RECEIPT_SHIFT);
            verdict.duplicates += receipts.saturating_sub(1);
            if state & CONFIRMED != 0 {
                verdict.confirmed += 1;
                verdict.lost += u64::from(receipts == 0);
            } else if receipts > 0 {
                verdict.received_unconfirmed += 1;
            }
            verdict.nacked += u64::from(state & NACKED != 0);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(publisher: u32, sequence: u64) -> MessageId {
        MessageId {
            publisher,
            sequence,
        }
    }

    #[test]
    fn ids_round_trip_through_a_body() {
        let mut body = vec![0xAA; 20];
        id(7, 1 << 40).encode(&mut body);
        assert_eq!(&body[..4], &[0, 0, 0, 7]);
        assert_eq!(MessageId::decode(&body), Some(id(7, 1 << 40)));
        assert_eq!(body[12], 0xAA, "the filler after the id is untouched");
        assert_eq!(MessageId::decode(&body[..11]), None);
    }

    #[test]
    fn single_multiple_and_repeated_confirms_settle_each_message_once() {
        let mut ledger = Ledger::new(1);
        assert_eq!(ledger.settle(0, 2, false, true), 1);
        assert_eq!(ledger.settle(0, 4, true, true), 3, "tags 1, 3 and 4");
        assert_eq!(ledger.settle(0, 4, true, true), 0);
        assert_eq!(ledger.settle(0, 5, false, false), 1, "a nack settles too");
        assert_eq!(ledger.outstanding(), 4);
        let verdict = ledger.verdict();
        assert_eq!((verdict.confirmed, verdict.nacked, verdict.lost), (4, 1, 4));
    }

    #[test]
    fn receipts_clear_outstanding_and_count_duplicates() {
        let mut ledger = Ledger::new(2);
        ledger.receive(&[id(1, 1)]).unwrap();
        ledger.settle(1, 2, true, true);
        ledger.settle(0, 1, false, true);
        assert_eq!(ledger.outstanding(), 2, "1/1 arrived before its confirm");
        ledger.receive(&[id(1, 2), id(1, 2), id(1, 2)]).unwrap();
        assert_eq!(ledger.outstanding(), 1);
        ledger.receive(&[id(1, 3)]).unwrap();
        let verdict = ledger.verdict();
        assert_eq!(verdict.confirmed, 3);
        assert_eq!(verdict.lost, 1, "0/1 was never received");
        assert_eq!(verdict.duplicates, 2);
        assert_eq!(verdict.received_unconfirmed, 1, "1/3 was never confirmed");
    }

    #[test]
    fn foreign_ids_are_refused() {
        let mut ledger = Ledger::new(1);
        assert!(ledger.receive(&[id(1, 1)]).is_err());
        assert!(ledger.receive(&[id(0, 0)]).is_err());
        assert_eq!(ledger.settle(3, 1, false, true), 0);
        assert_eq!(ledger.settle(0, 0, false, true), 0, "tags start at 1");
    }
}
