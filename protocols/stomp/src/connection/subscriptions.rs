//! SUBSCRIBE and UNSUBSCRIBE, and the queues behind destinations (destination.rs has the
//! table): `/queue/` declares a durable queue on first use, `/amq/queue/` only finds one, a
//! `/topic/` or `/exchange/` subscription gets a queue of its own bound to the exchange
//! (exclusive and auto-delete, or durable for a durable subscription), and a `/temp-queue/` in
//! `reply-to` gets a private queue this connection consumes.

use std::sync::Arc;

use mqbridge_broker_api::{
    BindingSpec, ConsumeSpec, ConsumerId, Destination as Target, HeaderValue, Headers, QueueSpec,
};

use super::{Connection, PREFETCH_DEFAULT, Subscription, Violation};
use crate::codec::{Command, Frame, Version};
use crate::destination::{Destination, TOPIC_EXCHANGE};
use crate::session::AckMode;
use crate::translate::QUEUE_ARGUMENT_HEADERS;

/// The queue a subscription consumes, and whether it is a durable subscription's own.
struct SubscriptionQueue {
    name: String,
    durable: bool,
}

impl Connection {
    pub(super) async fn on_subscribe(&mut self, frame: &Frame) -> Result<(), Violation> {
        let text = frame
            .header("destination")
            .ok_or_else(|| Violation::missing(Command::Subscribe, "destination"))?;
        let destination = Destination::parse(text)
            .map_err(|error| Violation::new("invalid destination", error.to_string()))?;
        // STOMP 1.0 has no required `id`; the destination then names the subscription.
        let id = match (frame.header("id"), self.version) {
            (Some(id), _) => id,
            (None, Some(Version::V1_0)) => text,
            (None, _) => return Err(Violation::missing(Command::Subscribe, "id")),
        };
        let mode = AckMode::parse(frame.header("ack")).ok_or_else(|| {
            Violation::new(
                "invalid ack mode",
                "ack must be auto, client or client-individual",
            )
        })?;
        let prefetch = match frame.header("prefetch-count") {
            Some(text) => text.trim().parse::<u32>().map_err(|_| {
                Violation::new("invalid header", "prefetch-count must be a whole number")
            })?,
            None if mode == AckMode::Auto => 0,
            None => PREFETCH_DEFAULT,
        };
        if self.opened_mut()?.subscriptions.contains_key(id) {
            return Err(Violation::new(
                "duplicate subscription",
                format!("subscription id '{id}' is already in use on this connection"),
            ));
        }
        let queue = self.subscription_queue(&destination, frame).await?;
        let durable_queue = queue.durable.then(|| queue.name.clone());
        self.consume(id, &queue.name, mode, prefetch, durable_queue)
            .await
    }

    /// Starts consuming `queue` for subscription `id`.
    async fn consume(
        &mut self,
        id: &str,
        queue: &str,
        mode: AckMode,
        prefetch: u32,
        durable_queue: Option<String>,
    ) -> Result<(), Violation> {
        let connection = self.id;
        let opened = self.opened_mut()?;
        let queue = opened
            .vhost
            .queue(queue, connection)
            .map_err(|error| Violation::broker(&error))?;
        let consumer = ConsumerId::next();
        let spec = ConsumeSpec {
            consumer,
            connection,
            tag: id.to_owned(),
            no_ack: mode == AckMode::Auto,
            exclusive: false,
            prefetch,
            sink: opened.sink.clone(),
        };
        queue
            .consume(spec)
            .await
            .map_err(|error| Violation::broker(&error))?;
        opened.by_consumer.insert(consumer, id.to_owned());
        let subscription = Subscription {
            queue,
            consumer,
            mode,
            durable_queue,
        };
        opened.subscriptions.insert(id.to_owned(), subscription);
        Ok(())
    }

