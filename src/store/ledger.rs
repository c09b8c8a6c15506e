//! What the journal knows about its own contents: the current definitions (copied to the start
//! of every new segment) and where each live message's record is (so that a segment with no
//! live message can be deleted, and a sparse one compacted). Built by replay, then kept up to
//! date by the writer with every record it appends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use mqbridge_broker_api::{BindingSpec, Destination, ExchangeSpec, Message, QueueSpec};

use super::Record;

/// Where a live message's Enqueue record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub segment: u64,
    pub offset: u64,
    /// The whole record, header included.
    pub len: u32,
    pub delivered: bool,
}

/// How much of a segment is still needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentUse {
    pub live: u64,
    pub live_bytes: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub exchanges: BTreeMap<(String, String), ExchangeSpec>,
    pub queues: BTreeMap<u64, (String, QueueSpec)>,
    pub bindings: Vec<(String, BindingSpec)>,
    pub retained: BTreeMap<(String, String), Arc<Message>>,
    /// MQTT persistent sessions' own state: (vhost, client id) -> the adapter's encoding.
    pub sessions: BTreeMap<(String, String), Bytes>,
    /// Adapters' metadata: (vhost, scope, key) -> the adapter's encoding.
    pub metadata: BTreeMap<(String, String, String), Bytes>,
    /// Live messages by queue id, then message id.
    pub messages: HashMap<u64, BTreeMap<u64, Location>>,
    pub segments: BTreeMap<u64, SegmentUse>,
}

impl Ledger {
    /// Accounts for `record`, written at `offset` of `segment` and `len` octets long.
    pub fn apply(&mut self, record: &Record, segment: u64, offset: u64, len: u32) {
        self.segments.entry(segment).or_default().bytes += u64::from(len);
        match record {
            Record::DeclareExchange { vhost, spec } => {
                self.exchanges
                    .insert((vhost.clone(), spec.name.clone()), spec.clone());
            }
            Record::DeleteExchange { vhost, name } => {
                self.exchanges.remove(&(vhost.clone(), name.clone()));
                let gone = Destination::Exchange(name.clone());
                self.bindings
                    .retain(|(v, b)| v != vhost || (b.source != *name && b.destination != gone));
            }
            Record::DeclareQueue { vhost, id, spec } => {
                self.queues.insert(*id, (vhost.clone(), spec.clone()));
                self.messages.entry(*id).or_default();
            }
            Record::DeleteQueue { id } => self.delete_queue(*id),
            Record::Bind { vhost, spec } => {
                if !self.bindings.iter().any(|(v, b)| v == vhost && b == spec) {
                    self.bindings.push((vhost.clone(), spec.clone()));
                }
            }
            Record::Unbind { vhost, spec } => {
                self.bindings.retain(|(v, b)| v != vhost || b != spec);
            }
            Record::Enqueue {
                queue,
                id,
                delivered,
                ..
            } => {
                let location = Location {
                    segment,
                    offset,
                    len,
                    delivered: *delivered,
                };
                self.enqueue(*queue, *id, location);
            }
            Record::Remove { queue, id } => self.remove(*queue, *id),
            Record::Delivered { queue, id } => {
                let messages = self.messages.get_mut(queue);
                if let Some(location) = messages.and_then(|m| m.get_mut(id)) {
                    location.delivered = true;
                }
            }
            Record::Batch { .. } => {}
            Record::Session { .. } | Record::Retain { .. } => self.keep_mqtt_state(record),
            Record::Metadata {
                vhost,
                scope,
                key,
                value,
            } => {
                let key = (vhost.clone(), scope.clone(), key.clone());
                match value {
                    Some(value) => self.metadata.insert(key, value.clone()),
                    None => self.metadata.remove(&key),
                };
            }
            Record::Snapshot => {
                self.exchanges.clear();
                self.queues.clear();
                self.bindings.clear();
                self.retained.clear();
                self.sessions.clear();
                self.metadata.clear();
            }
        }
    }

