//! The broker core: users and their permissions, virtual hosts, the memory alarm. It
//! implements the `mqbridge_broker_api` traits and knows no wire protocol.
//!
//! Adapters open a vhost through [`Broker::vhost`] as a user and get it guarded by that user's
//! permissions (`guard`). The broker's own services (the SQS and SNS APIs' bookkeeping, MQTT's
//! `$SYS` topics) open it through [`Core::system`], unguarded: they check their callers
//! themselves.

pub mod access;
pub mod definitions;
pub mod disk;
mod guard;
pub mod inspect;
pub mod limits;
pub mod memory;
pub mod policy;
mod queue;
mod vhost;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use bytes::Bytes;
use mqbridge_broker_api::{Broker, BrokerError, User, VirtualHost};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use self::access::{Access, BROKER_SCOPE_VHOST, PermissionRecord, UserRecord};
use self::limits::{Limits, Usage};
use self::memory::MemoryGauge;
use self::policy::{Policy, PolicyRecord};
use self::vhost::VHost;
use crate::store::{Record, Recovered, Store};

/// The vhost every broker has.
pub const DEFAULT_VHOST: &str = "/";

/// Broker-level store scope of vhost records.
const VHOST_SCOPE: &str = "vhost";

/// The user a fresh broker starts with (RabbitMQ's `default_user`), who may log in only
/// from loopback, and the resource limits it runs with.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub default_user: String,
    pub default_pass: String,
    pub loopback_users: Vec<String>,
    pub limits: Limits,
}

/// A vhost as stored and as a definitions file has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VhostRecord {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug)]
pub struct Core {
    access: Access,
    vhosts: RwLock<BTreeMap<String, (VhostRecord, Arc<VHost>)>>,
    gauge: Arc<MemoryGauge>,
    store: Arc<dyn Store>,
    /// Queues and bindings over all vhosts, against the limits.
    usage: Arc<Usage>,
    /// The guarded view of each (vhost, user) in use, shared by that user's connections: a
    /// view holds no per-connection state, and every connection, idle ones included, would
    /// otherwise allocate its own.
    views: Mutex<HashMap<(String, String), Weak<guard::Guarded>>>,
}

impl Core {
    /// The core with the users, definitions and messages the store recovered. A store that
    /// holds no user yet (a first start) gets the bootstrap user, an administrator with every
    /// permission on the default vhost.
    pub fn new(
        bootstrap: Bootstrap,
        gauge: Arc<MemoryGauge>,
        store: Arc<dyn Store>,
        mut recovered: Recovered,
    ) -> Arc<Self> {
        let (broker_level, metadata) = std::mem::take(&mut recovered.metadata)
            .into_iter()
            .partition::<Vec<_>, _>(|(vhost, ..)| vhost == BROKER_SCOPE_VHOST);
        recovered.metadata = metadata;
        let mut vhost_records = vec![VhostRecord {
            name: DEFAULT_VHOST.to_owned(),
            description: "Default virtual host".to_owned(),
            tags: Vec::new(),
        }];
        let mut access_records = Vec::new();
        for (_, scope, key, value) in broker_level {
            if scope != VHOST_SCOPE {
                access_records.push((scope, key, value));
            } else if let Ok(record) = serde_json::from_slice::<VhostRecord>(&value) {
                vhost_records.retain(|r| r.name != record.name);
                vhost_records.push(record);
            }
        }
        let access = Access::restore(
            Arc::clone(&store),
            bootstrap.loopback_users.clone(),
            access_records,
        );
        let mut parts = split_by_vhost(recovered);
        let usage = Usage::new(bootstrap.limits);
        let vhosts = vhost_records
            .into_iter()
            .map(|record| {
                let vhost = VHost::new(
                    &record.name,
                    Arc::clone(&gauge),
                    Arc::clone(&store),
                    Arc::clone(&usage),
                );
                restore(&vhost, parts.remove(&record.name).unwrap_or_default());
                (record.name.clone(), (record, vhost))
            })
            .collect();
        for name in parts.keys() {
            tracing::warn!(
                vhost = name,
                "stored definitions for an unknown vhost ignored"
            );
        }
        let core = Arc::new(Core {
            access,
            vhosts: RwLock::new(vhosts),
            gauge,
            store,
            usage,
            views: Mutex::default(),
        });
        if core.access.is_empty() {
            core.seed(&bootstrap);
        }
        core
    }