    /// Finds or makes the queue a SUBSCRIBE to `destination` consumes.
    async fn subscription_queue(
        &mut self,
        destination: &Destination,
        frame: &Frame,
    ) -> Result<SubscriptionQueue, Violation> {
        let (exchange, key) = match destination {
            Destination::Queue(name) => {
                self.declare_queue(name, frame)?;
                return Ok(SubscriptionQueue {
                    name: name.clone(),
                    durable: false,
                });
            }
            Destination::AmqQueue(name) => {
                self.check_queue(name)?;
                return Ok(SubscriptionQueue {
                    name: name.clone(),
                    durable: false,
                });
            }
            Destination::Topic(key) => (TOPIC_EXCHANGE, key.as_str()),
            Destination::Exchange { exchange, key } => (exchange.as_str(), key.as_str()),
            Destination::ReplyQueue(_) | Destination::TempQueue(_) => {
                return Err(Violation::new(
                    "invalid destination",
                    "reply queues are consumed by the connection that created them; \
                     subscribe to /queue/, /topic/, /exchange/ or /amq/queue/",
                ));
            }
        };
        self.bound_queue(exchange, key, frame)
    }

    /// A queue of this subscription's own, bound to `exchange` with `key`: durable and named
    /// after the subscription for `durable:true` (or `persistent:true`), else exclusive and
    /// deleted with its consumer.
    fn bound_queue(
        &mut self,
        exchange: &str,
        key: &str,
        frame: &Frame,
    ) -> Result<SubscriptionQueue, Violation> {
        let durable = is_true(frame, "durable") || is_true(frame, "persistent");
        let name = match (frame.header("x-queue-name"), durable, frame.header("id")) {
            (Some(name), _, _) => name.to_owned(),
            (None, true, Some(id)) => durable_queue_name(id, frame),
            (None, true, None) => return Err(Violation::missing(Command::Subscribe, "id")),
            (None, false, _) => {
                format!("stomp-subscription-{}-{}", self.id.0, ConsumerId::next().0)
            }
        };
        let spec = QueueSpec {
            name: name.clone(),
            durable,
            exclusive: !durable,
            auto_delete: !durable || is_true(frame, "auto-delete"),
            arguments: queue_arguments(frame),
        };
        let connection = self.id;
        let opened = self.opened_mut()?;
        let vhost = &opened.vhost;
        vhost
            .declare_queue(spec, false, connection)
            .map_err(|error| Violation::broker(&error))?;
        let binding = BindingSpec {
            source: exchange.to_owned(),
            destination: Target::Queue(name.clone()),
            routing_key: key.to_owned(),
            arguments: Headers::new(),
        };
        vhost
            .bind(binding, connection)
            .map_err(|error| Violation::broker(&error))?;
        opened.known_queues.insert(name.clone());
        Ok(SubscriptionQueue { name, durable })
    }

    /// UNSUBSCRIBE: cancels the consumer and returns its unacknowledged deliveries to the queue;
    /// with `durable:true` (or `persistent:true`) a durable subscription's queue is deleted.
    pub(super) async fn on_unsubscribe(&mut self, frame: &Frame) -> Result<(), Violation> {
        let id = match (frame.header("id"), self.version) {
            (Some(id), _) => id,
            (None, Some(Version::V1_0)) => frame
                .header("destination")
                .ok_or_else(|| Violation::missing(Command::Unsubscribe, "id"))?,
            (None, _) => return Err(Violation::missing(Command::Unsubscribe, "id")),
        };
        let connection = self.id;
        let opened = self.opened_mut()?;
        let subscription = opened.subscriptions.remove(id).ok_or_else(|| {
            Violation::new(
                "unknown subscription",
                format!("no subscription with id '{id}' on this connection"),
            )
        })?;
        opened.by_consumer.remove(&subscription.consumer);
        let vhost = Arc::clone(&opened.vhost);
        let durable_queue = subscription.durable_queue.clone();
        self.end_subscriptions(vec![subscription]).await;
        let forget = is_true(frame, "durable") || is_true(frame, "persistent");
        if let Some(queue) = durable_queue.filter(|_| forget) {
            vhost
                .delete_queue(&queue, false, false, connection)
                .await
                .map_err(|error| Violation::broker(&error))?;
        }
        Ok(())
    }

    /// Makes sure a SEND's queue exists: `/queue/` declares it, `/amq/queue/` must find it.
    pub(super) fn check_send_target(
        &mut self,
        destination: &Destination,
        frame: &Frame,
    ) -> Result<(), Violation> {
        match destination {
            Destination::Queue(name) => self.declare_queue(name, frame),
            Destination::AmqQueue(name) => self.check_queue(name),
            _ => Ok(()),
        }
    }