    /// Retained messages and session states: the latest per key is what counts.
    fn keep_mqtt_state(&mut self, record: &Record) {
        match record {
            Record::Session {
                vhost,
                client_id,
                state,
            } => {
                let key = (vhost.clone(), client_id.clone());
                match state {
                    Some(state) => self.sessions.insert(key, state.clone()),
                    None => self.sessions.remove(&key),
                };
            }
            Record::Retain {
                vhost,
                topic,
                message,
            } => {
                let key = (vhost.clone(), topic.clone());
                match message {
                    Some(message) => self.retained.insert(key, Arc::clone(message)),
                    None => self.retained.remove(&key),
                };
            }
            _ => {}
        }
    }

    fn enqueue(&mut self, queue: u64, id: u64, location: Location) {
        // A message for a queue that is gone (deleted meanwhile) is not kept.
        let Some(messages) = self.messages.get_mut(&queue) else {
            return;
        };
        if let Some(old) = messages.insert(id, location) {
            release(&mut self.segments, old);
        }
        let segment = self.segments.entry(location.segment).or_default();
        segment.live += 1;
        segment.live_bytes += u64::from(location.len);
    }

    fn remove(&mut self, queue: u64, id: u64) {
        let removed = self.messages.get_mut(&queue).and_then(|m| m.remove(&id));
        if let Some(old) = removed {
            release(&mut self.segments, old);
        }
    }

    fn delete_queue(&mut self, id: u64) {
        if let Some((vhost, spec)) = self.queues.remove(&id) {
            let gone = Destination::Queue(spec.name);
            self.bindings
                .retain(|(v, b)| *v != vhost || b.destination != gone);
        }
        for (_, location) in self.messages.remove(&id).unwrap_or_default() {
            release(&mut self.segments, location);
        }
    }

    /// Every definition, as the records that recreate it after a Snapshot.
    pub fn definitions(&self) -> Vec<Record> {
        let mut records = vec![Record::Snapshot];
        for ((vhost, _), spec) in &self.exchanges {
            records.push(Record::DeclareExchange {
                vhost: vhost.clone(),
                spec: spec.clone(),
            });
        }
        for (id, (vhost, spec)) in &self.queues {
            records.push(Record::DeclareQueue {
                vhost: vhost.clone(),
                id: *id,
                spec: spec.clone(),
            });
        }
        for (vhost, spec) in &self.bindings {
            records.push(Record::Bind {
                vhost: vhost.clone(),
                spec: spec.clone(),
            });
        }
        for ((vhost, topic), message) in &self.retained {
            records.push(Record::Retain {
                vhost: vhost.clone(),
                topic: topic.clone(),
                message: Some(Arc::clone(message)),
            });
        }
        for ((vhost, client_id), state) in &self.sessions {
            records.push(Record::Session {
                vhost: vhost.clone(),
                client_id: client_id.clone(),
                state: Some(state.clone()),
            });
        }
        for ((vhost, scope, key), value) in &self.metadata {
            records.push(Record::Metadata {
                vhost: vhost.clone(),
                scope: scope.clone(),
                key: key.clone(),
                value: Some(value.clone()),
            });
        }
        records
    }

    /// The live messages whose records are in `segment`, in id order per queue.
    pub fn live_in(&self, segment: u64) -> Vec<(u64, u64, Location)> {
        let mut live = Vec::new();
        for (queue, messages) in &self.messages {
            for (id, location) in messages {
                if location.segment == segment {
                    live.push((*queue, *id, *location));
                }
            }
        }
        live.sort_unstable_by_key(|(queue, id, _)| (*queue, *id));
        live
    }
}

fn release(segments: &mut BTreeMap<u64, SegmentUse>, location: Location) {
    if let Some(segment) = segments.get_mut(&location.segment) {
        segment.live = segment.live.saturating_sub(1);
        segment.live_bytes = segment.live_bytes.saturating_sub(u64::from(location.len));
    }
}
