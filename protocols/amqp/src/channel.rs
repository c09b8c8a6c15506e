//! One AMQP channel: turns its commands into calls on the broker and records what it must
//! remember (consumers, unacknowledged deliveries, confirm and transaction state).
//!
//! Runs on the connection task. Soft errors come back as a channel-level [`Violation`]; the
//! connection then closes the channel and calls [`Channel::release`].

mod messages;
mod modes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic, channel, confirm, exchange, queue};
use amq_protocol::types::ShortString;
use mqbridge_broker_api::{
    BindingSpec, BrokerError, ConsumerId, Destination, ExchangeKind, ExchangeSpec, QueueHandle,
    QueueSpec, Settlement,
};

use crate::codec::reply_code;
use crate::connection::{Ctx, Output};
use crate::session::{Content, Violation};
use crate::translate::{reply_for, table_in};

/// What the connection must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// The client closed the channel: release it and answer close-ok.
    Closed,
}

#[derive(Debug)]
struct ConsumerEntry {
    id: ConsumerId,
    tag: ShortString,
    queue: Arc<dyn QueueHandle>,
    no_ack: bool,
}

/// A delivery the client has not settled yet.
#[derive(Debug)]
struct Unacked {
    queue: Arc<dyn QueueHandle>,
    owner: ConsumerId,
    tag: u64,
}

#[derive(Debug, Default)]
struct ConfirmMode {
    next_seq: u64,
    outstanding: BTreeSet<u64>,
}

/// Commands held back until tx.commit.
#[derive(Debug, Default)]
struct Transaction {
    publishes: Vec<(basic::Publish, Content)>,
    /// Deliveries settled in the transaction. They leave `unacked` when the ack arrives, so
    /// that its tag is checked then, as RabbitMQ does; rollback puts them back.
    settles: Vec<(BTreeMap<u64, Unacked>, Settlement)>,
}

#[derive(Debug)]
pub struct Channel {
    pub id: u16,
    /// Distinguishes this channel from a later one with the same id in confirm ids.
    pub incarnation: u64,
    prefetch: u32,
    consumers: HashMap<ShortString, ConsumerEntry>,
    tags_by_id: HashMap<ConsumerId, ShortString>,
    unacked: BTreeMap<u64, Unacked>,
    next_delivery_tag: u64,
    /// Owner of messages taken with basic.get.
    getter: ConsumerId,
    confirm: Option<ConfirmMode>,
    tx: Option<Transaction>,
    last_queue: Option<String>,
}

/// Bits of a confirm id left for the sequence number; the rest name the channel incarnation.
pub const CONFIRM_SEQ_BITS: u32 = 40;

impl Channel {
    pub fn new(id: u16, incarnation: u64) -> Self {
        Channel {
            id,
            incarnation,
            prefetch: 0,
            consumers: HashMap::new(),
            tags_by_id: HashMap::new(),
            unacked: BTreeMap::new(),
            next_delivery_tag: 1,
            getter: ConsumerId::next(),
            confirm: None,
            tx: None,
            last_queue: None,
        }
    }

    fn soft(&self, error: BrokerError) -> Violation {
        let (code, hard) = reply_for(&error);
        match hard {
            true => Violation::connection(code, error.to_string()),
            false => Violation::channel(self.id, code, error.to_string()),
        }
    }

    fn precondition(&self, text: impl Into<String>) -> Violation {
        Violation::channel(self.id, reply_code::PRECONDITION_FAILED, text)
    }

    pub async fn handle(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        method: AMQPClass,
        content: Option<Content>,
    ) -> Result<Next, Violation> {
        let during = method.clone();
        let result = match method {
            AMQPClass::Basic(m) => self.basic(ctx, out, m, content).await,
            AMQPClass::Queue(m) => self.queue(ctx, out, m).await,
            AMQPClass::Exchange(m) => self.exchange(ctx, out, m),
            AMQPClass::Channel(m) => return self.channel(out, m).map_err(|v| v.during(&during)),
            AMQPClass::Tx(m) => self.transaction(ctx, out, m).await,
            AMQPClass::Confirm(confirm::AMQPMethod::Select(select)) => {
                self.confirm_select(out, select)
            }
            _ => Err(Violation::connection(
                reply_code::COMMAND_INVALID,
                "method not allowed here",
            )),
        };
        result
            .map(|()| Next::Continue)
            .map_err(|v| v.during(&during))
    }