    fn seed(&self, bootstrap: &Bootstrap) {
        self.access.put_user(UserRecord {
            name: bootstrap.default_user.clone(),
            password_hash: access::password::hash(&bootstrap.default_pass),
            tags: vec![access::ADMINISTRATOR.to_owned()],
        });
        let everything = ".*".to_owned();
        let granted = self.access.set_permission(PermissionRecord {
            user: bootstrap.default_user.clone(),
            vhost: DEFAULT_VHOST.to_owned(),
            configure: everything.clone(),
            write: everything.clone(),
            read: everything,
        });
        debug_assert!(granted.is_ok(), "the user was just made");
    }

    /// The user database (management API, definitions).
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The broker itself, with every vhost unguarded: for services that check their own
    /// callers.
    pub fn system(self: &Arc<Self>) -> Arc<dyn Broker> {
        Arc::new(System(Arc::clone(self)))
    }

    pub fn vhost_records(&self) -> Vec<VhostRecord> {
        let vhosts = self.vhosts.read().unwrap_or_else(PoisonError::into_inner);
        vhosts.values().map(|(record, _)| record.clone()).collect()
    }

    /// The vhost named `name`, unguarded.
    fn find(&self, name: &str) -> Result<Arc<VHost>, BrokerError> {
        let vhosts = self.vhosts.read().unwrap_or_else(PoisonError::into_inner);
        match vhosts.get(name) {
            Some((_, vhost)) => Ok(Arc::clone(vhost)),
            None => Err(BrokerError::NotAllowed(format!("vhost '{name}' not found"))),
        }
    }

    /// Creates a vhost, or updates the description and tags of an existing one; `true` if
    /// it is new.
    pub fn put_vhost(&self, record: VhostRecord) -> bool {
        self.store.append(
            Record::Metadata {
                vhost: BROKER_SCOPE_VHOST.to_owned(),
                scope: VHOST_SCOPE.to_owned(),
                key: record.name.clone(),
                value: serde_json::to_vec(&record).ok().map(Bytes::from),
            },
            None,
        );
        let mut vhosts = self.vhosts.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((existing, _)) = vhosts.get_mut(&record.name) {
            *existing = record;
            return false;
        }
        let vhost = VHost::new(
            &record.name,
            Arc::clone(&self.gauge),
            Arc::clone(&self.store),
            Arc::clone(&self.usage),
        );
        vhosts.insert(record.name.clone(), (record, vhost));
        true
    }

    /// Sets a policy in its vhost and applies it; `true` if it is new. The vhost must exist.
    pub fn put_policy(&self, record: PolicyRecord) -> Result<bool, BrokerError> {
        let vhost = self.find(&record.vhost)?;
        Ok(vhost.put_policy(Policy::parse(record)?))
    }

    /// Removes a policy; `false` if the vhost has none by that name (or does not exist).
    pub fn clear_policy(&self, vhost: &str, name: &str) -> bool {
        self.find(vhost).is_ok_and(|vhost| vhost.clear_policy(name))
    }

    /// Deletes a vhost with everything in it: its queues (and their messages), exchanges,
    /// bindings and the permissions on it. `false` if there was none.
    pub async fn delete_vhost(&self, name: &str) -> bool {
        let removed = {
            let mut vhosts = self.vhosts.write().unwrap_or_else(PoisonError::into_inner);
            vhosts.remove(name)
        };
        let Some((_, vhost)) = removed else {
            return false;
        };
        self.store.append(
            Record::Metadata {
                vhost: BROKER_SCOPE_VHOST.to_owned(),
                scope: VHOST_SCOPE.to_owned(),
                key: name.to_owned(),
                value: None,
            },
            None,
        );
        self.access.forget_vhost(name);
        vhost.tear_down().await;
        true
    }
}

