//! A vhost as one user sees it: every definition, publish and consume a protocol adapter asks
//! for is checked against the user's [`Grant`] before the vhost does it, so that every protocol
//! and every path (AMQP, MQTT, STOMP, the management API) is held to the same permissions.
//!
//! Which access each operation needs is RabbitMQ's table: declare and delete need configure on
//! the object; binding needs write on the destination and read on the source exchange;
//! publishing needs write on the exchange; consuming, getting and purging need read on the
//! queue. A queue or exchange declared with a dead-letter or alternate exchange also needs read
//! on itself and write on that exchange, since it will publish there.

use std::sync::Arc;

use mqbridge_broker_api::{
    BindingSpec, BoxFuture, BrokerError, Confirm, ConnectionId, Destination, ExchangeSpec, Headers,
    Message, Permission, QueueDeclared, QueueHandle, QueueSpec, VirtualHost,
};

use super::access::Grant;
use super::vhost::VHost;

#[derive(Debug)]
pub struct Guarded {
    vhost: Arc<VHost>,
    grant: Arc<Grant>,
}

impl Guarded {
    pub fn new(vhost: Arc<VHost>, grant: Arc<Grant>) -> Guarded {
        Guarded { vhost, grant }
    }

    /// Whether this is the view of `vhost` through `grant` (the very same objects).
    pub fn is_over(&self, vhost: &Arc<VHost>, grant: &Arc<Grant>) -> bool {
        Arc::ptr_eq(&self.vhost, vhost) && Arc::ptr_eq(&self.grant, grant)
    }

    fn check(&self, operation: Permission, destination: &Destination) -> Result<(), BrokerError> {
        match destination {
            Destination::Queue(name) => self.grant.check(operation, "queue", name),
            Destination::Exchange(name) => self.grant.check(operation, "exchange", name),
        }
    }

    /// Read on `kind` `name` and write on the exchange named by `argument`, if it is set.
    fn check_publishes_to(
        &self,
        kind: &str,
        name: &str,
        arguments: &Headers,
        argument: &str,
    ) -> Result<(), BrokerError> {
        let target = arguments.get(argument).and_then(|value| value.as_str());
        if let Some(target) = target {
            self.grant.check(Permission::Read, kind, name)?;
            self.grant.check(Permission::Write, "exchange", target)?;
        }
        Ok(())
    }

    fn check_binding(&self, binding: &BindingSpec) -> Result<(), BrokerError> {
        self.check(Permission::Write, &binding.destination)?;
        self.grant
            .check(Permission::Read, "exchange", &binding.source)?;
        self.grant
            .check_topic(Permission::Read, &binding.source, &binding.routing_key)
    }
}

impl VirtualHost for Guarded {
    fn name(&self) -> &str {
        self.vhost.name()
    }

    fn declare_exchange(&self, spec: ExchangeSpec, passive: bool) -> Result<(), BrokerError> {
        if !passive {
            self.grant
                .check(Permission::Configure, "exchange", &spec.name)?;
            self.check_publishes_to(
                "exchange",
                &spec.name,
                &spec.arguments,
                "alternate-exchange",
            )?;
        }
        self.vhost.declare_exchange(spec, passive)
    }

    fn authorize(&self, permission: Permission, object: &Destination) -> Result<(), BrokerError> {
        self.check(permission, object)
    }

    fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), BrokerError> {
        self.grant.check(Permission::Configure, "exchange", name)?;
        self.vhost.delete_exchange(name, if_unused)
    }

    fn declare_queue(
        &self,
        spec: QueueSpec,
        passive: bool,
        connection: ConnectionId,
    ) -> Result<QueueDeclared, BrokerError> {
        // A server-named queue is checked by the name it gets, which only the vhost knows;
        // `amq.gen-` names are the broker's own, and RabbitMQ checks them the same way.
        if !passive && !spec.name.is_empty() {
            self.grant
                .check(Permission::Configure, "queue", &spec.name)?;
            self.check_publishes_to(
                "queue",
                &spec.name,
                &spec.arguments,
                "x-dead-letter-exchange",
            )?;
        }
        self.vhost.declare_queue(spec, passive, connection)
    }

    fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        connection: ConnectionId,
    ) -> BoxFuture<'_, Result<u32, BrokerError>> {
        if let Err(error) = self.grant.check(Permission::Configure, "queue", name) {
            return Box::pin(std::future::ready(Err(error)));
        }
        self.vhost
            .delete_queue(name, if_unused, if_empty, connection)
    }

    fn bind(&self, binding: BindingSpec, connection: ConnectionId) -> Result<(), BrokerError> {
        self.check_binding(&binding)?;
        self.vhost.bind(binding, connection)
    }

    fn unbind(&self, binding: BindingSpec, connection: ConnectionId) -> Result<(), BrokerError> {
        self.check_binding(&binding)?;
        self.vhost.unbind(binding, connection)
    }

    fn route(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: &Headers,
        out: &mut Vec<Arc<dyn QueueHandle>>,
    ) -> Result<(), BrokerError> {
        self.grant.check(Permission::Write, "exchange", exchange)?;
        if self.grant.has_topic_permissions() {
            self.grant
                .check_topic(Permission::Write, exchange, routing_key)?;
        }
        self.vhost.route(exchange, routing_key, headers, out)
    }

    fn bindings_to(&self, destination: &Destination) -> Vec<BindingSpec> {
        self.vhost.bindings_to(destination)
    }

    fn queue(
        &self,
        name: &str,
        connection: ConnectionId,
    ) -> Result<Arc<dyn QueueHandle>, BrokerError> {
        self.grant.check(Permission::Read, "queue", name)?;
        self.vhost.queue(name, connection)
    }

    fn connection_closed(&self, connection: ConnectionId) {
        self.vhost.connection_closed(connection);
    }

    fn set_retained(&self, topic: &str, message: Option<Arc<Message>>, confirm: Option<Confirm>) {
        self.vhost.set_retained(topic, message, confirm);
    }

    fn take_retained(&self) -> Vec<(String, Arc<Message>)> {
        self.vhost.take_retained()
    }

    fn set_session_state(&self, client_id: &str, state: Option<bytes::Bytes>) {
        self.vhost.set_session_state(client_id, state);
    }

    fn take_session_states(&self) -> Vec<(String, bytes::Bytes)> {
        self.vhost.take_session_states()
    }

    fn set_metadata(&self, scope: &str, key: &str, value: Option<bytes::Bytes>) {
        self.vhost.set_metadata(scope, key, value);
    }

    fn take_metadata(&self, scope: &str) -> Vec<(String, bytes::Bytes)> {
        self.vhost.take_metadata(scope)
    }
}
