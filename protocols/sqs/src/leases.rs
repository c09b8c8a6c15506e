//! Visibility leases: an SQS receive is an unsettled core delivery with a deadline.
//!
//! A received message stays owned, in the core, by the consumer id of the ReceiveMessage that
//! took it. The lease records that owner, the delivery tag and a random nonce; at the deadline
//! the expiry task settles the delivery `Requeue` (the message becomes visible again), and
//! DeleteMessage settles it `Ack`. The receipt handle encodes queue, owner, tag and nonce; it is
//! valid only while its lease is, so an old handle stops working once the lease ends.
//!
//! Invariant: every lease is for a delivery the core still holds unsettled for `owner`, and
//! each delivery has at most one lease. The table is a `std::sync::Mutex`, never held across an
//! `.await`; settling happens after the lock is released.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use mqbridge_broker_api::{ConsumerId, QueueHandle, Settlement};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// A delivery's identity: queue name and the core's delivery tag.
pub type LeaseKey = (String, u64);

/// How many ended leases we remember, so that their handles are refused as stale rather than
/// taken for deleted messages. Bounded, oldest forgotten first.
const ENDED_REMEMBERED_MAX: usize = 100_000;

/// One received, not yet deleted message.
#[derive(Debug, Clone)]
pub struct Lease {
    pub queue: Arc<dyn QueueHandle>,
    pub owner: ConsumerId,
    pub nonce: u64,
    pub deadline: Instant,
    pub message_id: String,
}

/// What a receipt handle names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub queue: String,
    pub owner: u64,
    pub tag: u64,
    pub nonce: u64,
}

impl Receipt {
    /// Opaque to clients; unforgeable in practice because the nonce is random.
    pub fn encode(&self) -> String {
        let plain = format!(
            "{:x}:{:x}:{:x}:{}",
            self.nonce, self.owner, self.tag, self.queue
        );
        BASE64.encode(plain)
    }

    pub fn decode(handle: &str) -> Option<Receipt> {
        let plain = String::from_utf8(BASE64.decode(handle.trim()).ok()?).ok()?;
        let mut parts = plain.splitn(4, ':');
        let mut number = || u64::from_str_radix(parts.next()?, 16).ok();
        let (nonce, owner, tag) = (number()?, number()?, number()?);
        let queue = parts.next()?.to_owned();
        Some(Receipt {
            queue,
            owner,
            tag,
            nonce,
        })
    }
}

/// Why a receipt does not name a live lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseMiss {
    /// The lease ended by timeout (the message may have been received again since).
    Ended,
    /// No record: deleted already, or never issued.
    Unknown,
}

#[derive(Debug, Default)]
struct LeaseTable {
    active: HashMap<LeaseKey, Lease>,
    deadlines: BTreeSet<(Instant, LeaseKey)>,
    ended: HashSet<LeaseKey>,
    ended_order: VecDeque<LeaseKey>,
}

