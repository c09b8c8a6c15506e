//! Who may do what: users with password hashes and tags, and per vhost RabbitMQ's
//! configure/write/read permissions plus topic permissions. The records are kept in the store
//! (broker-level metadata, vhost `""`), so users made through the management API survive a
//! restart.
//!
//! A connection is checked against a [`Grant`], the compiled permissions of its user in its
//! vhost, taken when it opens the vhost: changes apply to connections opened afterwards, as
//! RabbitMQ's per-channel permission cache makes them apply there.

pub mod password;
pub(crate) mod pattern;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqbridge_broker_api::{BrokerError, Permission, User};
use serde::{Deserialize, Serialize};

pub use self::pattern::Pattern;
use crate::store::{Record, Store};

/// The store's vhost for broker-level records, which belong to no vhost.
pub const BROKER_SCOPE_VHOST: &str = "";
const USER_SCOPE: &str = "user";
const PERMISSION_SCOPE: &str = "permission";
const TOPIC_PERMISSION_SCOPE: &str = "topic-permission";

/// Tags RabbitMQ's management API knows. Others are kept and shown but grant nothing.
pub const ADMINISTRATOR: &str = "administrator";

/// A user as stored and as a definitions file has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// [`password::hash`]'s form; empty for a user who logs in only by certificate.
    pub password_hash: String,
    pub tags: Vec<String>,
}

/// A user's permissions in one vhost: three patterns over resource names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRecord {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// A user's topic permissions on one exchange: patterns over routing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPermissionRecord {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// One user's compiled permissions in one vhost.
#[derive(Debug)]
pub struct Grant {
    pub user: String,
    pub vhost: String,
    configure: Pattern,
    write: Pattern,
    read: Pattern,
    /// (exchange, write, read) over routing keys; usually empty.
    topics: Vec<(String, Pattern, Pattern)>,
}

impl Grant {
    /// `kind` is `"queue"` or `"exchange"`. The default exchange is named `amq.default` for
    /// checks, as in RabbitMQ.
    pub fn check(&self, operation: Permission, kind: &str, name: &str) -> Result<(), BrokerError> {
        let pattern = match operation {
            Permission::Configure => &self.configure,
            Permission::Write => &self.write,
            Permission::Read => &self.read,
        };
        let name = if kind == "exchange" && name.is_empty() {
            "amq.default"
        } else {
            name
        };
        if pattern.matches(name) {
            return Ok(());
        }
        Err(BrokerError::AccessRefused(format!(
            "{} access to {} refused for user '{}'",
            operation.as_str(),
            BrokerError::describe(kind, name, &self.vhost),
            self.user
        )))
    }

    /// Topic permissions: a routing key published to (`Write`) or bound with (`Read`) on
    /// `exchange`. Exchanges without topic permissions allow every key.
    pub fn check_topic(
        &self,
        operation: Permission,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BrokerError> {
        for (name, write, read) in &self.topics {
            if name != exchange {
                continue;
            }
            let pattern = if operation == Permission::Read {
                read
            } else {
                write
            };
            if !pattern.matches(routing_key) {
                return Err(BrokerError::AccessRefused(format!(
                    "{} access to topic '{routing_key}' in {} refused for user '{}'",
                    operation.as_str(),
                    BrokerError::describe("exchange", exchange, &self.vhost),
                    self.user
                )));
            }
        }
        Ok(())
    }

    pub fn has_topic_permissions(&self) -> bool {
        !self.topics.is_empty()
    }
}

#[derive(Debug, Default)]
struct Records {
    users: BTreeMap<String, UserRecord>,
    /// Keyed by (vhost, user).
    permissions: BTreeMap<(String, String), PermissionRecord>,
    /// Keyed by (vhost, user, exchange).
    topic_permissions: BTreeMap<(String, String, String), TopicPermissionRecord>,
}

/// The user database.
#[derive(Debug)]
pub struct Access {
    records: RwLock<Records>,
    /// Grants handed out, by (vhost, user), until the records next change: every connection
    /// of one user in one vhost shares one, rather than compiling its own.
    grants: Mutex<HashMap<(String, String), Arc<Grant>>>,
    store: Arc<dyn Store>,
    /// Users who may connect only from loopback (configuration, not stored).
    loopback_users: Vec<String>,
    failures: Mutex<Failures>,
}

/// Recent failed logins by peer address: how many, and when the last one was.
#[derive(Debug, Default)]
struct Failures(HashMap<IpAddr, (u32, Instant)>);

/// Failed logins older than this are forgotten.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// Failures a peer may have in the memory window before it is slowed: mistyped passwords
/// are not an attack, and every client behind one address waits once it is slowed
/// (fail2ban's `maxretry` default).
const FAILURES_FORGIVEN: u32 = 5;
/// The wait after the first failure past those; it doubles with each further one, up to the
/// cap.
const FAILURE_DELAY_BASE: Duration = Duration::from_millis(250);
const FAILURE_DELAY_MAX: Duration = Duration::from_secs(4);
/// Peers remembered at once; beyond it the oldest half is dropped, so a spray of addresses
/// cannot grow the table without bound.
const FAILURE_PEERS_MAX: usize = 10_000;

impl Failures {
    fn record(&mut self, peer: IpAddr, now: Instant) {
        if self.0.len() >= FAILURE_PEERS_MAX {
            let mut times: Vec<Instant> = self.0.values().map(|(_, at)| *at).collect();
            let (_, median, _) = times.select_nth_unstable(FAILURE_PEERS_MAX / 2);
            let median = *median;
            self.0.retain(|_, (_, at)| *at > median);
        }
        let entry = self.0.entry(peer).or_insert((0, now));
        if now.duration_since(entry.1) > FAILURE_MEMORY {
            entry.0 = 0;
        }
        *entry = (entry.0.saturating_add(1), now);
    }

