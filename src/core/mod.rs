//! The broker core: users, virtual hosts, the memory alarm. It implements the
//! `mqbridge_broker_api` traits and knows no wire protocol.

pub mod inspect;
pub mod memory;
mod queue;
mod vhost;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use mqbridge_broker_api::{Broker, BrokerError, User, VirtualHost};
use tokio::sync::watch;

use self::memory::MemoryGauge;
use self::vhost::VHost;
use crate::store::{Recovered, Store};

/// The vhost every broker has.
pub const DEFAULT_VHOST: &str = "/";

/// A user as configured.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub name: String,
    pub password: String,
    /// May connect only from a loopback address (RabbitMQ's rule for `guest`).
    pub loopback_only: bool,
}

#[derive(Debug)]
pub struct Core {
    users: HashMap<String, UserRecord>,
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    gauge: Arc<MemoryGauge>,
}

impl Core {
    /// The core with the definitions and messages the store recovered.
    pub fn new(
        users: Vec<UserRecord>,
        gauge: Arc<MemoryGauge>,
        store: Arc<dyn Store>,
        recovered: Recovered,
    ) -> Arc<Self> {
        let default = VHost::new(DEFAULT_VHOST, Arc::clone(&gauge), store);
        restore(&default, recovered);
        Arc::new(Core {
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            vhosts: RwLock::new(HashMap::from([(DEFAULT_VHOST.to_owned(), default)])),
            gauge,
        })
    }
}

impl Broker for Core {
    fn authenticate(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<User, BrokerError> {
        let refused = || BrokerError::AccessRefused(format!("login refused for user '{username}'"));
        let user = self.users.get(username).ok_or_else(refused)?;
        if !constant_time_eq(user.password.as_bytes(), password.as_bytes()) {
            return Err(refused());
        }
        if user.loopback_only && !peer.is_loopback() {
            return Err(BrokerError::AccessRefused(format!(
                "user '{username}' can only connect via localhost"
            )));
        }
        Ok(User {
            name: user.name.clone(),
        })
    }

    fn vhost(&self, name: &str, _user: &User) -> Result<Arc<dyn VirtualHost>, BrokerError> {
        let vhosts = self.vhosts.read().unwrap_or_else(PoisonError::into_inner);
        match vhosts.get(name) {
            Some(vhost) => Ok(Arc::clone(vhost) as Arc<dyn VirtualHost>),
            None => Err(BrokerError::NotAllowed(format!("vhost '{name}' not found"))),
        }
    }

    fn publish_blocked(&self) -> watch::Receiver<bool> {
        self.gauge.subscribe()
    }
}

/// Puts back what the store recovered. Only the default vhost exists so far; anything stored
/// for another is reported and left in the store.
fn restore(vhost: &VHost, recovered: Recovered) {
    let mine = |name: &str| {
        let mine = name == DEFAULT_VHOST;
        if !mine {
            tracing::warn!(
                vhost = name,
                "stored definitions for an unknown vhost ignored"
            );
        }
        mine
    };
    let exchanges = recovered.exchanges.into_iter().filter(|(v, _)| mine(v));
    let queues = recovered.queues.into_iter().filter(|q| mine(&q.vhost));
    let bindings = recovered.bindings.into_iter().filter(|(v, _)| mine(v));
    let retained = recovered.retained.into_iter().filter(|(v, _, _)| mine(v));
    let sessions = recovered.sessions.into_iter().filter(|(v, _, _)| mine(v));
    let metadata = recovered.metadata.into_iter().filter(|(v, ..)| mine(v));
    vhost.restore_metadata(
        metadata
            .map(|(_, scope, key, value)| (scope, key, value))
            .collect(),
    );
    vhost.restore(
        exchanges.map(|(_, spec)| spec).collect(),
        queues.collect(),
        bindings.map(|(_, spec)| spec).collect(),
        retained
            .map(|(_, topic, message)| (topic, message))
            .collect(),
        sessions.map(|(_, client, state)| (client, state)).collect(),
    );
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_with_guest(loopback_only: bool) -> Arc<Core> {
        let guest = UserRecord {
            name: "guest".to_owned(),
            password: "guest".to_owned(),
            loopback_only,
        };
        let gauge = Arc::new(MemoryGauge::new(u64::MAX));
        let store = Arc::new(crate::store::Discard::default());
        Core::new(vec![guest], gauge, store, Recovered::default())
    }

    #[test]
    fn a_loopback_only_user_is_refused_from_elsewhere() {
        let core = core_with_guest(true);
        let remote = IpAddr::from([192, 0, 2, 7]);
        let refused = core.authenticate("guest", "guest", remote);
        assert!(matches!(refused, Err(BrokerError::AccessRefused(_))));
        for local in [IpAddr::from([127, 0, 0, 1]), "::1".parse().expect("ipv6")] {
            assert!(core.authenticate("guest", "guest", local).is_ok());
        }
    }

    #[test]
    fn other_users_may_connect_from_anywhere() {
        let core = core_with_guest(false);
        let remote = IpAddr::from([192, 0, 2, 7]);
        assert!(core.authenticate("guest", "guest", remote).is_ok());
        let wrong = core.authenticate("guest", "nope", remote);
        assert!(matches!(wrong, Err(BrokerError::AccessRefused(_))));
    }
}
