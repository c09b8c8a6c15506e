//! ReceiveMessage: short and long polling, visibility leases, and the redrive to a dead-letter
//! queue once a message has been received `maxReceiveCount` times.
//!
//! Short polling takes ready messages with `get`. Long polling, when none is ready, registers a
//! temporary consumer with prefetch = MaxNumberOfMessages and waits on its sink for the first
//! delivery (no busy polling), then cancels it; deliveries keep their owner after the cancel, so
//! they are settled later through their leases. Every delivery is leased as soon as it is taken,
//! so a request abandoned midway (client gone) still gets its messages back at the deadline.

use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use mqbridge_broker_api::{
    BrokerError, ConsumeSpec, ConsumerEvent, ConsumerId, Delivery, HeaderValue, QueueHandle,
    Settlement,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::attempts::{Answered, Attempts};
use crate::attributes::{self, MessageAttribute};
use crate::error::SqsError;
use crate::fifo;
use crate::leases::{Lease, Receipt};
use crate::move_tasks;
use crate::params::Params;
use crate::registry;
use crate::service::{ACCOUNT_ID, ResolvedQueue, SqsService, now_ms};
use crate::translate;

/// AWS: MaxNumberOfMessages is 1 to 10.
const MESSAGES_MAX: i64 = 10;
/// AWS: WaitTimeSeconds is 0 to 20.
const WAIT_SECONDS_MAX: i64 = 20;
/// AWS: VisibilityTimeout is 0 to 12 hours.
pub const VISIBILITY_SECONDS_MAX: i64 = 43_200;

/// A delivery taken for this request, and its lease's receipt handle.
struct Leased {
    delivery: Delivery,
    receipt: String,
    message_id: String,
}

/// What the request asked to see of each message.
struct Wanted {
    system: Vec<String>,
    attributes: Vec<String>,
}

pub async fn receive_message(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let max = params
        .integer("MaxNumberOfMessages", 1..=MESSAGES_MAX)?
        .unwrap_or(1);
    let visibility = params
        .integer("VisibilityTimeout", 0..=VISIBILITY_SECONDS_MAX)?
        .unwrap_or_else(|| queue.meta.integer("VisibilityTimeout"));
    let wait = params
        .integer("WaitTimeSeconds", 0..=WAIT_SECONDS_MAX)?
        .unwrap_or_else(|| queue.meta.integer("ReceiveMessageWaitTimeSeconds"));
    let mut system = params.strings("AttributeNames")?;
    system.extend(params.strings("MessageSystemAttributeNames")?);
    let wanted = Wanted {
        system,
        attributes: params.strings("MessageAttributeNames")?,
    };
    let visibility = Duration::from_secs(u64::try_from(visibility).unwrap_or(0));
    let wait = Duration::from_secs(u64::try_from(wait).unwrap_or(0));
    let max = usize::try_from(max).unwrap_or(1);
    let attempt = attempt_key(&queue, params)?;
    if let Some(answer) = attempt
        .as_deref()
        .and_then(|key| retried(service, key, visibility))
    {
        return Ok(answer);
    }
    let taken = take(service, &queue, max, wait, visibility).await?;
    let redrive = queue
        .meta
        .attributes
        .get("RedrivePolicy")
        .and_then(|p| registry::redrive_policy(p));
    let mut messages = Vec::new();
    let mut receipts = Vec::new();
    for leased in taken {
        if let Some((dlq, count)) = &redrive
            && leased.delivery.delivery_count >= *count
            && dead_letter(service, &queue, dlq, &leased).await
        {
            continue;
        }
        messages.push(render(service, &leased, &wanted));
        receipts.push(leased.receipt);
    }
    let answer = match messages.is_empty() {
        true => json!({}),
        // Moved in: `json!` would copy every message, bodies included, through `to_value`.
        false => Value::Object(Map::from_iter([(
            "Messages".into(),
            Value::Array(messages),
        )])),
    };
    if let Some(key) = attempt {
        let answer = answer.clone();
        service
            .attempts
            .remember(key, Answered { answer, receipts });
    }
    Ok(answer)
}

/// The key of a FIFO receive's ReceiveRequestAttemptId; standard queues ignore it, as on AWS.
fn attempt_key(queue: &ResolvedQueue, params: &Params) -> Result<Option<String>, SqsError> {
    let Some(attempt) = params.string("ReceiveRequestAttemptId")? else {
        return Ok(None);
    };
    if !queue.meta.is_fifo() {
        return Ok(None);
    }
    fifo::check_id("ReceiveRequestAttemptId", attempt)?;
    Ok(Some(Attempts::key(&queue.name, attempt)))
}

/// The answer of an earlier receive with the same attempt, if every message in it is still
/// leased to it (none deleted or made visible since); their visibility timeout starts over.
fn retried(service: &SqsService, key: &str, visibility: Duration) -> Option<Value> {
    let answered = service.attempts.find(key)?;
    let unchanged = answered.receipts.iter().all(|handle| {
        Receipt::decode(handle).is_some_and(|r| service.leases.extend(&r, visibility).is_ok())
    });
    unchanged.then_some(answered.answer)
}

/// Takes up to `max` messages, waiting up to `wait` for the first one.
async fn take(
    service: &SqsService,
    queue: &ResolvedQueue,
    max: usize,
    wait: Duration,
    visibility: Duration,
) -> Result<Vec<Leased>, SqsError> {
    let owner = ConsumerId::next();
    let mut taken = take_ready(service, queue, owner, max, visibility).await?;
    if !taken.is_empty() || wait.is_zero() {
        return Ok(taken);
    }
    let (sink, events) = mpsc::channel(max);
    let spec = ConsumeSpec {
        consumer: owner,
        connection: service.connection,
        tag: format!("sqs.receive.{}", owner.0),
        no_ack: false,
        exclusive: false,
        prefetch: u32::try_from(max).unwrap_or(1),
        sink,
    };
    match queue.handle.consume(spec).await {
        Ok(()) => {}
        // The queue has all the consumers it may (`max_consumers_per_queue`): wait as a long
        // poll does and answer with what is ready then, so that an SDK's polling loop sees an
        // empty receive rather than an error, and does not spin.
        Err(BrokerError::ResourceLimit(_)) => {
            let mut shutdown = service.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            return take_ready(service, queue, owner, max, visibility).await;
        }
        Err(other) => return Err(other.into()),
    }
    let mut poll = LongPoll {
        queue: Arc::clone(&queue.handle),
        owner,
        events: Some(events),
    };
    let mut shutdown = service.shutdown.clone();
    let first = tokio::select! {
        event = poll.recv() => event,
        () = tokio::time::sleep(wait) => None,
        _ = shutdown.changed() => None,
    };
    taken.extend(first.map(|d| lease(service, queue, d, visibility)));
    for delivery in poll.finish().await {
        taken.push(lease(service, queue, delivery, visibility));
    }
    Ok(taken)
}

/// Takes up to `max` ready messages, leased as `owner`.
async fn take_ready(
    service: &SqsService,
    queue: &ResolvedQueue,
    owner: ConsumerId,
    max: usize,
    visibility: Duration,
) -> Result<Vec<Leased>, SqsError> {
    let got = queue.handle.get_many(owner, false, max).await?;
    let taken = got
        .into_iter()
        .map(|ok| lease(service, queue, ok.delivery, visibility))
        .collect();
    Ok(taken)
}

/// The temporary consumer of a long poll. If the request is dropped while waiting, the guard
/// cancels the consumer and requeues whatever reached its sink.
struct LongPoll {
    queue: Arc<dyn QueueHandle>,
    owner: ConsumerId,
    events: Option<mpsc::Receiver<ConsumerEvent>>,
}

impl LongPoll {
    async fn recv(&mut self) -> Option<Delivery> {
        match self.events.as_mut()?.recv().await? {
            ConsumerEvent::Deliver(delivery) => Some(delivery),
            ConsumerEvent::Cancelled(_) => None,
        }
    }

    /// Cancels the consumer and returns the deliveries that arrived meanwhile.
    async fn finish(&mut self) -> Vec<Delivery> {
        self.queue.cancel(self.owner).await;
        let mut rest = Vec::new();
        if let Some(mut events) = self.events.take() {
            while let Ok(event) = events.try_recv() {
                if let ConsumerEvent::Deliver(delivery) = event {
                    rest.push(delivery);
                }
            }
        }
        rest
    }
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        let Some(mut events) = self.events.take() else {
            return;
        };
        let (queue, owner) = (Arc::clone(&self.queue), self.owner);
        tokio::spawn(async move {
            queue.cancel(owner).await;
            let mut tags = Vec::new();
            while let Ok(event) = events.try_recv() {
                if let ConsumerEvent::Deliver(delivery) = event {
                    tags.push(delivery.tag);
                }
            }
            queue.settle(owner, tags, Settlement::Requeue).await;
        });
    }
}

