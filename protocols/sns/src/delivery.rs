//! Delivery: one task per confirmed subscription moves what reaches the topic's exchange to
//! the subscriber.
//!
//! Each subscription is a binding from the topic's exchange to a durable queue of its own
//! (`sns-subscription.<id>`), so a message SNS accepted is stored before Publish answers, a
//! slow endpoint holds back only its own subscription, and whatever an AMQP, STOMP or MQTT
//! client publishes to the exchange reaches SNS subscribers too. The task consumes that queue
//! in order (which keeps FIFO topics in order), applies the filter policy, shapes the message
//! (the signed envelope, or raw), hands it over (an SQS queue: published and confirmed; HTTP:
//! POSTed with retries, one at a time), and only then acknowledges it. A message that cannot
//! be handed over goes to the subscription's dead-letter queue, if it has one.
//!
//! Deliveries to SQS queues are pipelined: the task publishes the next messages to the target
//! queue while earlier ones wait for their confirm (for a durable queue, the journal's sync),
//! up to [`IN_FLIGHT_MAX`]. Publishes are made in arrival order, so the target queue gets them
//! in order, and each message is acknowledged only once its own confirm is in.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqbridge_broker_api::{
    ConfirmSink, ConsumeSpec, ConsumerEvent, ConsumerId, Delivery, HeaderValue, Message,
    QueueHandle, Settlement,
};
use mqbridge_sqs::fifo::{DEDUPLICATION_HEADER, MESSAGE_GROUP_HEADER, SEQUENCE_HEADER};
use mqbridge_sqs::service::now_ms;
use mqbridge_sqs::translate;
use tokio::sync::mpsc;

use crate::envelope::{Notification, iso_timestamp};
use crate::filter::{Attribute, FilterPolicy, Scope};
use crate::headers;
use crate::registry::Subscription;
use crate::retry::RetryPolicy;
use crate::service::SnsService;
use crate::signing::SignatureVersion;

/// How many deliveries the core may hand one task ahead of its work.
const PREFETCH: u32 = 16;
/// Deliveries to SQS queues one task may have published and not yet confirmed: all it holds.
/// One at a time, a subscription moves one message per journal sync.
const IN_FLIGHT_MAX: usize = PREFETCH as usize;
/// How long one POST to an HTTP endpoint may take (AWS: 15 s).
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) async fn run(service: Arc<SnsService>, arn: String) {
    let Some(subscription) = service.subscriptions.get(&arn) else {
        return;
    };
    let queue = match service
        .vhost
        .queue(&subscription.queue_name(), service.connection)
    {
        Ok(queue) => queue,
        Err(error) => {
            tracing::warn!(subscription = arn, %error, "SNS subscription has no queue");
            return;
        }
    };
    let owner = ConsumerId::next();
    let (sink, mut events) = mpsc::channel(PREFETCH as usize);
    let spec = ConsumeSpec {
        consumer: owner,
        connection: service.connection,
        tag: format!("sns.{arn}"),
        no_ack: false,
        exclusive: false,
        prefetch: PREFETCH,
        sink,
    };
    if let Err(error) = queue.consume(spec).await {
        tracing::warn!(subscription = arn, %error, "SNS delivery could not start");
        return;
    }
    let mut filter = FilterCache::default();
    let mut shutdown = service.shutdown.clone();
    let mut pipeline = Pipeline::new();
    loop {
        pipeline.collect(&service).await;
        pipeline.settle_ready(&queue, owner).await;
        let room = pipeline.in_hand.len() < IN_FLIGHT_MAX;
        let event = tokio::select! {
            event = events.recv(), if room => event,
            () = pipeline.sink.ready(), if pipeline.waiting > 0 => continue,
            _ = shutdown.changed() => return,
        };
        let Some(ConsumerEvent::Deliver(delivery)) = event else {
            return;
        };
        let state = start(&service, &arn, &delivery, &mut filter, &mut pipeline).await;
        pipeline.in_hand.push_back((delivery.tag, state));
    }
}

/// The deliveries a task holds, in arrival order, and the confirms of its publishes.
struct Pipeline {
    in_hand: VecDeque<(u64, State)>,
    sink: Arc<ConfirmSink>,
    /// Confirm id of the next publish.
    next_id: u64,
    /// How many of `in_hand` wait for a confirm.
    waiting: usize,
    confirmed: Vec<(u64, bool)>,
}

enum State {
    /// Decided: settle it when its turn comes.
    Done(Settlement),
    /// Published to an SQS queue under confirm id `.0`; `.1` is what a refusal needs.
    Confirming(u64, Box<Refusal>),
}

