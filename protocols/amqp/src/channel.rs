//! One AMQP channel: turns its commands into calls on the broker and records what it must
//! remember (consumers, unacknowledged deliveries, confirm and transaction state).
//!
//! Runs on the connection task. Soft errors come back as a channel-level [`Violation`]; the
//! connection then closes the channel and calls [`Channel::release`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic, channel, confirm, exchange, queue, tx};
use amq_protocol::types::ShortString;
use mqbridge_broker_api::{
    BindingSpec, BrokerError, ConsumeSpec, ConsumerId, Delivery, Destination, ExchangeKind,
    ExchangeSpec, Message, QueueHandle, QueueSpec, Settlement,
};

use crate::codec::reply_code;
use crate::connection::{Ctx, Output};
use crate::session::{Content, Violation};
use crate::translate::{properties_in, properties_out, reply_for, table_in};

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

    async fn basic(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        method: basic::AMQPMethod,
        content: Option<Content>,
    ) -> Result<(), Violation> {
        use basic::AMQPMethod as M;
        match method {
            M::Publish(publish) => {
                let content = content.ok_or_else(|| {
                    Violation::connection(reply_code::FRAME_ERROR, "publish without content")
                })?;
                match &mut self.tx {
                    Some(tx) => tx.publishes.push((publish, content)),
                    None => self.publish(ctx, out, publish, content).await?,
                }
            }
            M::Qos(qos) => {
                // Per-consumer limits for consumers created after this call. `global` asks for a
                // limit shared by the channel's consumers; queues run on separate tasks, so we
                // apply the same number per consumer instead (documented in ARCHITECTURE.md).
                self.prefetch = u32::from(qos.prefetch_count);
                out.method(self.id, AMQPClass::Basic(M::QosOk(basic::QosOk {})));
            }
            M::Consume(consume) => self.consume(ctx, out, consume).await?,
            M::Cancel(cancel) => self.cancel(ctx, out, cancel).await,
            M::Get(get) => self.get(ctx, out, get).await?,
            M::Ack(ack) => {
                self.settle(ack.delivery_tag, ack.multiple, Settlement::Ack)
                    .await?
            }
            M::Reject(reject) => {
                self.settle(
                    reject.delivery_tag,
                    false,
                    requeue_or_reject(reject.requeue),
                )
                .await?
            }
            M::Nack(nack) => {
                self.settle(
                    nack.delivery_tag,
                    nack.multiple,
                    requeue_or_reject(nack.requeue),
                )
                .await?
            }
            M::Recover(_) => {
                self.requeue_all().await;
                out.method(self.id, AMQPClass::Basic(M::RecoverOk(basic::RecoverOk {})));
            }
            M::RecoverAsync(_) => self.requeue_all().await,
            _ => return Err(server_only()),
        }
        Ok(())
    }

    async fn publish(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        publish: basic::Publish,
        content: Content,
    ) -> Result<(), Violation> {
        if publish.immediate {
            return Err(Violation::connection(
                reply_code::NOT_IMPLEMENTED,
                "immediate=true",
            ));
        }
        let properties =
            properties_in(&content.properties).map_err(|text| self.precondition(text))?;
        if let Some(user_id) = properties.user_id.as_deref().filter(|id| *id != ctx.user) {
            return Err(self.precondition(format!(
                "user_id property set to '{user_id}' but authenticated user was '{}'",
                ctx.user
            )));
        }
        let message = Arc::new(Message {
            exchange: publish.exchange.as_str().to_owned(),
            routing_key: publish.routing_key.as_str().to_owned(),
            properties,
            body: content.body,
        });
        ctx.routes.clear();
        let routed = ctx.vhost.route(
            &message.exchange,
            &message.routing_key,
            &message.properties.headers,
            &mut ctx.routes,
        );
        routed.map_err(|e| self.soft(e))?;
        ctx.published = true;
        if ctx.routes.is_empty() && publish.mandatory {
            let returned = basic::Return {
                reply_code: reply_code::NO_ROUTE,
                reply_text: ShortString::from("NO_ROUTE".to_owned()),
                exchange: publish.exchange,
                routing_key: publish.routing_key,
            };
            out.content(
                self.id,
                &AMQPClass::Basic(basic::AMQPMethod::Return(returned)),
                &content.properties,
                &message.body,
            );
        }
        let ticket = match &mut self.confirm {
            Some(mode) => {
                mode.next_seq += 1;
                mode.outstanding.insert(mode.next_seq);
                let id = (self.incarnation << CONFIRM_SEQ_BITS) | mode.next_seq;
                ctx.confirms.tickets(id, ctx.routes.len())
            }
            None => None,
        };
        for queue in ctx.routes.drain(..) {
            queue.publish(Arc::clone(&message), ticket.clone()).await;
        }
        Ok(())
    }

    async fn consume(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        consume: basic::Consume,
    ) -> Result<(), Violation> {
        let name = self.queue_name(&consume.queue)?;
        let queue = ctx
            .vhost
            .queue(&name, ctx.connection)
            .map_err(|e| self.soft(e))?;
        let tag = match consume.consumer_tag.as_str() {
            "" => ShortString::from(generated_consumer_tag()),
            _ => consume.consumer_tag.clone(),
        };
        if self.consumers.contains_key(&tag) {
            let text = format!("attempt to reuse consumer tag '{}'", tag.as_str());
            return Err(Violation::connection(reply_code::NOT_ALLOWED, text));
        }
        let id = ConsumerId::next();
        let spec = ConsumeSpec {
            consumer: id,
            connection: ctx.connection,
            tag: tag.as_str().to_owned(),
            no_ack: consume.no_ack,
            exclusive: consume.exclusive,
            prefetch: self.prefetch,
            sink: ctx.sink.clone(),
        };
        queue.consume(spec).await.map_err(|e| self.soft(e))?;
        if !consume.nowait {
            let ok = basic::ConsumeOk {
                consumer_tag: tag.clone(),
            };
            out.method(self.id, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)));
        }
        ctx.consumer_channels.insert(id, self.id);
        self.tags_by_id.insert(id, tag.clone());
        self.consumers.insert(
            tag.clone(),
            ConsumerEntry {
                id,
                tag,
                queue,
                no_ack: consume.no_ack,
            },
        );
        Ok(())
    }

    async fn cancel(&mut self, ctx: &mut Ctx, out: &mut Output, cancel: basic::Cancel) {
        // Cancelling an unknown tag is not an error (AMQP 0-9-1 §1.8.3.5 basic.cancel).
        if let Some(entry) = self.consumers.remove(&cancel.consumer_tag) {
            entry.queue.cancel(entry.id).await;
            // Deliveries the queue sent before it saw the cancel are already in our sink; take
            // them now so that they reach the client before cancel-ok, as the spec orders.
            ctx.drain_deliveries(self, out, true);
            self.tags_by_id.remove(&entry.id);
            ctx.consumer_channels.remove(&entry.id);
        }
        if !cancel.nowait {
            let ok = basic::CancelOk {
                consumer_tag: cancel.consumer_tag,
            };
            out.method(self.id, AMQPClass::Basic(basic::AMQPMethod::CancelOk(ok)));
        }
    }

    /// The queue told us it cancelled a consumer (it was deleted).
    pub fn consumer_cancelled(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        id: ConsumerId,
        notify: bool,
    ) {
        ctx.consumer_channels.remove(&id);
        let Some(tag) = self.tags_by_id.remove(&id) else {
            return;
        };
        self.consumers.remove(&tag);
        if notify {
            let cancel = basic::Cancel {
                consumer_tag: tag,
                nowait: true,
            };
            out.method(self.id, AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)));
        }
    }

    async fn get(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        get: basic::Get,
    ) -> Result<(), Violation> {
        let name = self.queue_name(&get.queue)?;
        let queue = ctx
            .vhost
            .queue(&name, ctx.connection)
            .map_err(|e| self.soft(e))?;
        let Some(got) = queue
            .get(self.getter, get.no_ack)
            .await
            .map_err(|e| self.soft(e))?
        else {
            out.method(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
            );
            return Ok(());
        };
        let delivery_tag = self.next_tag();
        if !get.no_ack {
            let unacked = Unacked {
                queue,
                owner: self.getter,
                tag: got.delivery.tag,
            };
            self.unacked.insert(delivery_tag, unacked);
        }
        let message = &got.delivery.message;
        let ok = basic::GetOk {
            delivery_tag,
            redelivered: got.delivery.redelivered,
            exchange: ShortString::from(message.exchange.clone()),
            routing_key: ShortString::from(message.routing_key.clone()),
            message_count: got.message_count,
        };
        let properties = properties_out(&message.properties);
        out.content(
            self.id,
            &AMQPClass::Basic(basic::AMQPMethod::GetOk(ok)),
            &properties,
            &message.body,
        );
        Ok(())
    }

    fn next_tag(&mut self) -> u64 {
        let tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        tag
    }

    /// Writes one delivery from a queue to the client. `write` is false while the channel is
    /// being released: the delivery is only recorded, to be requeued.
    pub fn deliver(&mut self, out: &mut Output, delivery: Delivery, write: bool) {
        let Some(entry) = self
            .tags_by_id
            .get(&delivery.consumer)
            .and_then(|t| self.consumers.get(t))
        else {
            // Only possible for a consumer cancelled with its deliveries drained; see cancel().
            tracing::warn!(
                consumer = delivery.consumer.0,
                "delivery for an unknown consumer dropped"
            );
            return;
        };
        let delivery_tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        if !entry.no_ack {
            let unacked = Unacked {
                queue: Arc::clone(&entry.queue),
                owner: entry.id,
                tag: delivery.tag,
            };
            self.unacked.insert(delivery_tag, unacked);
        }
        if !write {
            return;
        }
        let message = &delivery.message;
        let deliver = basic::Deliver {
            consumer_tag: entry.tag.clone(),
            delivery_tag,
            redelivered: delivery.redelivered,
            exchange: ShortString::from(message.exchange.clone()),
            routing_key: ShortString::from(message.routing_key.clone()),
        };
        let properties = properties_out(&message.properties);
        out.content(
            self.id,
            &AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver)),
            &properties,
            &message.body,
        );
    }

    async fn settle(
        &mut self,
        delivery_tag: u64,
        multiple: bool,
        settlement: Settlement,
    ) -> Result<(), Violation> {
        let taken = self.take_unacked(delivery_tag, multiple)?;
        match &mut self.tx {
            Some(tx) => tx.settles.push((taken, settlement)),
            None => settle_grouped(taken.into_values().collect(), settlement).await,
        }
        Ok(())
    }

    /// Removes the deliveries an ack/nack/reject names. [AMQP 0-9-1 basic.ack] "a delivery tag
    /// of zero with multiple set means all outstanding messages".
    fn take_unacked(
        &mut self,
        delivery_tag: u64,
        multiple: bool,
    ) -> Result<BTreeMap<u64, Unacked>, Violation> {
        if multiple {
            let rest = match delivery_tag {
                0 => BTreeMap::new(),
                tag => self.unacked.split_off(&(tag + 1)),
            };
            let taken = std::mem::replace(&mut self.unacked, rest);
            if taken.is_empty() && delivery_tag != 0 {
                return Err(self.precondition(format!("unknown delivery tag {delivery_tag}")));
            }
            return Ok(taken);
        }
        match self.unacked.remove(&delivery_tag) {
            Some(one) => Ok(BTreeMap::from([(delivery_tag, one)])),
            None => Err(self.precondition(format!("unknown delivery tag {delivery_tag}"))),
        }
    }

    async fn requeue_all(&mut self) {
        let all = std::mem::take(&mut self.unacked);
        settle_grouped(all.into_values().collect(), Settlement::Requeue).await;
    }

    async fn transaction(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        method: tx::AMQPMethod,
    ) -> Result<(), Violation> {
        use tx::AMQPMethod as M;
        let reply = match method {
            M::Select(_) if self.confirm.is_some() => {
                return Err(self.precondition("cannot switch from confirm to tx mode"));
            }
            M::Select(_) => {
                self.tx.get_or_insert_with(Transaction::default);
                M::SelectOk(tx::SelectOk {})
            }
            M::Commit(_) | M::Rollback(_) if self.tx.is_none() => {
                return Err(self.precondition("channel is not transactional"));
            }
            M::Commit(_) => {
                let work = self.tx.replace(Transaction::default()).unwrap_or_default();
                self.commit(ctx, out, work).await?;
                M::CommitOk(tx::CommitOk {})
            }
            M::Rollback(_) => {
                self.restore_settled();
                M::RollbackOk(tx::RollbackOk {})
            }
            _ => return Err(server_only()),
        };
        out.method(self.id, AMQPClass::Tx(reply));
        Ok(())
    }

    async fn commit(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        work: Transaction,
    ) -> Result<(), Violation> {
        let mut result = Ok(());
        for (publish, content) in work.publishes {
            result = result.and(self.publish(ctx, out, publish, content).await);
        }
        for (taken, settlement) in work.settles {
            settle_grouped(taken.into_values().collect(), settlement).await;
        }
        result
    }

    /// Ends the transaction's work undone: its publishes are dropped and the deliveries it
    /// settled are unsettled again.
    fn restore_settled(&mut self) {
        let work = self.tx.replace(Transaction::default()).unwrap_or_default();
        for (taken, _) in work.settles {
            self.unacked.extend(taken);
        }
    }

    fn confirm_select(
        &mut self,
        out: &mut Output,
        select: confirm::Select,
    ) -> Result<(), Violation> {
        if self.tx.is_some() {
            return Err(self.precondition("cannot switch from tx to confirm mode"));
        }
        self.confirm.get_or_insert_with(ConfirmMode::default);
        if !select.nowait {
            out.method(
                self.id,
                AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
            );
        }
        Ok(())
    }

    /// Writes finished confirms for this channel. Runs of acks below every outstanding sequence
    /// number collapse into one `multiple` ack, which is what keeps confirm traffic small.
    pub fn confirmed(&mut self, out: &mut Output, done: &mut Vec<(u64, bool)>) {
        let Some(mode) = &mut self.confirm else {
            return;
        };
        done.retain(|(seq, _)| mode.outstanding.remove(seq));
        done.sort_unstable();
        let floor = mode.outstanding.first().copied().unwrap_or(u64::MAX);
        let mut pending_multiple: Option<u64> = None;
        for &(seq, accepted) in done.iter() {
            if accepted && seq < floor {
                pending_multiple = Some(seq);
                continue;
            }
            let method = match accepted {
                true => basic::AMQPMethod::Ack(basic::Ack {
                    delivery_tag: seq,
                    multiple: false,
                }),
                false => basic::AMQPMethod::Nack(basic::Nack {
                    delivery_tag: seq,
                    multiple: false,
                    requeue: false,
                }),
            };
            out.method(self.id, AMQPClass::Basic(method));
        }
        if let Some(seq) = pending_multiple {
            let ack = basic::Ack {
                delivery_tag: seq,
                multiple: true,
            };
            out.method(self.id, AMQPClass::Basic(basic::AMQPMethod::Ack(ack)));
        }
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

fn requeue_or_reject(requeue: bool) -> Settlement {
    if requeue {
        Settlement::Requeue
    } else {
        Settlement::Reject
    }
}

/// Settles deliveries with one call per (queue, owner), in tag order.
async fn settle_grouped(deliveries: Vec<Unacked>, settlement: Settlement) {
    let mut groups: Vec<(Arc<dyn QueueHandle>, ConsumerId, Vec<u64>)> = Vec::new();
    for unacked in deliveries {
        let same = |(queue, owner, _): &&mut (Arc<dyn QueueHandle>, ConsumerId, Vec<u64>)| {
            Arc::ptr_eq(queue, &unacked.queue) && *owner == unacked.owner
        };
        match groups.iter_mut().rev().find(same) {
            Some(group) => group.2.push(unacked.tag),
            None => groups.push((unacked.queue, unacked.owner, vec![unacked.tag])),
        }
    }
    for (queue, owner, tags) in groups {
        queue.settle(owner, tags, settlement).await;
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

/// `amq.ctag-` and random characters, as RabbitMQ names consumers.
fn generated_consumer_tag() -> String {
    format!(
        "amq.ctag-{:016x}{:08x}",
        ConsumerId::next().0.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        std::process::id()
    )
}
