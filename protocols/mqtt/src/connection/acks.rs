//! Acknowledging inbound QoS 1 and 2 PUBLISHes: PUBACK and PUBREC tell the client the broker
//! has the message, so they wait until every queue it went to has it, and a durable queue has
//! it only once the journal has synced it. The publish path does not wait: each PUBLISH gets
//! a ticket on the connection's confirm sink, and the connection task sends the
//! acknowledgements as confirms come back, in the order the PUBLISHes arrived [MQTT-4.6.0-2].

use std::collections::VecDeque;
use std::sync::Arc;

use mqbridge_broker_api::{Confirm, ConfirmSink};

use super::Connection;
use super::inbound::ack;
use crate::codec::{Packet, PacketId, QoS, reason};

/// The acknowledgements owed to the client, oldest first.
#[derive(Debug, Default)]
pub(super) struct InboundAcks {
    /// Created with the first QoS 1 or 2 PUBLISH: a client that only sends QoS 0 needs none.
    sink: Option<Arc<ConfirmSink>>,
    owed: VecDeque<Owed>,
    next_id: u64,
    drained: Vec<(u64, bool)>,
}

#[derive(Debug)]
struct Owed {
    id: u64,
    qos: QoS,
    packet_id: PacketId,
    /// Known once the queues answered: the reason code to send.
    code: Option<u8>,
}

impl InboundAcks {
    /// A ticket for a PUBLISH going to `queues` queues (at least one); its acknowledgement is
    /// sent once every queue has confirmed.
    pub fn expect(&mut self, qos: QoS, packet_id: PacketId, queues: usize) -> Option<Confirm> {
        let sink = self.sink.get_or_insert_with(ConfirmSink::new);
        self.next_id += 1;
        let id = self.next_id;
        self.owed.push_back(Owed {
            id,
            qos,
            packet_id,
            code: None,
        });
        sink.tickets(id, queues)
    }

    /// An acknowledgement with nothing to wait for, sent after those owed before it.
    pub fn known(&mut self, qos: QoS, packet_id: PacketId, code: u8) {
        self.next_id += 1;
        self.owed.push_back(Owed {
            id: self.next_id,
            qos,
            packet_id,
            code: Some(code),
        });
    }

    /// Whether confirms are still awaited.
    pub fn waiting(&self) -> bool {
        self.owed.iter().any(|owed| owed.code.is_none())
    }

    /// Resolves when a confirm may have arrived.
    pub async fn ready(&self) {
        match &self.sink {
            Some(sink) => sink.ready().await,
            None => std::future::pending().await,
        }
    }

    /// The acknowledgements that can go now, in order: (QoS, packet id, reason code).
    fn take_ready(&mut self, v5: bool, out: &mut Vec<(QoS, PacketId, u8)>) {
        if let Some(sink) = &self.sink {
            sink.drain(&mut self.drained);
        }
        for (id, accepted) in self.drained.drain(..) {
            // Owed in id order (ids are handed out increasing), so a search, not a scan.
            let found = self.owed.binary_search_by_key(&id, |o| o.id).ok();
            if let Some(owed) = found.and_then(|at| self.owed.get_mut(at)) {
                // A queue that refused the message (a full reject-publish queue): v5 can say
                // so; 3.x has no negative acknowledgement.
                owed.code = Some(match accepted || !v5 {
                    true => reason::SUCCESS,
                    false => reason::QUOTA_EXCEEDED,
                });
            }
        }
        while let Some(code) = self.owed.front().and_then(|o| o.code) {
            if let Some(owed) = self.owed.pop_front() {
                out.push((owed.qos, owed.packet_id, code));
            }
        }
    }
}

impl Connection {
    /// Sends every acknowledgement that is due.
    pub(super) fn send_acks(&mut self) {
        let mut due = Vec::new();
        let v5 = self.v5();
        self.acks.take_ready(v5, &mut due);
        for (qos, id, code) in due {
            match qos {
                QoS::ExactlyOnce => self.send(&Packet::PubRec(ack(id, code))),
                _ => self.send(&Packet::PubAck(ack(id, code))),
            }
        }
    }
}