impl Broker for Core {
    fn authenticate(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<User, BrokerError> {
        self.access.authenticate(username, password, peer)
    }

    fn vhost(&self, name: &str, user: &User) -> Result<Arc<dyn VirtualHost>, BrokerError> {
        let vhost = self.find(name)?;
        let grant = self.access.grant(&user.name, name)?;
        let mut views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (name.to_owned(), user.name.clone());
        // Reused only while it is over this very vhost and grant: a vhost made again, or
        // permissions changed (a new grant), give new connections a new view.
        if let Some(view) = views.get(&key).and_then(Weak::upgrade)
            && view.is_over(&vhost, &grant)
        {
            return Ok(view);
        }
        if views.len() == views.capacity() {
            // Before the map would grow: pairs no connection uses any more go, at a cost
            // spread over the insertions that filled it.
            views.retain(|_, view| view.strong_count() > 0);
        }
        let view = Arc::new(guard::Guarded::new(vhost, grant));
        views.insert(key, Arc::downgrade(&view));
        Ok(view)
    }

    fn publish_blocked(&self) -> watch::Receiver<bool> {
        self.gauge.subscribe()
    }
}

/// [`Core::system`]'s view.
#[derive(Debug)]
struct System(Arc<Core>);

impl Broker for System {
    fn authenticate(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<User, BrokerError> {
        self.0.authenticate(username, password, peer)
    }

    fn vhost(&self, name: &str, _user: &User) -> Result<Arc<dyn VirtualHost>, BrokerError> {
        Ok(self.0.find(name)? as Arc<dyn VirtualHost>)
    }

    fn publish_blocked(&self) -> watch::Receiver<bool> {
        self.0.publish_blocked()
    }
}

/// Sorts what the store recovered by vhost.
fn split_by_vhost(recovered: Recovered) -> HashMap<String, Recovered> {
    let mut parts: HashMap<String, Recovered> = HashMap::new();
    for (vhost, spec) in recovered.exchanges {
        let part = parts.entry(vhost.clone()).or_default();
        part.exchanges.push((vhost, spec));
    }
    for queue in recovered.queues {
        let part = parts.entry(queue.vhost.clone()).or_default();
        part.queues.push(queue);
    }
    for (vhost, spec) in recovered.bindings {
        let part = parts.entry(vhost.clone()).or_default();
        part.bindings.push((vhost, spec));
    }
    for (vhost, topic, message) in recovered.retained {
        let part = parts.entry(vhost.clone()).or_default();
        part.retained.push((vhost, topic, message));
    }
    for (vhost, client, state) in recovered.sessions {
        let part = parts.entry(vhost.clone()).or_default();
        part.sessions.push((vhost, client, state));
    }
    for (vhost, scope, key, value) in recovered.metadata {
        let part = parts.entry(vhost.clone()).or_default();
        part.metadata.push((vhost, scope, key, value));
    }
    parts
}

/// Puts back what the store recovered for one vhost.
fn restore(vhost: &VHost, recovered: Recovered) {
    vhost.restore_metadata(
        recovered
            .metadata
            .into_iter()
            .map(|(_, scope, key, value)| (scope, key, value))
            .collect(),
    );
    vhost.restore(
        recovered
            .exchanges
            .into_iter()
            .map(|(_, spec)| spec)
            .collect(),
        recovered.queues,
        recovered
            .bindings
            .into_iter()
            .map(|(_, spec)| spec)
            .collect(),
        recovered
            .retained
            .into_iter()
            .map(|(_, topic, message)| (topic, message))
            .collect(),
        recovered
            .sessions
            .into_iter()
            .map(|(_, client, state)| (client, state))
            .collect(),
    );
}

#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod tests;