fn lease(
    service: &SqsService,
    queue: &ResolvedQueue,
    delivery: Delivery,
    visibility: Duration,
) -> Leased {
    let message_id = message_id(&queue.name, &delivery);
    let lease = Lease {
        queue: Arc::clone(&queue.handle),
        owner: delivery.consumer,
        nonce: rand::random(),
        deadline: Instant::now() + visibility,
        message_id: message_id.clone(),
    };
    let receipt = service.leases.grant(&queue.name, delivery.tag, lease);
    // Recorded on every receive, not only when asked for, so that a later request for
    // ApproximateFirstReceiveTimestamp gets the first receive's time.
    service.note_first_receive(&message_id, now_ms());
    Leased {
        delivery,
        receipt,
        message_id,
    }
}

/// The message's id: the publisher's, or for messages published without one (AMQP, MQTT), one
/// derived from the message's identity in memory, stable while the broker runs.
fn message_id(queue: &str, delivery: &Delivery) -> String {
    if let Some(id) = &delivery.message.properties.message_id {
        return id.clone();
    }
    let address = Arc::as_ptr(&delivery.message) as usize;
    let digest = Md5::new()
        .chain_update(queue.as_bytes())
        .chain_update(address.to_be_bytes())
        .finalize();
    crate::hex::uuid(&digest.into())
}

