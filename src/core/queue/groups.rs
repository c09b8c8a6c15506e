//! Message groups (queue argument `x-message-groups`): the messages of one group go to one
//! owner at a time, in order. An owner (a consumer, or a `get` caller such as one SQS receive)
//! that takes a message of a group *holds* the group until it has settled every message of the
//! group it took; meanwhile nobody else gets the group's messages. That is SQS FIFO's rule (one
//! in-flight batch per MessageGroupId) and ActiveMQ's message groups for as long as a consumer
//! holds messages. A message's group is its [`MESSAGE_GROUP_HEADER`]; messages without one are
//! in no group and go to anyone.
//!
//! Messages of a held group that another owner meets at the head of the queue are set aside
//! (*parked*) for their holder, so no owner scans past the same blocked message twice; when the
//! holder lets the group go, they return to their places by enqueue order.
//!
//! [`MESSAGE_GROUP_HEADER`]: mqbridge_broker_api::MESSAGE_GROUP_HEADER

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use mqbridge_broker_api::ConsumerId;

use super::ready::Entry;

#[derive(Debug)]
struct Hold {
    owner: ConsumerId,
    /// Messages of the group the owner has taken and not settled.
    messages: u32,
}

#[derive(Debug, Default)]
pub struct Groups {
    held: HashMap<Arc<str>, Hold>,
    /// Per holder, the parked messages of the groups it holds, by enqueue order.
    parked: HashMap<ConsumerId, VecDeque<Entry>>,
}

impl Groups {
    /// Who holds the group of `entry`, if it is in a held group.
    pub fn holder(&self, entry: &Entry) -> Option<ConsumerId> {
        let group = entry.group.as_deref()?;
        self.held.get(group).map(|h| h.owner)
    }

    /// `owner` took `entry` and will settle it later.
    pub fn take(&mut self, entry: &Entry, owner: ConsumerId) {
        let Some(group) = &entry.group else { return };
        let hold = self
            .held
            .entry(Arc::clone(group))
            .or_insert(Hold { owner, messages: 0 });
        debug_assert_eq!(hold.owner, owner, "a held group was given to another owner");
        hold.messages += 1;
    }

    /// `owner` settled `entry`. If that was the last message of its group `owner` held, the
    /// group is free again and its parked messages are returned, to go back among the ready.
    pub fn settle(&mut self, entry: &Entry, owner: ConsumerId) -> Vec<Entry> {
        let Some(group) = entry.group.as_deref() else {
            return Vec::new();
        };
        let Some(hold) = self.held.get_mut(group).filter(|h| h.owner == owner) else {
            return Vec::new();
        };
        hold.messages = hold.messages.saturating_sub(1);
        if hold.messages > 0 {
            return Vec::new();
        }
        self.held.remove(group);
        let Some(parked) = self.parked.get_mut(&owner) else {
            return Vec::new();
        };
        let (freed, kept): (VecDeque<Entry>, VecDeque<Entry>) = parked
            .drain(..)
            .partition(|e| e.group.as_deref() == Some(group));
        *parked = kept;
        if parked.is_empty() {
            self.parked.remove(&owner);
        }
        freed.into()
    }

    /// Sets `entry` aside for `holder`, keeping enqueue order.
    pub fn park(&mut self, holder: ConsumerId, entry: Entry) {
        let list = self.parked.entry(holder).or_default();
        let at = list.partition_point(|e| e.seq < entry.seq);
        list.insert(at, entry);
    }

    /// The enqueue number of the oldest message parked for `owner`.
    pub fn first_parked(&self, owner: ConsumerId) -> Option<u64> {
        self.parked.get(&owner)?.front().map(|e| e.seq)
    }

    pub fn pop_parked(&mut self, owner: ConsumerId) -> Option<Entry> {
        let list = self.parked.get_mut(&owner)?;
        let entry = list.pop_front();
        if list.is_empty() {
            self.parked.remove(&owner);
        }
        entry
    }

    /// Every parked message (purge, deletion). Holds are kept: they belong to messages still
    /// unsettled.
    pub fn drain_parked(&mut self) -> impl Iterator<Item = Entry> + '_ {
        self.parked.drain().flat_map(|(_, list)| list)
    }
}