/// What sending a refused message to the dead-letter queue needs.
struct Refusal {
    subscription: Subscription,
    notification: Notification,
    message: Arc<Message>,
    queue_name: String,
}

impl Pipeline {
    fn new() -> Pipeline {
        Pipeline {
            in_hand: VecDeque::new(),
            sink: ConfirmSink::new(),
            next_id: 0,
            waiting: 0,
            confirmed: Vec::new(),
        }
    }

    /// Takes in the confirms that came back; a refused message goes to the dead-letter queue.
    async fn collect(&mut self, service: &SnsService) {
        self.sink.drain(&mut self.confirmed);
        for (id, accepted) in std::mem::take(&mut self.confirmed) {
            let Some(state) = self.in_hand.iter_mut().find_map(|(_, state)| match state {
                State::Confirming(waiting, _) if *waiting == id => Some(state),
                _ => None,
            }) else {
                continue;
            };
            let State::Confirming(_, refusal) =
                std::mem::replace(state, State::Done(Settlement::Ack))
            else {
                continue;
            };
            self.waiting -= 1;
            if !accepted {
                let reason = format!("queue {} refused the message", refusal.queue_name);
                let settlement = dead_letter(
                    service,
                    &refusal.subscription,
                    &refusal.notification,
                    &refusal.message,
                    &reason,
                )
                .await;
                *state = State::Done(settlement);
            }
        }
    }

    /// Settles the decided deliveries at the front, in order; runs of the same settlement
    /// go to the core in one call.
    async fn settle_ready(&mut self, queue: &Arc<dyn QueueHandle>, owner: ConsumerId) {
        while let Some((_, State::Done(first))) = self.in_hand.front() {
            let settlement = *first;
            let mut tags = Vec::new();
            while let Some((tag, State::Done(next))) = self.in_hand.front() {
                if *next != settlement {
                    break;
                }
                tags.push(*tag);
                self.in_hand.pop_front();
            }
            queue.settle(owner, tags, settlement).await;
        }
    }
}

/// Starts one delivery: an SQS subscription's message is published to its queue and waits in
/// the pipeline for the confirm; anything else is delivered here and now.
async fn start(
    service: &SnsService,
    arn: &str,
    delivery: &Delivery,
    filter: &mut FilterCache,
    pipeline: &mut Pipeline,
) -> State {
    let Some(subscription) = service.subscriptions.get(arn) else {
        return State::Done(Settlement::Ack);
    };
    if subscription.protocol != "sqs" {
        return State::Done(deliver(service, arn, delivery, filter).await);
    }
    let notification = notification(&subscription, &delivery.message);
    if !filter.matches(&subscription, &notification) {
        return State::Done(Settlement::Ack);
    }
    let target = subscription.endpoint.clone();
    let Some((queue, message)) = prepare(
        service,
        &subscription,
        &target,
        &notification,
        &delivery.message,
    ) else {
        let reason = format!("queue {} does not exist", queue_name(&target));
        let settlement = dead_letter(
            service,
            &subscription,
            &notification,
            &delivery.message,
            &reason,
        )
        .await;
        return State::Done(settlement);
    };
    let id = pipeline.next_id;
    pipeline.next_id += 1;
    queue
        .publish(Arc::new(message), pipeline.sink.tickets(id, 1))
        .await;
    pipeline.waiting += 1;
    State::Confirming(
        id,
        Box::new(Refusal {
            queue_name: queue_name(&target).to_owned(),
            subscription,
            notification,
            message: Arc::clone(&delivery.message),
        }),
    )
}

async fn deliver(
    service: &SnsService,
    arn: &str,
    delivery: &Delivery,
    filter: &mut FilterCache,
) -> Settlement {
    // Unsubscribed meanwhile: the queue goes with the subscription.
    let Some(subscription) = service.subscriptions.get(arn) else {
        return Settlement::Ack;
    };
    let notification = notification(&subscription, &delivery.message);
    if !filter.matches(&subscription, &notification) {
        return Settlement::Ack;
    }
    let delivered = match subscription.protocol.as_str() {
        "sqs" => {
            to_queue(
                service,
                &subscription,
                &subscription.endpoint,
                &notification,
                &delivery.message,
            )
            .await
        }
        _ => to_endpoint(service, &subscription, &notification).await,
    };
    match delivered {
        Outcome::Delivered => Settlement::Ack,
        Outcome::Stopping => Settlement::Requeue,
        Outcome::Failed(reason) => {
            dead_letter(
                service,
                &subscription,
                &notification,
                &delivery.message,
                &reason,
            )
            .await
        }
    }
}

