//! Session takeover [MQTT-3.1.4-3]: which connection holds each client id's session, and how a
//! new connection with that client id has the old one leave and waits until it has.
//!
//! A connection with a task is reached at once: its task waits on a oneshot whose sender is in
//! the table. A parked connection has no task and keeps no channel, which would cost every idle
//! connection an allocation: the lot wakes it ([`MqttShared::wake_parked`]), and it learns of
//! the takeover as it is admitted to the lot or takes a task again ([`MqttShared::claim`]).
//! Either way the new connection leaves a handoff, a `oneshot::Sender<()>` the old one fires
//! once it has released the session.
//!
//! Everything is under one lock, so that a connection parking and one taking its session over
//! see each other's step whichever comes first.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError};

use mqbridge_broker_api::ConnectionId;
use tokio::sync::oneshot;

use super::MqttShared;

/// The live sessions of one listener.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// The connection holding each client id's session.
    holders: HashMap<Arc<str>, ConnectionId>,
    /// The wake-up of each holder that has a task: parked ones have none, and no entry.
    wakes: HashMap<ConnectionId, oneshot::Sender<()>>,
    /// Takeovers not yet seen to, by the id of the connection taken over.
    handoffs: HashMap<ConnectionId, oneshot::Sender<()>>,
}

impl MqttShared {
    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        // Plain maps, each change made whole under the lock.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes connection `id` the holder of `client_id`'s session; returns what wakes its task
    /// when it is taken over in turn, and, if another connection held the session, what
    /// completes once that one has released it.
    pub(super) fn hold_session(
        &self,
        client_id: &Arc<str>,
        id: ConnectionId,
    ) -> (oneshot::Receiver<()>, Option<oneshot::Receiver<()>>) {
        let (wake, woken) = oneshot::channel();
        let (previous, wake_previous, released) = {
            let mut sessions = self.sessions();
            sessions.wakes.insert(id, wake);
            let Some(previous) = sessions.holders.insert(Arc::clone(client_id), id) else {
                return (woken, None);
            };
            let (done, released) = oneshot::channel();
            sessions.handoffs.insert(previous, done);
            (previous, sessions.wakes.remove(&previous), released)
        };
        match wake_previous {
            Some(wake) => {
                let _ = wake.send(());
            }
            None => self.wake_parked(previous),
        }
        (woken, Some(released))
    }

    /// Whether a connection with this client id is live.
    pub(super) fn has_session(&self, client_id: &str) -> bool {
        self.sessions().holders.contains_key(client_id)
    }

    /// Connection `id` leaves its task for the lot: nothing can wake that task any more.
    /// `false` when its session was taken over meanwhile.
    pub(super) fn release_wake(&self, client_id: &str, id: ConnectionId) -> bool {
        let mut sessions = self.sessions();
        sessions.wakes.remove(&id);
        sessions.holders.get(client_id) == Some(&id)
    }

    /// Whether connection `id` was asked to leave and has not yet seen to it.
    pub(super) fn handed_over(&self, id: ConnectionId) -> bool {
        self.sessions().handoffs.contains_key(&id)
    }

    /// Connection `id` has a task again: what wakes it when its session is taken over, or,
    /// if that happened while it was parked, the handoff to fire once it has left.
    pub(super) fn claim(
        &self,
        client_id: &str,
        id: ConnectionId,
    ) -> Result<oneshot::Receiver<()>, Option<oneshot::Sender<()>>> {
        let mut sessions = self.sessions();
        if sessions.holders.get(client_id) != Some(&id) {
            return Err(sessions.handoffs.remove(&id));
        }
        let (wake, woken) = oneshot::channel();
        sessions.wakes.insert(id, wake);
        Ok(woken)
    }

    /// The handoff left for connection `id`, which was woken because its session was taken over.
    pub(super) fn take_handoff(&self, id: ConnectionId) -> Option<oneshot::Sender<()>> {
        self.sessions().handoffs.remove(&id)
    }

    /// Connection `id` has ended: it holds no session, and the handoff left for it, if any, is
    /// returned to be fired.
    pub(super) fn let_go(&self, client_id: &str, id: ConnectionId) -> Option<oneshot::Sender<()>> {
        let mut sessions = self.sessions();
        if sessions.holders.get(client_id) == Some(&id) {
            sessions.holders.remove(client_id);
        }
        sessions.wakes.remove(&id);
        sessions.handoffs.remove(&id)
    }
}