    fn delay(&self, peer: IpAddr, now: Instant) -> Duration {
        match self.0.get(&peer) {
            Some(&(count, at))
                if count > FAILURES_FORGIVEN && now.duration_since(at) <= FAILURE_MEMORY =>
            {
                let doublings = (count - FAILURES_FORGIVEN - 1).min(8);
                (FAILURE_DELAY_BASE * 2u32.pow(doublings)).min(FAILURE_DELAY_MAX)
            }
            _ => Duration::ZERO,
        }
    }
}

impl Access {
    /// The database with what the store kept: `(scope, key, value)` records of vhost `""`.
    pub fn restore(
        store: Arc<dyn Store>,
        loopback_users: Vec<String>,
        recovered: Vec<(String, String, Bytes)>,
    ) -> Access {
        let mut records = Records::default();
        for (scope, key, value) in recovered {
            let parsed = match scope.as_str() {
                USER_SCOPE => serde_json::from_slice(&value).map(|user: UserRecord| {
                    records.users.insert(user.name.clone(), user);
                }),
                PERMISSION_SCOPE => serde_json::from_slice(&value).map(|p: PermissionRecord| {
                    records
                        .permissions
                        .insert((p.vhost.clone(), p.user.clone()), p);
                }),
                TOPIC_PERMISSION_SCOPE => {
                    serde_json::from_slice(&value).map(|p: TopicPermissionRecord| {
                        let key = (p.vhost.clone(), p.user.clone(), p.exchange.clone());
                        records.topic_permissions.insert(key, p);
                    })
                }
                _ => Ok(()),
            };
            if let Err(error) = parsed {
                tracing::warn!(scope, key, %error, "unreadable stored access record ignored");
            }
        }
        Access {
            records: RwLock::new(records),
            grants: Mutex::default(),
            store,
            loopback_users,
            failures: Mutex::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Records> {
        self.records.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every change to the records goes through this guard, so it is where cached grants are
    /// dropped: a grant cached before is gone, and none can be cached until the change is made
    /// (`grant` caches under the read lock).
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Records> {
        let records = self.records.write().unwrap_or_else(PoisonError::into_inner);
        self.grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        records
    }

    fn persist(&self, scope: &str, key: String, value: Option<Vec<u8>>) {
        self.store.append(
            Record::Metadata {
                vhost: BROKER_SCOPE_VHOST.to_owned(),
                scope: scope.to_owned(),
                key,
                value: value.map(Bytes::from),
            },
            None,
        );
    }

    pub fn is_empty(&self) -> bool {
        self.read().users.is_empty()
    }

    /// Checks a password. Failures are logged with the peer, for whoever watches for brute
    /// force.
    pub fn authenticate(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<User, BrokerError> {
        let refused = || {
            // An empty username is how adapters ask for a TLS certificate's identity, not a
            // guess at a password.
            if !username.is_empty() {
                tracing::warn!(user = username, %peer, "login failed");
                self.failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(peer, Instant::now());
            }
            BrokerError::AccessRefused(format!("login refused for user '{username}'"))
        };
        let records = self.read();
        let user = records.users.get(username).ok_or_else(refused)?;
        if !password::verify(&user.password_hash, password) {
            return Err(refused());
        }
        self.check_peer(username, peer)?;
        Ok(User {
            name: user.name.clone(),
        })
    }

    /// How long a new connection from `peer` waits before it may try to log in: nothing,
    /// unless more than five logins from there failed in the last minute; then 250 ms,
    /// doubling with each further failure up to 4 s. Guessing passwords gets slow; other
    /// peers are not slowed. Loopback is never slowed: it is this machine, whose users (tests,
    /// sidecars) could not be told apart from a guesser (fail2ban ignores it by default too).
    pub fn login_delay(&self, peer: IpAddr) -> Duration {
        if peer.is_loopback() {
            return Duration::ZERO;
        }
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .delay(peer, Instant::now())
    }

    /// RabbitMQ's `loopback_users` rule.
    pub fn check_peer(&self, username: &str, peer: IpAddr) -> Result<(), BrokerError> {
        if !peer.is_loopback() && self.loopback_users.iter().any(|u| u == username) {
            return Err(BrokerError::AccessRefused(format!(
                "user '{username}' can only connect via localhost"
            )));
        }
        Ok(())
    }

    pub fn user(&self, name: &str) -> Option<UserRecord> {
        self.read().users.get(name).cloned()
    }

    pub fn users(&self) -> Vec<UserRecord> {
        self.read().users.values().cloned().collect()
    }

    /// Creates or replaces a user; `true` if it is new.
    pub fn put_user(&self, user: UserRecord) -> bool {
        let value = serde_json::to_vec(&user).ok();
        self.persist(USER_SCOPE, user.name.clone(), value);
        self.write().users.insert(user.name.clone(), user).is_none()
    }

    /// Deletes a user and every permission of theirs; `false` if there was none.
    pub fn delete_user(&self, name: &str) -> bool {
        let mut records = self.write();
        if records.users.remove(name).is_none() {
            return false;
        }
        self.persist(USER_SCOPE, name.to_owned(), None);
        let vhosts: Vec<String> = records
            .permissions
            .keys()
            .filter(|(_, user)| user == name)
            .map(|(vhost, _)| vhost.clone())
            .collect();
        for vhost in vhosts {
            self.remove_permission(&mut records, &vhost, name);
        }
        let topics: Vec<(String, String, String)> = records
            .topic_permissions
            .keys()
            .filter(|(_, user, _)| user == name)
            .cloned()
            .collect();
        for key in topics {
            self.remove_topic_permission(&mut records, &key);
        }
        true
    }

    pub fn permissions(&self) -> Vec<PermissionRecord> {
        self.read().permissions.values().cloned().collect()
    }

    /// Sets a user's permissions in a vhost. The user must exist and the patterns compile.
    pub fn set_permission(&self, permission: PermissionRecord) -> Result<(), BrokerError> {
        for source in [&permission.configure, &permission.write, &permission.read] {
            Pattern::parse(source).map_err(BrokerError::PreconditionFailed)?;
        }
        let mut records = self.write();
        if !records.users.contains_key(&permission.user) {
            return Err(BrokerError::NotFound(format!(
                "no user '{}'",
                permission.user
            )));
        }
        let key = (permission.vhost.clone(), permission.user.clone());
        self.persist(
            PERMISSION_SCOPE,
            format!("{}\0{}", key.0, key.1),
            serde_json::to_vec(&permission).ok(),
        );
        records.permissions.insert(key, permission);
        Ok(())
    }

    /// `false` if the user had no permissions there.
    pub fn clear_permission(&self, vhost: &str, user: &str) -> bool {
        let mut records = self.write();
        self.remove_permission(&mut records, vhost, user)
    }

    fn remove_permission(&self, records: &mut Records, vhost: &str, user: &str) -> bool {
        let key = (vhost.to_owned(), user.to_owned());
        let removed = records.permissions.remove(&key).is_some();
        if removed {
            self.persist(PERMISSION_SCOPE, format!("{vhost}\0{user}"), None);
        }
        removed
    }

    pub fn topic_permissions(&self) -> Vec<TopicPermissionRecord> {
        self.read().topic_permissions.values().cloned().collect()
    }

    pub fn set_topic_permission(&self, topic: TopicPermissionRecord) -> Result<(), BrokerError> {
        for source in [&topic.write, &topic.read] {
            // Checked with the variables filled in, as they will be.
            let expanded = expand_variables(source, &topic.user, &topic.vhost);
            Pattern::parse(&expanded).map_err(BrokerError::PreconditionFailed)?;
        }
        let mut records = self.write();
        if !records.users.contains_key(&topic.user) {
            return Err(BrokerError::NotFound(format!("no user '{}'", topic.user)));
        }
        let key = (
            topic.vhost.clone(),
            topic.user.clone(),
            topic.exchange.clone(),
        );
        self.persist(
            TOPIC_PERMISSION_SCOPE,
            format!("{}\0{}\0{}", key.0, key.1, key.2),
            serde_json::to_vec(&topic).ok(),
        );
        records.topic_permissions.insert(key, topic);
        Ok(())
    }

    /// Clears a user's topic permissions in a vhost: on one exchange, or on all of them.
    pub fn clear_topic_permission(&self, vhost: &str, user: &str, exchange: Option<&str>) -> bool {
        let mut records = self.write();
        let keys: Vec<(String, String, String)> = records
            .topic_permissions
            .keys()
            .filter(|(v, u, e)| v == vhost && u == user && exchange.is_none_or(|x| x == e))
            .cloned()
            .collect();
        for key in &keys {
            self.remove_topic_permission(&mut records, key);
        }
        !keys.is_empty()
    }

    fn remove_topic_permission(&self, records: &mut Records, key: &(String, String, String)) {
        if records.topic_permissions.remove(key).is_some() {
            let (vhost, user, exchange) = key;
            self.persist(
                TOPIC_PERMISSION_SCOPE,
                format!("{vhost}\0{user}\0{exchange}"),
                None,
            );
        }
    }

    /// Forgets every permission in a vhost (it is being deleted).
    pub fn forget_vhost(&self, vhost: &str) {
        let mut records = self.write();
        let users: Vec<String> = records
            .permissions
            .keys()
            .filter(|(v, _)| v == vhost)
            .map(|(_, u)| u.clone())
            .collect();
        for user in users {
            self.remove_permission(&mut records, vhost, &user);
        }
        let topics: Vec<(String, String, String)> = records
            .topic_permissions
            .keys()
            .filter(|(v, _, _)| v == vhost)
            .cloned()
            .collect();
        for key in topics {
            self.remove_topic_permission(&mut records, &key);
        }
    }

    /// The user's compiled permissions in `vhost`, or `NotAllowed` if they have none there
    /// (RabbitMQ's "access to vhost refused").
    pub fn grant(&self, user: &str, vhost: &str) -> Result<Arc<Grant>, BrokerError> {
        let records = self.read();
        let key = (vhost.to_owned(), user.to_owned());
        let mut grants = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(grant) = grants.get(&key) {
            return Ok(Arc::clone(grant));
        }
        let grant = Arc::new(Self::compile(&records, user, vhost)?);
        grants.insert(key, Arc::clone(&grant));
        Ok(grant)
    }

    fn compile(records: &Records, user: &str, vhost: &str) -> Result<Grant, BrokerError> {
        let key = (vhost.to_owned(), user.to_owned());
        let Some(permission) = records.permissions.get(&key) else {
            return Err(BrokerError::NotAllowed(format!(
                "access to vhost '{vhost}' refused for user '{user}'"
            )));
        };
        // Stored patterns were checked when set; one that no longer compiles grants nothing.
        let compile = |source: &str| Pattern::parse(source).unwrap_or(Pattern::Nothing);
        let expand = |source: &str| compile(&expand_variables(source, user, vhost));
        let topics = records
            .topic_permissions
            .range((vhost.to_owned(), user.to_owned(), String::new())..)
            .take_while(|((v, u, _), _)| v == vhost && u == user)
            .map(|((_, _, exchange), t)| (exchange.clone(), expand(&t.write), expand(&t.read)))
            .collect();
        Ok(Grant {
            user: user.to_owned(),
            vhost: vhost.to_owned(),
            configure: compile(&permission.configure),
            write: compile(&permission.write),
            read: compile(&permission.read),
            topics,
        })
    }
}

/// Topic permission patterns may name the user and the vhost (RabbitMQ's `{username}` and
/// `{vhost}`); the values are matched literally.
fn expand_variables(source: &str, user: &str, vhost: &str) -> String {
    source
        .replace("{username}", &regex::escape(user))
        .replace("{vhost}", &regex::escape(vhost))
}

#[cfg(test)]
mod tests;