    /// `/queue/q`: the queue `q`, declared durable if it does not exist. An existing queue is
    /// used as it is, whoever declared it and however, so that AMQP-declared queues are
    /// reachable from STOMP.
    fn declare_queue(&mut self, name: &str, frame: &Frame) -> Result<(), Violation> {
        let connection = self.id;
        let opened = self.opened_mut()?;
        if opened.known_queues.contains(name) {
            return Ok(());
        }
        let spec = QueueSpec {
            name: name.to_owned(),
            durable: true,
            exclusive: false,
            auto_delete: false,
            arguments: queue_arguments(frame),
        };
        let vhost = &opened.vhost;
        if vhost.declare_queue(spec.clone(), true, connection).is_err() {
            vhost
                .declare_queue(spec, false, connection)
                .map_err(|error| Violation::broker(&error))?;
        }
        opened.known_queues.insert(name.to_owned());
        Ok(())
    }

    /// `/amq/queue/q`: the queue `q` must exist; it is never created.
    fn check_queue(&mut self, name: &str) -> Result<(), Violation> {
        let connection = self.id;
        let opened = self.opened_mut()?;
        if opened.known_queues.contains(name) {
            return Ok(());
        }
        let spec = QueueSpec {
            name: name.to_owned(),
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: Headers::new(),
        };
        opened
            .vhost
            .declare_queue(spec, true, connection)
            .map_err(|error| Violation::broker(&error))?;
        opened.known_queues.insert(name.to_owned());
        Ok(())
    }

    /// The core's `reply_to` for a SEND: a `/temp-queue/` is replaced by the real name of this
    /// connection's private queue for it (created, and consumed as subscription
    /// `/temp-queue/{name}`, on first use); anything else is kept.
    pub(super) async fn reply_to(&mut self, frame: &Frame) -> Result<Option<String>, Violation> {
        let Some(reply_to) = frame.header("reply-to") else {
            return Ok(None);
        };
        let Some(temp) = reply_to.strip_prefix("/temp-queue/") else {
            return Ok(Some(reply_to.to_owned()));
        };
        if let Some(real) = self.opened_mut()?.temp_queues.get(temp) {
            return Ok(Some(real.clone()));
        }
        let real = format!("stomp-temp-{}-{}", self.id.0, ConsumerId::next().0);
        let spec = QueueSpec {
            name: real.clone(),
            durable: false,
            exclusive: true,
            auto_delete: false,
            arguments: Headers::new(),
        };
        let connection = self.id;
        let opened = self.opened_mut()?;
        opened
            .vhost
            .declare_queue(spec, false, connection)
            .map_err(|error| Violation::broker(&error))?;
        opened.temp_queues.insert(temp.to_owned(), real.clone());
        // RabbitMQ's rule: replies arrive on subscription `/temp-queue/{name}`, acknowledged
        // automatically.
        self.consume(reply_to, &real, AckMode::Auto, 0, None)
            .await?;
        Ok(Some(real))
    }
}

fn is_true(frame: &Frame, name: &str) -> bool {
    frame
        .header(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The queue of durable subscription `id` to the frame's destination: one per (id,
/// destination), as RabbitMQ does, readable in listings.
fn durable_queue_name(id: &str, frame: &Frame) -> String {
    let destination = frame.header("destination").unwrap_or_default();
    let destination = destination.trim_start_matches('/').replace('/', ".");
    format!("stomp-subscription-{destination}-{id}")
}

/// Queue arguments from RabbitMQ's `x-` headers (ttl, length limits, dead-lettering,
/// priority), typed as the core parses them: numbers for numbers, text for names.
fn queue_arguments(frame: &Frame) -> Headers {
    let mut arguments = Headers::new();
    for &name in QUEUE_ARGUMENT_HEADERS {
        let Some(value) = frame.header(name).filter(|_| name != "x-queue-name") else {
            continue;
        };
        let value = match value.trim().parse::<i64>() {
            Ok(number) => HeaderValue::I64(number),
            Err(_) => HeaderValue::String(value.to_owned()),
        };
        arguments.insert(name, value);
    }
    arguments
}