enum Outcome {
    Delivered,
    /// The broker is shutting down: the message stays for after the restart.
    Stopping,
    Failed(String),
}

/// The notification a subscriber of `subscription` gets for `message`, whichever protocol
/// published it.
fn notification(subscription: &Subscription, message: &Arc<Message>) -> Notification {
    let text = |name: &str| {
        message
            .properties
            .headers
            .get(name)
            .and_then(HeaderValue::as_str)
            .map(str::to_owned)
    };
    // What SNS itself added is not a message attribute.
    let mut plain = Message::clone(message);
    for name in headers::ALL {
        plain.properties.headers.remove(name);
    }
    let view = translate::incoming(&Arc::new(plain));
    let mut body = view.body;
    if let Some(per_protocol) =
        text(headers::STRUCTURE).and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        && let Some(chosen) = per_protocol
            .get(&subscription.protocol)
            .and_then(serde_json::Value::as_str)
    {
        chosen.clone_into(&mut body);
    }
    let system = |name: &str| {
        view.system
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    Notification {
        message_id: message
            .properties
            .message_id
            .clone()
            .unwrap_or_else(mqbridge_sqs::service::new_uuid),
        topic_arn: SnsService::topic_arn(&subscription.topic),
        subject: text(headers::SUBJECT),
        message: body,
        timestamp: text(headers::TIMESTAMP).unwrap_or_else(|| iso_timestamp(now_ms())),
        sequence_number: system("SequenceNumber"),
        attributes: view.attributes,
    }
}

/// The parsed filter policy of the subscription being served, parsed again only when its
/// text or scope changes.
#[derive(Default)]
struct FilterCache {
    parsed: Option<(String, Scope, FilterPolicy)>,
}

impl FilterCache {
    fn matches(&mut self, subscription: &Subscription, notification: &Notification) -> bool {
        let Some(text) = subscription
            .attributes
            .get("FilterPolicy")
            .filter(|t| !t.is_empty())
        else {
            return true;
        };
        let scope = subscription
            .attributes
            .get("FilterPolicyScope")
            .and_then(|s| Scope::parse(s))
            .unwrap_or(Scope::MessageAttributes);
        let fresh = self
            .parsed
            .as_ref()
            .is_some_and(|(t, s, _)| t == text && *s == scope);
        if !fresh {
            // Policies are validated when set; one that no longer parses lets nothing through.
            let Ok(policy) = FilterPolicy::parse(text, scope) else {
                return false;
            };
            self.parsed = Some((text.clone(), scope, policy));
        }
        let Some((_, _, policy)) = &self.parsed else {
            return false;
        };
        match scope {
            Scope::MessageBody => policy.matches_body(&notification.message),
            Scope::MessageAttributes => {
                let attributes: Vec<(&str, Attribute<'_>)> = notification
                    .attributes
                    .iter()
                    .filter_map(|a| match &a.value {
                        mqbridge_sqs::attributes::AttributeValue::Text(value) => Some((
                            a.name.as_str(),
                            Attribute {
                                data_type: &a.data_type,
                                value,
                            },
                        )),
                        mqbridge_sqs::attributes::AttributeValue::Binary(_) => None,
                    })
                    .collect();
                policy.matches_attributes(&attributes)
            }
        }
    }
}

fn signature_version(service: &SnsService, subscription: &Subscription) -> SignatureVersion {
    service
        .topics
        .get(&subscription.topic)
        .and_then(|t| t.attributes.get("SignatureVersion").cloned())
        .and_then(|v| SignatureVersion::parse(&v))
        .unwrap_or_default()
}

fn envelope(
    service: &SnsService,
    subscription: &Subscription,
    notification: &Notification,
) -> String {
    notification.envelope(
        &service.signer,
        signature_version(service, subscription),
        &subscription.host,
        &subscription.arn,
    )
}

/// The queue name in an SQS queue ARN.
fn queue_name(queue_arn: &str) -> &str {
    queue_arn.rsplit(':').next().unwrap_or(queue_arn)
}

/// The queue an ARN names and the message the subscription puts there; `None` if the queue
/// does not exist.
fn prepare(
    service: &SnsService,
    subscription: &Subscription,
    queue_arn: &str,
    notification: &Notification,
    original: &Message,
) -> Option<(Arc<dyn QueueHandle>, Message)> {
    let name = queue_name(queue_arn);
    let queue = service.vhost.queue(name, service.connection).ok()?;
    let raw = subscription.flag("RawMessageDelivery");
    let (body, attributes) = if raw {
        (
            notification.message.clone(),
            notification.attributes.as_slice(),
        )
    } else {
        (envelope(service, subscription, notification), &[][..])
    };
    let mut message =
        translate::outgoing(name, &body, attributes, &notification.message_id, now_ms());
    // FIFO topics feed FIFO queues: the group and deduplication id travel on.
    for header in [MESSAGE_GROUP_HEADER, DEDUPLICATION_HEADER, SEQUENCE_HEADER] {
        if let Some(value) = original.properties.headers.get(header) {
            message.properties.headers.insert(header, value.clone());
        }
    }
    Some((queue, message))
}

/// Publishes to the SQS queue an ARN names, and waits for the core's confirm.
async fn to_queue(
    service: &SnsService,
    subscription: &Subscription,
    queue_arn: &str,
    notification: &Notification,
    original: &Message,
) -> Outcome {
    let name = queue_name(queue_arn);
    let Some((queue, message)) = prepare(service, subscription, queue_arn, notification, original)
    else {
        return Outcome::Failed(format!("queue {name} does not exist"));
    };
    match mqbridge_sqs::service::publish_confirmed(
        &queue,
        vec![Arc::new(message)],
        &service.shutdown,
    )
    .await
    {
        Ok(accepted) if accepted.iter().all(|ok| *ok) => Outcome::Delivered,
        Ok(_) => Outcome::Failed(format!("queue {name} refused the message")),
        Err(_) => Outcome::Stopping,
    }
}

/// POSTs to an HTTP endpoint, retrying by the delivery policy.
async fn to_endpoint(
    service: &SnsService,
    subscription: &Subscription,
    notification: &Notification,
) -> Outcome {
    let raw = subscription.flag("RawMessageDelivery");
    let body = if raw {
        notification.message.clone()
    } else {
        envelope(service, subscription, notification)
    };
    let topic_arn = notification.topic_arn.as_str();
    let mut request_headers = vec![
        ("x-amz-sns-message-type", "Notification"),
        ("x-amz-sns-message-id", notification.message_id.as_str()),
        ("x-amz-sns-topic-arn", topic_arn),
        ("x-amz-sns-subscription-arn", subscription.arn.as_str()),
    ];
    if raw {
        request_headers.push(("x-amz-sns-rawdelivery", "true"));
    }
    let policy = RetryPolicy::of(
        subscription
            .attributes
            .get("DeliveryPolicy")
            .map(String::as_str),
        service
            .topics
            .get(&subscription.topic)
            .as_ref()
            .and_then(|t| t.attributes.get("DeliveryPolicy"))
            .map(String::as_str),
    );
    let body = Bytes::from(body);
    let mut shutdown = service.shutdown.clone();
    let mut last = String::new();
    for attempt in 0..=policy.retries {
        let delay = policy.delay_before(attempt);
        if !delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return Outcome::Stopping,
            }
        }
        let post = service.http.post(
            &subscription.endpoint,
            &request_headers,
            body.clone(),
            HTTP_TIMEOUT,
        );
        let result = tokio::select! {
            result = post => result,
            _ = shutdown.changed() => return Outcome::Stopping,
        };
        match result {
            Ok(status) if (200..300).contains(&status) => return Outcome::Delivered,
            Ok(status) => last = format!("endpoint answered {status}"),
            Err(error) => last = error.to_string(),
        }
        tracing::debug!(
            subscription = subscription.arn,
            attempt,
            reason = last,
            "SNS HTTP delivery failed"
        );
    }
    Outcome::Failed(last)
}

/// A message no retry could deliver: to the subscription's dead-letter queue (RedrivePolicy
/// `deadLetterTargetArn`), else dropped with a log line.
async fn dead_letter(
    service: &SnsService,
    subscription: &Subscription,
    notification: &Notification,
    original: &Message,
    reason: &str,
) -> Settlement {
    let target = subscription
        .attributes
        .get("RedrivePolicy")
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| p.get("deadLetterTargetArn")?.as_str().map(str::to_owned));
    let Some(target) = target else {
        tracing::warn!(
            subscription = subscription.arn,
            reason,
            "SNS message dropped: undeliverable"
        );
        return Settlement::Ack;
    };
    match to_queue(service, subscription, &target, notification, original).await {
        Outcome::Delivered => Settlement::Ack,
        Outcome::Stopping => Settlement::Requeue,
        Outcome::Failed(why) => {
            tracing::warn!(
                subscription = subscription.arn,
                reason,
                dead_letter = why,
                "SNS message dropped: its dead-letter queue failed too"
            );
            Settlement::Ack
        }
    }
}
