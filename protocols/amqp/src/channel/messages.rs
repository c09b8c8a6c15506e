//! The basic class: publishing, consuming, getting, delivering and settling messages. The hot
//! path of a channel lives here.

use std::collections::BTreeMap;
use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic};
use amq_protocol::types::ShortString;
use mqbridge_broker_api::{
    ConsumeSpec, ConsumerId, Delivery, Message, QueueHandle, ReplyAddress, Settlement,
};

use super::{CONFIRM_SEQ_BITS, Channel, ConsumerEntry, Unacked, server_only};
use crate::codec::reply_code;
use crate::connection::{Ctx, Output};
use crate::session::{Content, Violation};
use crate::translate::{properties_in, properties_out};

impl Channel {
    pub(super) async fn basic(
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
                let settled = self
                    .settle(ack.delivery_tag, ack.multiple, Settlement::Ack)
                    .await?;
                ctx.acknowledged(settled);
            }
            M::Reject(reject) => {
                self.settle(
                    reject.delivery_tag,
                    false,
                    requeue_or_reject(reject.requeue),
                )
                .await?;
            }
            M::Nack(nack) => {
                self.settle(
                    nack.delivery_tag,
                    nack.multiple,
                    requeue_or_reject(nack.requeue),
                )
                .await?;
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

    pub(super) async fn publish(
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
        let (exchange, routing_key) = destination(&publish);
        let message = Arc::new(Message {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            properties,
            body: content.body,
            body_md5: Default::default(),
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
        ctx.published();
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

    pub(super) async fn consume(
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

    pub(super) async fn cancel(&mut self, ctx: &mut Ctx, out: &mut Output, cancel: basic::Cancel) {
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

    pub(super) async fn get(
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
        ctx.delivered();
        Ok(())
    }

    pub(super) fn next_tag(&mut self) -> u64 {
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

    /// Settles what an ack, nack or reject names; how many were settled now (none inside a
    /// transaction, where they wait for the commit).
    pub(super) async fn settle(
        &mut self,
        delivery_tag: u64,
        multiple: bool,
        settlement: Settlement,
    ) -> Result<usize, Violation> {
        let taken = self.take_unacked(delivery_tag, multiple)?;
        match &mut self.tx {
            Some(tx) => {
                tx.settles.push((taken, settlement));
                Ok(0)
            }
            None => {
                let settled = taken.len();
                settle_grouped(taken.into_values().collect(), settlement).await;
                Ok(settled)
            }
        }
    }

    /// Removes the deliveries an ack/nack/reject names. [AMQP 0-9-1 basic.ack] "a delivery tag
    /// of zero with multiple set means all outstanding messages".
    pub(super) fn take_unacked(
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

    pub(super) async fn requeue_all(&mut self) {
        let all = std::mem::take(&mut self.unacked);
        settle_grouped(all.into_values().collect(), Settlement::Requeue).await;
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
pub(super) async fn settle_grouped(deliveries: Vec<Unacked>, settlement: Settlement) {
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

/// `amq.ctag-` and random characters, as RabbitMQ names consumers.
fn generated_consumer_tag() -> String {
    format!(
        "amq.ctag-{:016x}{:08x}",
        ConsumerId::next().0.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        std::process::id()
    )
}

/// Where a publish goes. On the default exchange, a routing key that is a reply address
/// (`/topic/a.b`, `/exchange/x/rk`, `/queue/q`) goes to the address it spells: that is how an
/// AMQP responder reaches an MQTT or STOMP requester, by publishing to `""` with the request's
/// `reply_to` as the key. No AMQP queue name can begin with `/`.
fn destination(publish: &basic::Publish) -> (&str, &str) {
    let (exchange, key) = (publish.exchange.as_str(), publish.routing_key.as_str());
    match ReplyAddress::parse_address(key) {
        Some(address) if exchange.is_empty() => address.route(),
        _ => (exchange, key),
    }
}