/// Moves a message received too often to the dead-letter queue. Returns `false` (deliver it
/// normally) if the dead-letter queue does not exist or the lease is already gone.
async fn dead_letter(
    service: &SqsService,
    source: &ResolvedQueue,
    dlq: &str,
    leased: &Leased,
) -> bool {
    let Ok(target) = service.resolve_name(dlq) else {
        return false;
    };
    let Some(receipt) = Receipt::decode(&leased.receipt) else {
        return false;
    };
    let Ok(lease) = service.leases.take(&receipt) else {
        return false;
    };
    let mut message = (*leased.delivery.message).clone();
    message.exchange.clear();
    message.routing_key.clone_from(&target.name);
    // Where it came from, for a redrive back to it (`crate::move_tasks`).
    let source_arn = HeaderValue::String(SqsService::queue_arn(&source.name));
    message
        .properties
        .headers
        .insert(move_tasks::DEAD_LETTER_SOURCE_HEADER, source_arn);
    let stored = service
        .publish_confirmed(&target.handle, vec![Arc::new(message)])
        .await
        .is_ok_and(|accepted| accepted.first() == Some(&true));
    let settlement = if stored {
        Settlement::Ack
    } else {
        Settlement::Requeue
    };
    source
        .handle
        .settle(lease.owner, vec![leased.delivery.tag], settlement)
        .await;
    true
}

fn render(service: &SqsService, leased: &Leased, wanted: &Wanted) -> Value {
    let view = translate::incoming(&leased.delivery.message);
    let mut message = Map::new();
    message.insert("MessageId".into(), json!(leased.message_id));
    message.insert("ReceiptHandle".into(), json!(leased.receipt));
    let md5_of_body = attributes::md5_of_view(&leased.delivery.message, &view);
    message.insert("MD5OfBody".into(), Value::String(md5_of_body));
    // Moved, not copied: `json!` would clone the whole body.
    message.insert("Body".into(), Value::String(view.body));
    let mut system = system_attributes(service, leased, &wanted.system);
    let all = wanted.system.iter().any(|n| n == "All");
    for (name, value) in &view.system {
        if all || wanted.system.iter().any(|n| n == name) {
            system.insert((*name).to_owned(), json!(value));
        }
    }
    if !system.is_empty() {
        message.insert("Attributes".into(), Value::Object(system));
    }
    let selected: Vec<MessageAttribute> = view
        .attributes
        .into_iter()
        .filter(|a| selects(&wanted.attributes, &a.name))
        .collect();
    if let Some(md5) = attributes::md5_of_attributes(&selected) {
        message.insert("MD5OfMessageAttributes".into(), json!(md5));
        message.insert(
            "MessageAttributes".into(),
            Value::Object(attributes::to_json_map(&selected)),
        );
    }
    Value::Object(message)
}

/// AWS: `All` or `.*` selects every attribute, `prefix.*` those starting with `prefix.`.
fn selects(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| {
        p == "All"
            || p == ".*"
            || p == name
            || p.strip_suffix('*')
                .is_some_and(|prefix| prefix.ends_with('.') && name.starts_with(prefix))
    })
}

fn system_attributes(
    service: &SqsService,
    leased: &Leased,
    names: &[String],
) -> Map<String, Value> {
    let all = names.iter().any(|n| n == "All");
    let wants = |name: &str| all || names.iter().any(|n| n == name);
    let properties = &leased.delivery.message.properties;
    let now = now_ms();
    let mut out = Map::new();
    if wants("SenderId") {
        let sender = properties
            .user_id
            .clone()
            .unwrap_or_else(|| ACCOUNT_ID.to_owned());
        out.insert("SenderId".into(), json!(sender));
    }
    if wants("SentTimestamp") {
        let sent = properties.timestamp.map_or(now, |s| s.saturating_mul(1000));
        out.insert("SentTimestamp".into(), json!(sent.to_string()));
    }
    if wants("ApproximateReceiveCount") {
        let count = u64::from(leased.delivery.delivery_count) + 1;
        out.insert("ApproximateReceiveCount".into(), json!(count.to_string()));
    }
    if wants("ApproximateFirstReceiveTimestamp") {
        let first = service.note_first_receive(&leased.message_id, now);
        out.insert(
            "ApproximateFirstReceiveTimestamp".into(),
            json!(first.to_string()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_name_patterns_select_as_aws_documents() {
        let patterns = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(selects(&patterns(&["All"]), "x"));
        assert!(selects(&patterns(&[".*"]), "x"));
        assert!(selects(&patterns(&["bar.*"]), "bar.baz"));
        assert!(!selects(&patterns(&["bar.*"]), "barbaz"));
        assert!(selects(&patterns(&["x"]), "x"));
        assert!(!selects(&patterns(&[]), "x"));
    }
}