    fn channel(
        &mut self,
        out: &mut Output,
        method: channel::AMQPMethod,
    ) -> Result<Next, Violation> {
        use channel::AMQPMethod as M;
        match method {
            M::Open(_) => out.method(self.id, AMQPClass::Channel(M::OpenOk(channel::OpenOk {}))),
            M::Flow(flow) if flow.active => out.method(
                self.id,
                AMQPClass::Channel(M::FlowOk(channel::FlowOk { active: true })),
            ),
            // RabbitMQ refuses consumer flow control by the client too: credit (basic.qos) is
            // the way to slow deliveries down.
            M::Flow(_) => {
                return Err(Violation::connection(
                    reply_code::NOT_IMPLEMENTED,
                    "active=false",
                ));
            }
            M::FlowOk(_) | M::CloseOk(_) => {}
            M::Close(_) => return Ok(Next::Closed),
            M::OpenOk(_) => {
                return Err(Violation::connection(
                    reply_code::COMMAND_INVALID,
                    "channel.open-ok is sent by servers",
                ));
            }
        }
        Ok(Next::Continue)
    }

    /// The queue a method names, or the channel's last declared queue when the name is empty
    /// (AMQP 0-9-1 §1.7.2.1 "the client MAY use an empty queue name").
    fn queue_name(&self, name: &ShortString) -> Result<String, Violation> {
        if !name.as_str().is_empty() {
            return Ok(name.as_str().to_owned());
        }
        self.last_queue.clone().ok_or_else(|| {
            Violation::channel(
                self.id,
                reply_code::NOT_FOUND,
                "no previously declared queue",
            )
        })
    }

    async fn queue(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        method: queue::AMQPMethod,
    ) -> Result<(), Violation> {
        use queue::AMQPMethod as M;
        let reply = match method {
            M::Declare(declare) => return self.queue_declare(ctx, out, declare),
            M::Bind(bind) => {
                let spec = BindingSpec {
                    source: bind.exchange.as_str().to_owned(),
                    destination: Destination::Queue(self.queue_name(&bind.queue)?),
                    routing_key: bind.routing_key.as_str().to_owned(),
                    arguments: table_in(&bind.arguments),
                };
                ctx.vhost
                    .bind(spec, ctx.connection)
                    .map_err(|e| self.soft(e))?;
                (!bind.nowait).then_some(M::BindOk(queue::BindOk {}))
            }
            M::Unbind(unbind) => {
                let spec = BindingSpec {
                    source: unbind.exchange.as_str().to_owned(),
                    destination: Destination::Queue(self.queue_name(&unbind.queue)?),
                    routing_key: unbind.routing_key.as_str().to_owned(),
                    arguments: table_in(&unbind.arguments),
                };
                ctx.vhost
                    .unbind(spec, ctx.connection)
                    .map_err(|e| self.soft(e))?;
                Some(M::UnbindOk(queue::UnbindOk {}))
            }
            M::Purge(purge) => {
                let name = self.queue_name(&purge.queue)?;
                let queue = ctx
                    .vhost
                    .queue(&name, ctx.connection)
                    .map_err(|e| self.soft(e))?;
                let message_count = queue.purge().await.map_err(|e| self.soft(e))?;
                (!purge.nowait).then_some(M::PurgeOk(queue::PurgeOk { message_count }))
            }
            M::Delete(delete) => {
                let name = self.queue_name(&delete.queue)?;
                let deleted = ctx.vhost.delete_queue(
                    &name,
                    delete.if_unused,
                    delete.if_empty,
                    ctx.connection,
                );
                let message_count = deleted.await.map_err(|e| self.soft(e))?;
                (!delete.nowait).then_some(M::DeleteOk(queue::DeleteOk { message_count }))
            }
            _ => return Err(server_only()),
        };
        if let Some(reply) = reply {
            out.method(self.id, AMQPClass::Queue(reply));
        }
        Ok(())
    }