/// Every lease of the adapter, and the wake-up of the task that ends them.
#[derive(Debug, Default)]
pub struct Leases {
    table: Mutex<LeaseTable>,
    changed: Notify,
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, LeaseTable> {
        // Each method leaves the table consistent before any step that could panic.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a lease for delivery `tag` of `queue`; returns its receipt handle.
    pub fn grant(&self, queue_name: &str, tag: u64, lease: Lease) -> String {
        let receipt = Receipt {
            queue: queue_name.to_owned(),
            owner: lease.owner.0,
            tag,
            nonce: lease.nonce,
        };
        let key = (queue_name.to_owned(), tag);
        let mut table = self.lock();
        let deadline = (lease.deadline, key.clone());
        let earliest = table
            .deadlines
            .first()
            .is_none_or(|first| deadline < *first);
        table.deadlines.insert(deadline);
        table.active.insert(key, lease);
        drop(table);
        self.wake_if(earliest);
        receipt.encode()
    }

    /// Wakes the expiry task when a deadline became the earliest. A later one needs no wake-up:
    /// the task sleeps until the earliest and looks again then. (Waking it for every lease cost
    /// a task switch and a timer per received message.)
    fn wake_if(&self, earliest: bool) {
        if earliest {
            self.changed.notify_one();
        }
    }

    /// The live lease a receipt names, if its owner and nonce match.
    fn find<'a>(table: &'a LeaseTable, receipt: &Receipt) -> Result<&'a Lease, LeaseMiss> {
        let key = (receipt.queue.clone(), receipt.tag);
        match table.active.get(&key) {
            Some(lease) if lease.owner.0 == receipt.owner && lease.nonce == receipt.nonce => {
                Ok(lease)
            }
            Some(_) => Err(LeaseMiss::Ended),
            None if table.ended.contains(&key) => Err(LeaseMiss::Ended),
            None => Err(LeaseMiss::Unknown),
        }
    }

    /// Ends the lease for a delete; the caller settles the delivery `Ack`.
    pub fn take(&self, receipt: &Receipt) -> Result<Lease, LeaseMiss> {
        let mut table = self.lock();
        let deadline = Self::find(&table, receipt)?.deadline;
        let key = (receipt.queue.clone(), receipt.tag);
        table.deadlines.remove(&(deadline, key.clone()));
        table.active.remove(&key).ok_or(LeaseMiss::Unknown)
    }

    /// Ends the lease as its deadline would (ChangeMessageVisibility 0): the handle stops
    /// working. The caller settles the delivery `Requeue`.
    pub fn end(&self, receipt: &Receipt) -> Result<Lease, LeaseMiss> {
        let lease = self.take(receipt)?;
        remember_ended(&mut self.lock(), (receipt.queue.clone(), receipt.tag));
        Ok(lease)
    }

    /// Moves a lease's deadline to `timeout` from now (ChangeMessageVisibility).
    pub fn extend(&self, receipt: &Receipt, timeout: Duration) -> Result<(), LeaseMiss> {
        let mut table = self.lock();
        let old = Self::find(&table, receipt)?.deadline;
        let key = (receipt.queue.clone(), receipt.tag);
        let deadline = Instant::now() + timeout;
        table.deadlines.remove(&(old, key.clone()));
        let entry = (deadline, key.clone());
        let earliest = table.deadlines.first().is_none_or(|first| entry < *first);
        table.deadlines.insert(entry);
        if let Some(lease) = table.active.get_mut(&key) {
            lease.deadline = deadline;
        }
        drop(table);
        self.wake_if(earliest);
        Ok(())
    }

    /// Leases held on `queue` right now (ApproximateNumberOfMessagesNotVisible).
    pub fn count(&self, queue: &str) -> usize {
        self.lock()
            .active
            .keys()
            .filter(|(q, _)| q == queue)
            .count()
    }

    /// Ends every lease of `queue` (PurgeQueue deletes in-flight messages too); the caller
    /// settles them `Ack`.
    pub fn take_queue(&self, queue: &str) -> Vec<(u64, Lease)> {
        let mut table = self.lock();
        let keys: Vec<LeaseKey> = table
            .active
            .keys()
            .filter(|(q, _)| q == queue)
            .cloned()
            .collect();
        table.deadlines.retain(|(_, (q, _))| q != queue);
        keys.into_iter()
            .filter_map(|key| Some((key.1, table.active.remove(&key)?)))
            .collect()
    }

    /// Forgets every lease of a deleted queue: the core dropped its deliveries with it.
    pub fn forget_queue(&self, queue: &str) {
        let mut table = self.lock();
        table.active.retain(|(q, _), _| q != queue);
        table.deadlines.retain(|(_, (q, _))| q != queue);
    }

    /// Removes and returns the leases due at `now`, remembering them as ended.
    fn expire(&self, now: Instant) -> Vec<(LeaseKey, Lease)> {
        let mut table = self.lock();
        let mut due = Vec::new();
        while let Some((deadline, key)) = table.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            table.deadlines.pop_first();
            if let Some(lease) = table.active.remove(&key) {
                remember_ended(&mut table, key.clone());
                due.push((key, lease));
            }
        }
        due
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.lock().deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Runs until shutdown: ends leases at their deadlines. Its own task, one per adapter.
    pub async fn run_expiry(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        /// How long to sleep when no lease is held; any new lease wakes the task sooner.
        const IDLE: Duration = Duration::from_secs(3600);
        loop {
            let next = self
                .next_deadline()
                .unwrap_or_else(|| Instant::now() + IDLE);
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = self.changed.notified() => continue,
                _ = shutdown.changed() => return,
            }
            for ((_, tag), lease) in self.expire(Instant::now()) {
                lease
                    .queue
                    .settle(lease.owner, vec![tag], Settlement::Requeue)
                    .await;
            }
        }
    }
}

fn remember_ended(table: &mut LeaseTable, key: LeaseKey) {
    if table.ended.insert(key.clone()) {
        table.ended_order.push_back(key);
    }
    while table.ended_order.len() > ENDED_REMEMBERED_MAX {
        if let Some(old) = table.ended_order.pop_front() {
            table.ended.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_handles_round_trip_and_reject_garbage() {
        let receipt = Receipt {
            queue: "my-queue".into(),
            owner: 7,
            tag: 99,
            nonce: 0xdead_beef,
        };
        assert_eq!(Receipt::decode(&receipt.encode()), Some(receipt));
        assert_eq!(Receipt::decode("not a handle"), None);
        assert_eq!(Receipt::decode(""), None);
    }
}
