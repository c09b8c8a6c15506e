//! Persistent sessions between connections (MQTT 4.1 "Session State"). A session's queue and
//! bindings live in the core and keep its subscriptions and the messages that arrive while it
//! is away; what is left lives here, in the listener's shared state, keyed by client id: the
//! exchanges in flight (to finish with the original packet ids), its shared subscriptions, and
//! the fact that the session exists at all (a client that only publishes has no queue).
//!
//! A suspended session ends when its client resumes it, starts clean, or stays away past its
//! Session Expiry Interval (a timer; the core expires the queue on the same interval).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use mqbridge_broker_api::{ConnectionId, Settlement, VirtualHost};

use super::{Connection, MqttShared};
use crate::codec::{Packet, QoS, Subscription};
use crate::session::{Resend, Unfinished};

/// A persistent session with no connection.
pub(crate) struct Suspended {
    /// The connection that suspended it: an expiry timer set then must not end a later
    /// suspension of the same client id.
    pub(super) owner: ConnectionId,
    pub(super) unfinished: Unfinished,
    pub(super) shares: Vec<ShareOptions>,
    pub(super) vhost: Arc<dyn VirtualHost>,
    /// Session Expiry Interval in seconds; `None` never expires.
    pub(super) expiry: Option<u32>,
}

impl std::fmt::Debug for Suspended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suspended")
            .field("owner", &self.owner)
            .field("unfinished", &self.unfinished)
            .field("shares", &self.shares.len())
            .finish_non_exhaustive()
    }
}

/// A shared subscription as the session holds it while away.
pub(super) struct ShareOptions {
    pub(super) filter: String,
    pub(super) qos: QoS,
    pub(super) identifier: Option<u32>,
}

/// Who holds each shared subscription's queue: live and suspended sessions alike, so that the
/// group's messages wait for members that are away, and the queue goes with its last member.
#[derive(Debug, Default)]
pub(crate) struct ShareMembers(HashMap<String, HashSet<String>>);

impl MqttShared {
    pub(super) fn join_share(&self, queue: &str, client_id: &str) {
        let mut members = self
            .share_members
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let group = members.0.entry(queue.to_owned()).or_default();
        group.insert(client_id.to_owned());
    }

    /// Removes a member; true if it was the last, and the queue should go.
    fn leave_share(&self, queue: &str, client_id: &str) -> bool {
        let mut members = self
            .share_members
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(group) = members.0.get_mut(queue) else {
            return false;
        };
        group.remove(client_id);
        let last = group.is_empty();
        if last {
            members.0.remove(queue);
        }
        last
    }

    /// Leaves a shared subscription's queue, deleting it after its last member. A member
    /// joining meanwhile consumes from it, and `if_unused` then keeps the queue.
    pub(super) async fn leave_share_queue(
        &self,
        vhost: &dyn VirtualHost,
        queue: &str,
        client_id: &str,
        connection: ConnectionId,
    ) {
        if self.leave_share(queue, client_id) {
            let _ = vhost.delete_queue(queue, true, false, connection).await;
        }
    }

    fn take_suspended(&self, client_id: &str) -> Option<Suspended> {
        let mut suspended = self
            .suspended
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        suspended.remove(client_id)
    }

    /// Ends a suspended session for good: it leaves its shared subscriptions.
    async fn discard(&self, client_id: &str, session: Suspended) {
        for share in &session.shares {
            let Some(queue) = super::shared::queue_name(&share.filter) else {
                continue;
            };
            let vhost = session.vhost.as_ref();
            self.leave_share_queue(vhost, &queue, client_id, session.owner)
                .await;
        }
    }
}

impl Connection {
    /// Keeps what a persistent session needs beyond its queue until a connection resumes it.
    /// The deliveries its unfinished PUBLISHes came from are the session's now and leave their
    /// queues; deliveries never written go back to theirs.
    pub(super) async fn suspend(&mut self, opened: &super::Opened) {
        let suspension = self.session.suspend();
        opened.settle(suspension.owned, Settlement::Ack).await;
        opened.settle(suspension.unsent, Settlement::Requeue).await;
        let shares = opened
            .shares
            .iter()
            .map(|(filter, share)| ShareOptions {
                filter: filter.clone(),
                qos: share.qos,
                identifier: share.identifier,
            })
            .collect();
        let expiry = (self.v5() && self.session_expiry != super::SESSION_EXPIRY_NEVER)
            .then_some(self.session_expiry);
        let session = Suspended {
            owner: self.id,
            unfinished: suspension.unfinished,
            shares,
            vhost: Arc::clone(&opened.vhost),
            expiry,
        };
        // Kept in the store too, so that a restart does not lose the exchanges in flight.
        let state = super::kept::encode(&session);
        opened.vhost.set_session_state(&self.client_id, Some(state));
        let previous = {
            let mut suspended = self
                .shared
                .suspended
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            suspended.insert(self.client_id.to_string(), session)
        };
        if let Some(previous) = previous {
            self.shared.discard(&self.client_id, previous).await;
        }
        if let Some(expiry) = expiry {
            arm_expiry(&self.shared, &self.client_id, self.id, expiry);
        }
    }

    /// The suspended session of this client id, if any, taken out of the shared state. A
    /// clean start discards it [MQTT-3.1.2-4].
    pub(super) async fn take_suspended(&mut self, clean_start: bool) -> Option<Suspended> {
        let session = self.shared.take_suspended(&self.client_id)?;
        // Resumed or discarded, it is no longer kept apart from a connection.
        session.vhost.set_session_state(&self.client_id, None);
        if !clean_start {
            return Some(session);
        }
        self.shared.discard(&self.client_id, session).await;
        None
    }

    /// Resumes a suspended session after CONNACK: rejoins its shared subscriptions and sends
    /// again every unfinished PUBLISH (DUP, original packet id) and PUBREL, in order
    /// [MQTT-4.4.0-1].
    pub(super) async fn resume(&mut self, session: Suspended) {
        for share in session.shares {
            let request = Subscription {
                filter: share.filter,
                qos: share.qos,
                no_local: false,
                retain_as_published: false,
                retain_handling: 2,
            };
            self.subscribe_shared(&request, share.identifier).await;
        }
        for resend in self.session.resume(session.unfinished) {
            match resend {
                Resend::Publish(publish) => self.send(&Packet::Publish(*publish)),
                Resend::Release(id) => self.send(&Packet::PubRel(super::inbound::ack(id, 0))),
            }
        }
    }
}

/// Ends a suspended session whose Session Expiry Interval passed, unless it was resumed (and
/// perhaps suspended again by a later connection) meanwhile.
async fn expire(shared: &MqttShared, client_id: &str, owner: ConnectionId) {
    let session = {
        let mut suspended = shared
            .suspended
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match suspended.get(client_id) {
            Some(session) if session.owner == owner => suspended.remove(client_id),
            _ => None,
        }
    };
    if let Some(session) = session {
        session.vhost.set_session_state(client_id, None);
        shared.discard(client_id, session).await;
    }
}

/// Ends the suspended session of `client_id` after `secs`, unless `owner`'s suspension was
/// resumed meanwhile.
pub(super) fn arm_expiry(
    shared: &Arc<MqttShared>,
    client_id: &str,
    owner: ConnectionId,
    secs: u32,
) {
    let (shared, client_id) = (Arc::clone(shared), client_id.to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(secs.into())).await;
        expire(&shared, &client_id, owner).await;
    });
}