    fn queue_declare(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        declare: queue::Declare,
    ) -> Result<(), Violation> {
        let name = match (declare.queue.as_str().is_empty(), declare.passive) {
            (true, true) => self.queue_name(&declare.queue)?,
            _ => declare.queue.as_str().to_owned(),
        };
        let spec = QueueSpec {
            name,
            durable: declare.durable,
            exclusive: declare.exclusive,
            auto_delete: declare.auto_delete,
            arguments: table_in(&declare.arguments),
        };
        let declared = ctx
            .vhost
            .declare_queue(spec, declare.passive, ctx.connection)
            .map_err(|e| self.soft(e))?;
        self.last_queue = Some(declared.name.clone());
        if !declare.nowait {
            let ok = queue::DeclareOk {
                queue: ShortString::from(declared.name),
                message_count: declared.message_count,
                consumer_count: declared.consumer_count,
            };
            out.method(self.id, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)));
        }
        Ok(())
    }

    fn exchange(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        method: exchange::AMQPMethod,
    ) -> Result<(), Violation> {
        use exchange::AMQPMethod as M;
        let reply = match method {
            M::Declare(declare) => {
                let kind = match ExchangeKind::parse(declare.kind.as_str()) {
                    Some(kind) => kind,
                    None if declare.passive => ExchangeKind::Direct,
                    None => {
                        let text = format!("unknown exchange type '{}'", declare.kind.as_str());
                        return Err(Violation::connection(reply_code::COMMAND_INVALID, text));
                    }
                };
                let spec = ExchangeSpec {
                    name: declare.exchange.as_str().to_owned(),
                    kind,
                    durable: declare.durable,
                    auto_delete: declare.auto_delete,
                    internal: declare.internal,
                    arguments: table_in(&declare.arguments),
                };
                ctx.vhost
                    .declare_exchange(spec, declare.passive)
                    .map_err(|e| self.soft(e))?;
                (!declare.nowait).then_some(M::DeclareOk(exchange::DeclareOk {}))
            }
            M::Delete(delete) => {
                ctx.vhost
                    .delete_exchange(delete.exchange.as_str(), delete.if_unused)
                    .map_err(|e| self.soft(e))?;
                (!delete.nowait).then_some(M::DeleteOk(exchange::DeleteOk {}))
            }
            M::Bind(bind) => {
                let spec = exchange_binding(
                    &bind.source,
                    &bind.destination,
                    &bind.routing_key,
                    &bind.arguments,
                );
                ctx.vhost
                    .bind(spec, ctx.connection)
                    .map_err(|e| self.soft(e))?;
                (!bind.nowait).then_some(M::BindOk(exchange::BindOk {}))
            }
            M::Unbind(unbind) => {
                let spec = exchange_binding(
                    &unbind.source,
                    &unbind.destination,
                    &unbind.routing_key,
                    &unbind.arguments,
                );
                ctx.vhost
                    .unbind(spec, ctx.connection)
                    .map_err(|e| self.soft(e))?;
                (!unbind.nowait).then_some(M::UnbindOk(exchange::UnbindOk {}))
            }
            _ => return Err(server_only()),
        };
        if let Some(reply) = reply {
            out.method(self.id, AMQPClass::Exchange(reply));
        }
        Ok(())
    }

    /// Cancels every consumer; the connection then drains its sink and calls `release`.
    pub async fn cancel_consumers(&mut self) -> Vec<ConsumerId> {
        let mut ids = Vec::with_capacity(self.consumers.len());
        for entry in self.consumers.values() {
            entry.queue.cancel(entry.id).await;
            ids.push(entry.id);
        }
        ids
    }

    /// Requeues everything unsettled and forgets consumers: the channel is closing.
    pub async fn release(&mut self) {
        if self.tx.is_some() {
            self.restore_settled();
        }
        self.requeue_all().await;
        self.consumers.clear();
        self.tags_by_id.clear();
    }
}

fn exchange_binding(
    source: &ShortString,
    destination: &ShortString,
    key: &ShortString,
    arguments: &amq_protocol::types::FieldTable,
) -> BindingSpec {
    BindingSpec {
        source: source.as_str().to_owned(),
        destination: Destination::Exchange(destination.as_str().to_owned()),
        routing_key: key.as_str().to_owned(),
        arguments: table_in(arguments),
    }
}

fn server_only() -> Violation {
    Violation::connection(
        reply_code::COMMAND_INVALID,
        "method is sent by servers, not clients",
    )
}
