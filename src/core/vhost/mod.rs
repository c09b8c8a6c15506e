//! A virtual host: the definitions (exchanges, queues, bindings) behind one read-mostly lock,
//! and routing against them.
//!
//! Concurrency: `definitions` is a `std::sync::RwLock`, never held across an `.await`.
//! Publishing connections take the read lock to route (on their own task); declarations take
//! the write lock briefly. Queue tasks take it only to route dead letters and to remove
//! themselves. Lock order: the vhost lock is a leaf; nothing else is locked while holding it.

mod durable;
mod exchange;
mod inspect;
mod policy;
mod teardown;
mod topic;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use mqbridge_broker_api::{
    BindingSpec, BoxFuture, BrokerError, Confirm, ConnectionId, Destination, ExchangeKind,
    ExchangeSpec, Headers, Message, QueueDeclared, QueueHandle, QueueSpec, VirtualHost,
};

use self::durable::Journaled;
use self::exchange::Exchange;
use super::limits::{Slot, Usage};
use super::memory::MemoryGauge;
use super::policy::Policy;
use super::queue::{self, MessageTotals, QueueConfig, QueueRef, QueueStore};
use crate::store::Store;

/// The exchanges every vhost has, as in RabbitMQ.
const BUILT_IN_EXCHANGES: &[(&str, ExchangeKind)] = &[
    ("", ExchangeKind::Direct),
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

/// Names starting with this are the broker's; clients may not create them.
const RESERVED_PREFIX: &str = "amq.";

#[derive(Debug)]
pub struct VHost {
    name: String,
    definitions: RwLock<Definitions>,
    gauge: Arc<MemoryGauge>,
    /// Message totals of every queue this vhost has had (management, metrics).
    totals: Arc<MessageTotals>,
    me: Weak<VHost>,
    /// Retained MQTT messages recovered from the store, until the MQTT listener takes them.
    recovered_retained: std::sync::Mutex<Vec<(String, Arc<Message>)>>,
    /// MQTT session states recovered from the store, until the MQTT listener takes them.
    recovered_sessions: std::sync::Mutex<Vec<(String, bytes::Bytes)>>,
    /// Adapters' metadata from before a restart (scope, key, value), until taken.
    recovered_metadata: std::sync::Mutex<Vec<(String, String, bytes::Bytes)>>,
}

#[derive(Debug)]
struct Definitions {
    /// Where changes to durable definitions are written, in the order they happen here.
    journal: Journaled,
    exchanges: HashMap<String, Exchange>,
    queues: HashMap<String, QueueEntry>,
    /// Every binding, indexed by destination, so that deleting a queue or exchange finds the
    /// bindings that point at it. Exactly the live bindings: each holds its slot.
    bindings_to: HashMap<Destination, Vec<BindingEntry>>,
    /// The broker's queue and binding counts, shared with every vhost.
    usage: Arc<Usage>,
    /// The vhost's policies by name, and how many times they changed (see `policy.rs`).
    policies: std::collections::BTreeMap<String, Policy>,
    policy_generation: u64,
}

/// A binding as `bindings_to` keeps it, under its destination.
#[derive(Debug)]
struct BindingEntry {
    source: String,
    key: String,
    arguments: Headers,
    _slot: Slot,
}

impl BindingEntry {
    fn is(&self, source: &str, key: &str, arguments: &Headers) -> bool {
        self.source == source && self.key == key && self.arguments == *arguments
    }
}

#[derive(Debug)]
struct QueueEntry {
    handle: Arc<QueueRef>,
    spec: QueueSpec,
    owner: Option<ConnectionId>,
    /// The store's id for a durable queue.
    stored: Option<u64>,
    /// The policy that applies to it, by name.
    policy: Option<String>,
    /// Its place under `max_queues`, given back when the entry goes.
    _slot: Slot,
}

impl VHost {
    pub fn new(
        name: &str,
        gauge: Arc<MemoryGauge>,
        store: Arc<dyn Store>,
        usage: Arc<Usage>,
    ) -> Arc<Self> {
        let mut definitions = Definitions {
            journal: Journaled {
                vhost: name.to_owned(),
                store,
            },
            exchanges: HashMap::new(),
            queues: HashMap::new(),
            bindings_to: HashMap::new(),
            usage,
            policies: std::collections::BTreeMap::new(),
            policy_generation: 0,
        };
        for &(exchange, kind) in BUILT_IN_EXCHANGES {
            let spec = ExchangeSpec {
                name: exchange.to_owned(),
                kind,
                durable: true,
                auto_delete: false,
                internal: false,
                arguments: Headers::new(),
            };
            definitions
                .exchanges
                .insert(exchange.to_owned(), Exchange::new(spec));
        }
        Arc::new_cyclic(|me| VHost {
            name: name.to_owned(),
            definitions: RwLock::new(definitions),
            gauge,
            totals: Arc::default(),
            me: me.clone(),
            recovered_retained: std::sync::Mutex::default(),
            recovered_sessions: std::sync::Mutex::default(),
            recovered_metadata: std::sync::Mutex::default(),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Definitions> {
        // Definitions are only changed by code that cannot panic half-way through an update
        // of the maps, so a poisoned lock still guards consistent data.
        self.definitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Definitions> {
        self.definitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn describe(&self, kind: &str, name: &str) -> String {
        BrokerError::describe(kind, name, &self.name)
    }

    fn not_found(&self, kind: &str, name: &str) -> BrokerError {
        BrokerError::NotFound(format!("no {}", self.describe(kind, name)))
    }

    fn locked(&self, name: &str) -> BrokerError {
        BrokerError::Locked(format!(
            "cannot obtain exclusive access to locked {}. It could be originally declared on \
             another connection or the exclusive property value does not match that of the \
             original declaration.",
            self.describe("queue", name)
        ))
    }

    fn inequivalent(&self, kind: &str, name: &str, arg: &str, detail: String) -> BrokerError {
        let target = self.describe(kind, name);
        BrokerError::PreconditionFailed(format!("inequivalent arg '{arg}' for {target}: {detail}"))
    }

    /// Routes a dead letter: like `route`, but internal exchanges are allowed.
    pub fn route_internal(&self, message: &Message, out: &mut Vec<Arc<QueueRef>>) {
        let definitions = self.read();
        let mut names = Vec::new();
        definitions.route_names(
            &message.exchange,
            &message.routing_key,
            &message.properties.headers,
            &mut names,
        );
        out.extend(
            names
                .iter()
                .filter_map(|n| definitions.queues.get(*n))
                .map(|q| Arc::clone(&q.handle)),
        );
    }

    /// Removes a queue's definition and bindings, if `id` is still the queue by that name.
    /// Called by a queue task that deletes itself, and after `queue.delete`.
    pub fn forget_queue(&self, name: &str, id: u64) {
        let mut definitions = self.write();
        if definitions
            .queues
            .get(name)
            .is_none_or(|q| q.handle.id != id)
        {
            return;
        }
        if let Some(stored) = definitions.queues.remove(name).and_then(|q| q.stored) {
            // The store drops the queue's messages and bindings with it.
            definitions
                .journal
                .record(crate::store::Record::DeleteQueue { id: stored });
        }
        definitions.remove_bindings_to(&Destination::Queue(name.to_owned()));
    }

    fn check_owner(&self, entry: &QueueEntry, connection: ConnectionId) -> Result<(), BrokerError> {
        match entry.owner {
            Some(owner) if owner != connection => Err(self.locked(&entry.spec.name)),
            _ => Ok(()),
        }
    }

    fn declared(entry: &QueueEntry) -> QueueDeclared {
        QueueDeclared {
            name: entry.spec.name.clone(),
            message_count: entry.handle.message_count(),
            consumer_count: entry.handle.consumer_count(),
        }
    }

    fn check_redeclare(
        &self,
        entry: &QueueEntry,
        spec: &QueueSpec,
        connection: ConnectionId,
    ) -> Result<(), BrokerError> {
        self.check_owner(entry, connection)?;
        if spec.exclusive != entry.owner.is_some() {
            return Err(self.locked(&spec.name));
        }
        let flag = |arg: &str, received: bool, current: bool| {
            let detail = format!("received '{received}' but current is '{current}'");
            self.inequivalent("queue", &spec.name, arg, detail)
        };
        if spec.durable != entry.spec.durable {
            return Err(flag("durable", spec.durable, entry.spec.durable));
        }
        if spec.auto_delete != entry.spec.auto_delete {
            return Err(flag(
                "auto_delete",
                spec.auto_delete,
                entry.spec.auto_delete,
            ));
        }
        if let Some((arg, detail)) = queue::first_difference(&entry.spec.arguments, &spec.arguments)
        {
            return Err(self.inequivalent("queue", &spec.name, arg, detail));
        }
        Ok(())
    }

    fn check_exchange_redeclare(
        &self,
        current: &ExchangeSpec,
        spec: &ExchangeSpec,
    ) -> Result<(), BrokerError> {
        let mismatch = |arg: &str, received: String, current: String| {
            let detail = format!("received '{received}' but current is '{current}'");
            Err(self.inequivalent("exchange", &spec.name, arg, detail))
        };
        if current.kind != spec.kind {
            return mismatch("type", spec.kind.to_string(), current.kind.to_string());
        }
        for (arg, received, now) in [
            ("durable", spec.durable, current.durable),
            ("auto_delete", spec.auto_delete, current.auto_delete),
            ("internal", spec.internal, current.internal),
        ] {
            if received != now {
                return mismatch(arg, received.to_string(), now.to_string());
            }
        }
        let alternate = |s: &ExchangeSpec| {
            s.arguments
                .get(exchange::ALTERNATE_EXCHANGE)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        if alternate(current) != alternate(spec) {
            let show = |v: Option<String>| v.unwrap_or_else(|| "none".to_owned());
            return mismatch(
                exchange::ALTERNATE_EXCHANGE,
                show(alternate(spec)),
                show(alternate(current)),
            );
        }
        Ok(())
    }

    fn new_queue(
        &self,
        mut spec: QueueSpec,
        connection: ConnectionId,
        definitions: &mut Definitions,
    ) -> Result<QueueDeclared, BrokerError> {
        if spec.name.is_empty() {
            spec.name = server_named_queue();
        } else if spec.name.starts_with(RESERVED_PREFIX) {
            return Err(BrokerError::AccessRefused(format!(
                "queue name '{}' contains reserved prefix 'amq.*'",
                spec.name
            )));
        }
        let arguments = QueueConfig::parse(&spec.arguments, &spec.name, &self.name)?;
        let slot = definitions.usage.queues.take().ok_or_else(|| {
            BrokerError::ResourceLimit(format!(
                "cannot declare {}: queue limit in broker ({}) is reached",
                self.describe("queue", &spec.name),
                definitions.usage.limits.max_queues
            ))
        })?;
        let (config, policy) = definitions.configure(&spec.name, &arguments);
        // An exclusive queue goes with its connection, so a restart has nothing to restore.
        let stored = (spec.durable && !spec.exclusive).then(|| {
            let id = definitions.journal.store.next_id();
            definitions.journal.declare_queue(id, &spec);
            id
        });
        let handle = queue::spawn(queue::QueueSetup {
            name: spec.name.clone(),
            vhost: self.me.clone(),
            vhost_name: self.name.clone(),
            config,
            auto_delete: spec.auto_delete,
            gauge: Arc::clone(&self.gauge),
            totals: Arc::clone(&self.totals),
            store: stored.map(|id| QueueStore {
                id,
                store: Arc::clone(&definitions.journal.store),
            }),
            recovered: Vec::new(),
            limits: definitions.usage.limits,
        });
        let owner = spec.exclusive.then_some(connection);
        let declared = QueueDeclared {
            name: spec.name.clone(),
            message_count: 0,
            consumer_count: 0,
        };
        definitions.queues.insert(
            spec.name.clone(),
            QueueEntry {
                handle,
                spec,
                owner,
                stored,
                policy,
                _slot: slot,
            },
        );
        Ok(declared)
    }

    /// The refusal of a binding past `max_bindings`, in RabbitMQ's words for its queue limit.
    fn binding_limit(&self, definitions: &Definitions, binding: &BindingSpec) -> BrokerError {
        let destination = match &binding.destination {
            Destination::Queue(name) => self.describe("queue", name),
            Destination::Exchange(name) => self.describe("exchange", name),
        };
        BrokerError::ResourceLimit(format!(
            "cannot bind {destination} to exchange '{}': binding limit in broker ({}) is reached",
            binding.source, definitions.usage.limits.max_bindings
        ))
    }

    fn check_binding(
        &self,
        definitions: &Definitions,
        binding: &BindingSpec,
        connection: ConnectionId,
    ) -> Result<(), BrokerError> {
        let default = || {
            BrokerError::AccessRefused("operation not permitted on the default exchange".to_owned())
        };
        if binding.source.is_empty() {
            return Err(default());
        }
        if !definitions.exchanges.contains_key(&binding.source) {
            return Err(self.not_found("exchange", &binding.source));
        }
        match &binding.destination {
            Destination::Queue(name) => {
                let entry = definitions
                    .queues
                    .get(name)
                    .ok_or_else(|| self.not_found("queue", name))?;
                self.check_owner(entry, connection)
            }
            Destination::Exchange(name) if name.is_empty() => Err(default()),
            Destination::Exchange(name) => match definitions.exchanges.contains_key(name) {
                true => Ok(()),
                false => Err(self.not_found("exchange", name)),
            },
        }
    }
}

impl Definitions {
    /// Names of the queues a message reaches, each once.
    fn route_names<'a>(
        &'a self,
        exchange: &str,
        key: &str,
        headers: &Headers,
        out: &mut Vec<&'a str>,
    ) {
        if exchange.is_empty() {
            if let Some((name, _)) = self.queues.get_key_value(key) {
                out.push(name);
            }
            return;
        }
        let Some((name, start)) = self.exchanges.get_key_value(exchange) else {
            return;
        };
        let mut pending = vec![start];
        let mut seen: Vec<&str> = vec![name];
        let mut destinations = Vec::new();
        while let Some(current) = pending.pop() {
            destinations.clear();
            current.route(key, headers, &mut destinations);
            let mut routed = false;
            for destination in destinations.drain(..) {
                match destination {
                    Destination::Queue(queue) if self.queues.contains_key(queue) => {
                        routed = true;
                        out.push(queue);
                    }
                    Destination::Queue(_) => {}
                    Destination::Exchange(name) => {
                        routed |= self.follow(name, &mut seen, &mut pending);
                    }
                }
            }
            if let Some(alternate) = current.alternate().filter(|_| !routed) {
                self.follow(alternate, &mut seen, &mut pending);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Queues exchange `name` for routing unless already visited (bindings may form cycles).
    fn follow<'a>(
        &'a self,
        name: &str,
        seen: &mut Vec<&'a str>,
        pending: &mut Vec<&'a Exchange>,
    ) -> bool {
        let Some((name, exchange)) = self.exchanges.get_key_value(name) else {
            return false;
        };
        if !seen.contains(&name.as_str()) {
            seen.push(name);
            pending.push(exchange);
        }
        true
    }

    /// Adds a binding (binding twice is a no-op), or refuses a new one past `max_bindings`
    /// and gives it back.
    fn add_binding(&mut self, binding: BindingSpec) -> Result<(), BindingSpec> {
        let Some(source) = self.exchanges.get_mut(&binding.source) else {
            return Ok(());
        };
        let Some(slot) = self.usage.bindings.take() else {
            // At the limit, binding again what is bound still succeeds.
            let (key, arguments) = (&binding.routing_key, &binding.arguments);
            return match source.contains(key, arguments, &binding.destination) {
                true => Ok(()),
                false => Err(binding),
            };
        };
        if source.bind(
            &binding.routing_key,
            &binding.arguments,
            binding.destination.clone(),
        ) {
            if self.is_durable(&binding) {
                self.journal.record(crate::store::Record::Bind {
                    vhost: self.journal.vhost.clone(),
                    spec: binding.clone(),
                });
            }
            let entry = BindingEntry {
                source: binding.source,
                key: binding.routing_key,
                arguments: binding.arguments,
                _slot: slot,
            };
            self.bindings_to
                .entry(binding.destination)
                .or_default()
                .push(entry);
        }
        Ok(())
    }

    fn remove_binding(
        &mut self,
        source: &str,
        key: &str,
        arguments: &Headers,
        destination: &Destination,
    ) {
        let Some(exchange) = self.exchanges.get_mut(source) else {
            return;
        };
        if !exchange.unbind(key, arguments, destination) {
            return;
        }
        self.journal_unbind(source, key, arguments, destination);
        if let Some(list) = self.bindings_to.get_mut(destination) {
            list.retain(|entry| !entry.is(source, key, arguments));
            if list.is_empty() {
                self.bindings_to.remove(destination);
            }
        }
        self.delete_if_auto(source);
    }

    /// An auto-delete exchange goes when its last binding does.
    fn delete_if_auto(&mut self, name: &str) {
        if self
            .exchanges
            .get(name)
            .is_some_and(|x| x.spec.auto_delete && x.binding_count == 0)
        {
            self.remove_exchange(name);
        }
    }

    fn remove_bindings_to(&mut self, destination: &Destination) {
        for entry in self.bindings_to.remove(destination).unwrap_or_default() {
            if let Some(exchange) = self.exchanges.get_mut(&entry.source) {
                exchange.unbind(&entry.key, &entry.arguments, destination);
            }
            self.delete_if_auto(&entry.source);
        }
    }

    fn remove_exchange(&mut self, name: &str) {
        if self.exchanges.remove(name).is_some_and(|x| x.spec.durable) {
            // The store drops the exchange's bindings with it.
            self.journal.record(crate::store::Record::DeleteExchange {
                vhost: self.journal.vhost.clone(),
                name: name.to_owned(),
            });
        }
        // Its bindings as a source went with it; their entries (and slots) go here.
        self.bindings_to.retain(|_, list| {
            list.retain(|entry| entry.source != name);
            !list.is_empty()
        });
        self.remove_bindings_to(&Destination::Exchange(name.to_owned()));
    }
}

/// A queue name the broker chooses: `amq.gen-` and 22 random URL-safe characters, as RabbitMQ.
fn server_named_queue() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let suffix: String = (0..22)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("amq.gen-{suffix}")
}

impl VirtualHost for VHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn declare_exchange(&self, spec: ExchangeSpec, passive: bool) -> Result<(), BrokerError> {
        if spec.name.is_empty() && !passive {
            return Err(BrokerError::AccessRefused(
                "operation not permitted on the default exchange".to_owned(),
            ));
        }
        let mut definitions = self.write();
        match definitions.exchanges.get(&spec.name) {
            Some(_) if passive => Ok(()),
            Some(current) => self.check_exchange_redeclare(&current.spec, &spec),
            None if passive => Err(self.not_found("exchange", &spec.name)),
            None if spec.name.starts_with(RESERVED_PREFIX) => {
                Err(BrokerError::AccessRefused(format!(
                    "exchange name '{}' contains reserved prefix 'amq.*'",
                    spec.name
                )))
            }
            None => {
                if spec.durable {
                    definitions.journal.declare_exchange(&spec);
                }
                definitions.insert_exchange(spec);
                Ok(())
            }
        }
    }

    fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), BrokerError> {
        if name.is_empty() || BUILT_IN_EXCHANGES.iter().any(|(n, _)| *n == name) {
            return Err(BrokerError::AccessRefused(format!(
                "operation not permitted on the built-in {}",
                self.describe("exchange", name)
            )));
        }
        let mut definitions = self.write();
        // Deleting an exchange that does not exist succeeds, as in RabbitMQ: delete is idempotent.
        let Some(exchange) = definitions.exchanges.get(name) else {
            return Ok(());
        };
        if if_unused && exchange.binding_count > 0 {
            return Err(BrokerError::PreconditionFailed(format!(
                "{} in use",
                self.describe("exchange", name)
            )));
        }
        definitions.remove_exchange(name);
        Ok(())
    }

    fn declare_queue(
        &self,
        spec: QueueSpec,
        passive: bool,
        connection: ConnectionId,
    ) -> Result<QueueDeclared, BrokerError> {
        let mut definitions = self.write();
        match definitions.queues.get(&spec.name) {
            Some(entry) if passive => {
                self.check_owner(entry, connection)?;
                Ok(Self::declared(entry))
            }
            Some(entry) => {
                self.check_redeclare(entry, &spec, connection)?;
                entry.handle.touch();
                Ok(Self::declared(entry))
            }
            None if passive => Err(self.not_found("queue", &spec.name)),
            None => self.new_queue(spec, connection, &mut definitions),
        }
    }

    fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        connection: ConnectionId,
    ) -> BoxFuture<'_, Result<u32, BrokerError>> {
        let name = name.to_owned();
        Box::pin(async move {
            let handle = {
                let definitions = self.read();
                // Deleting a queue that does not exist succeeds with a count of zero, as in RabbitMQ.
                let Some(entry) = definitions.queues.get(&name) else {
                    return Ok(0);
                };
                self.check_owner(entry, connection)?;
                Arc::clone(&entry.handle)
            };
            let count = handle.delete(if_unused, if_empty).await?;
            self.forget_queue(&name, handle.id);
            Ok(count)
        })
    }

    fn bind(&self, binding: BindingSpec, connection: ConnectionId) -> Result<(), BrokerError> {
        let mut definitions = self.write();
        self.check_binding(&definitions, &binding, connection)?;
        definitions
            .add_binding(binding)
            .map_err(|refused| self.binding_limit(&definitions, &refused))
    }

    fn unbind(&self, binding: BindingSpec, connection: ConnectionId) -> Result<(), BrokerError> {
        let mut definitions = self.write();
        self.check_binding(&definitions, &binding, connection)?;
        definitions.remove_binding(
            &binding.source,
            &binding.routing_key,
            &binding.arguments,
            &binding.destination,
        );
        Ok(())
    }

    fn route(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: &Headers,
        out: &mut Vec<Arc<dyn QueueHandle>>,
    ) -> Result<(), BrokerError> {
        let definitions = self.read();
        if let Some(found) = definitions.exchanges.get(exchange) {
            if found.spec.internal {
                return Err(BrokerError::AccessRefused(format!(
                    "cannot publish to internal {}",
                    self.describe("exchange", exchange)
                )));
            }
        } else {
            return Err(self.not_found("exchange", exchange));
        }
        let mut names = Vec::new();
        definitions.route_names(exchange, routing_key, headers, &mut names);
        for name in names {
            if let Some(entry) = definitions.queues.get(name) {
                out.push(Arc::clone(&entry.handle) as Arc<dyn QueueHandle>);
            }
        }
        Ok(())
    }

    fn bindings_to(&self, destination: &Destination) -> Vec<BindingSpec> {
        let definitions = self.read();
        let list = definitions
            .bindings_to
            .get(destination)
            .map(Vec::as_slice)
            .unwrap_or_default();
        list.iter()
            .map(|entry| BindingSpec {
                source: entry.source.clone(),
                destination: destination.clone(),
                routing_key: entry.key.clone(),
                arguments: entry.arguments.clone(),
            })
            .collect()
    }

    fn queue(
        &self,
        name: &str,
        connection: ConnectionId,
    ) -> Result<Arc<dyn QueueHandle>, BrokerError> {
        let definitions = self.read();
        let entry = definitions
            .queues
            .get(name)
            .ok_or_else(|| self.not_found("queue", name))?;
        self.check_owner(entry, connection)?;
        Ok(Arc::clone(&entry.handle) as Arc<dyn QueueHandle>)
    }

    fn set_retained(&self, topic: &str, message: Option<Arc<Message>>, confirm: Option<Confirm>) {
        let record = crate::store::Record::Retain {
            vhost: self.name.clone(),
            topic: topic.to_owned(),
            message,
        };
        let store = Arc::clone(&self.read().journal.store);
        store.append(record, confirm.map(crate::store::Durable::Confirm));
    }

    fn take_retained(&self) -> Vec<(String, Arc<Message>)> {
        let mut recovered = self
            .recovered_retained
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *recovered)
    }

    fn set_session_state(&self, client_id: &str, state: Option<bytes::Bytes>) {
        let record = crate::store::Record::Session {
            vhost: self.name.clone(),
            client_id: client_id.to_owned(),
            state,
        };
        let store = Arc::clone(&self.read().journal.store);
        store.append(record, None);
    }

    fn take_session_states(&self) -> Vec<(String, bytes::Bytes)> {
        let mut recovered = self
            .recovered_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *recovered)
    }

    fn set_metadata(&self, scope: &str, key: &str, value: Option<bytes::Bytes>) {
        let record = crate::store::Record::Metadata {
            vhost: self.name.clone(),
            scope: scope.to_owned(),
            key: key.to_owned(),
            value,
        };
        let store = Arc::clone(&self.read().journal.store);
        store.append(record, None);
    }

    fn take_metadata(&self, scope: &str) -> Vec<(String, bytes::Bytes)> {
        let mut recovered = self
            .recovered_metadata
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (taken, kept) = std::mem::take(&mut *recovered)
            .into_iter()
            .partition(|(s, _, _)| s == scope);
        *recovered = kept;
        taken
            .into_iter()
            .map(|(_, key, value)| (key, value))
            .collect()
    }

    fn connection_closed(&self, connection: ConnectionId) {
        let owned: Vec<(String, Arc<QueueRef>)> = self
            .read()
            .queues
            .values()
            .filter(|q| q.owner == Some(connection))
            .map(|q| (q.spec.name.clone(), Arc::clone(&q.handle)))
            .collect();
        for (name, handle) in owned {
            self.forget_queue(&name, handle.id);
            handle.stop();
        }
    }
}
