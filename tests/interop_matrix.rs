//! The interop matrix (issue 9): a message published with each protocol is received with every
//! other, and each receiver must see what ARCHITECTURE.md's mapping table says: the same body
//! bytes, persistence, message and correlation ids, content type and encoding, the reply
//! address in the receiver's form (the reply-address table), expiration, priority, timestamp,
//! type, app id, who published, and every header (in text form where only text goes). Then
//! request/response round trips between protocols.
//!
//! One test per publisher: it sets up a receiver of every protocol on a destination of its
//! own, publishes two samples to each (a rich one with everything the publisher can set, a lean
//! one), takes them from all receivers at once (a missing message costs one bounded wait, not
//! one per receiver) and fails once, listing every mismatch by pair, sample and field.
//!
//! Routes. A destination is a routing key on `amq.topic` (MQTT topic `a/b`, STOMP
//! `/topic/a.b`) plus a queue. AMQP, STOMP and SQS receivers consume the queue, bound to the
//! key; MQTT receivers subscribe to the topic. SQS can only send to a queue: for MQTT receivers
//! that queue is a dead-letter hop (TTL 0, dead-letter exchange `amq.topic` with the key), the
//! one way from a queue to topic subscribers, so those messages carry `x-death` and, as with
//! RabbitMQ's dead-lettering, lose their expiration. An SNS topic reaches `amq.topic` through an
//! exchange binding (an SNS publish is routed with the topic's name as key), and an SQS queue
//! through a raw subscription.

mod common;

use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use common::interop::Received;
use common::mqtt::v5;
use common::stomp::StompClient;
use common::{Broker, WAIT, next_delivery, publish_with, within};
use expect::{compare, core_expectation, now_seconds, project};
use futures_util::FutureExt;
use futures_util::future::join_all;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use mqbridge_stomp::codec::Frame;
use publish::publish;
use receive::{Inbox, consume, declare_bound, mqtt5_client, subscribe, subscribe5, take};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use samples::{Destination, Protocol, RECEIVERS, samples};

#[path = "interop_matrix/expect.rs"]
mod expect;
#[path = "interop_matrix/publish.rs"]
mod publish;
#[path = "interop_matrix/receive.rs"]
mod receive;
#[path = "interop_matrix/samples.rs"]
mod samples;

/// Runs `future`, turning a panic (a failed `expect`, a wait past [`WAIT`]) into its message,
/// so that one broken pair does not hide the others.
async fn caught<T>(future: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|panic| {
            let text = panic.downcast_ref::<String>().cloned();
            let text = text.or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
            text.unwrap_or_else(|| "a panic without message".to_owned())
        })
}

/// The messages `inbox` got within [`WAIT`], and why there are fewer than `count`.
async fn receive(inbox: &mut Inbox, count: usize) -> (Vec<Received>, Option<String>) {
    let mut received = Vec::new();
    let outcome = tokio::time::timeout(WAIT, caught(take(inbox, count, &mut received))).await;
    let problem = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(panic)) => Some(panic),
        Err(_) => Some(format!("nothing more within {WAIT:?}")),
    };
    (received, problem)
}

/// Publishes `publisher`'s samples to a receiver of every protocol and checks what each saw.
async fn run_matrix(publisher: Protocol) {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let since = now_seconds().saturating_sub(1);
    let samples = samples(publisher);
    let mut failures = Vec::new();
    let mut ready = Vec::new();
    for receiver in RECEIVERS {
        let dest = Destination::new(publisher, receiver);
        match caught(subscribe(&broker, &channel, &dest)).await {
            Ok(inbox) => ready.push((dest, inbox)),
            Err(panic) => {
                failures.push(format!("{}: receiver set-up failed: {panic}", dest.pair()))
            }
        }
    }
    let mut sent = Vec::new();
    for (dest, inbox) in ready {
        match caught(publish(&broker, &channel, &dest, &samples)).await {
            Ok(publication) => sent.push((dest, inbox, publication)),
            Err(panic) => failures.push(format!("{}: publish failed: {panic}", dest.pair())),
        }
    }
    let inboxes = sent
        .iter_mut()
        .map(|(_, inbox, _)| receive(inbox, samples.len()));
    let results = join_all(inboxes).await;
    for ((dest, _, publication), (received, problem)) in sent.iter().zip(results) {
        if let Some(problem) = problem {
            let count = received.len();
            let pair = dest.pair();
            failures.push(format!("{pair}: got {count} of 2 messages: {problem}"));
        }
        let ids = publication.assigned_ids.iter();
        for ((sample, got), id) in samples.iter().zip(&received).zip(ids) {
            let want = project(core_expectation(dest, sample, id.as_deref()), dest);
            let label = format!("{} {}", dest.pair(), sample.label);
            failures.extend(compare(&label, &want, got, since));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn amqp_publishes_reach_every_protocol() {
    run_matrix(Protocol::Amqp).await;
}

#[tokio::test]
async fn mqtt311_publishes_reach_every_protocol() {
    run_matrix(Protocol::Mqtt311).await;
}

#[tokio::test]
async fn mqtt5_publishes_reach_every_protocol() {
    run_matrix(Protocol::Mqtt5).await;
}

#[tokio::test]
async fn stomp_publishes_reach_every_protocol() {
    run_matrix(Protocol::Stomp).await;
}

#[tokio::test]
async fn mqtt5_over_websocket_publishes_reach_every_protocol() {
    run_matrix(Protocol::MqttWs).await;
}

#[tokio::test]
async fn stomp_over_websocket_publishes_reach_every_protocol() {
    run_matrix(Protocol::StompWs).await;
}

#[tokio::test]
async fn sqs_sends_reach_every_protocol() {
    run_matrix(Protocol::Sqs).await;
}

#[tokio::test]
async fn sns_publishes_reach_every_protocol() {
    run_matrix(Protocol::Sns).await;
}

// Request/response across protocols: the requester names a reply address in its own
// protocol's form, the responder answers where the address it sees points.

/// Takes one request from `queue` and answers as AMQP responders do: to the default exchange
/// with the request's reply-to as the routing key, echoing the correlation id. Returns the
/// reply-to it saw.
async fn amqp_respond(channel: Channel, queue: &'static str) -> Option<String> {
    let mut requests = consume(&channel, queue).await;
    let request = next_delivery(&mut requests).await;
    let reply_to = request.properties.reply_to().clone()?;
    let mut properties = BasicProperties::default();
    if let Some(id) = request.properties.correlation_id() {
        properties = properties.with_correlation_id(id.clone());
    }
    let body = [b"re: ", &request.data[..]].concat();
    publish_with(&channel, "", reply_to.as_str(), &body, properties).await;
    Some(reply_to.to_string())
}

/// Takes one request from `responder`'s subscription and answers on its Response Topic with
/// its Correlation Data. Returns the Response Topic it saw.
async fn mqtt5_respond(mut responder: v5::Client) -> Option<String> {
    let request = v5::next_publish(&mut responder.events).await;
    let properties = request.properties.unwrap_or_default();
    let topic = properties.response_topic?;
    let reply = PublishProperties {
        correlation_data: properties.correlation_data,
        ..PublishProperties::default()
    };
    let body = [b"re: ", &request.payload[..]].concat();
    let publish = responder.client.publish_with_properties(
        topic.clone(),
        QoS5::AtLeastOnce,
        false,
        body,
        reply,
    );
    publish.await.expect("publish");
    puback5(&mut responder).await;
    Some(topic)
}

/// Drives `client` until the broker acknowledges its QoS 1 PUBLISH.
async fn puback5(client: &mut v5::Client) {
    within(async {
        while !matches!(
            v5::next_incoming(&mut client.events).await,
            Packet::PubAck(_)
        ) {}
    })
    .await;
}

#[tokio::test]
async fn an_mqtt5_request_gets_an_amqp_reply_on_its_response_topic() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare_bound(&channel, "rpc-amqp", "rpc.amqp").await;
    let responder = tokio::spawn(amqp_respond(channel.clone(), "rpc-amqp"));
    let mut requester = mqtt5_client(&broker, "requester", Protocol::Mqtt5).await;
    subscribe5(&mut requester, "replies/requester").await;
    let request = PublishProperties {
        response_topic: Some("replies/requester".into()),
        correlation_data: Some(Bytes::from_static(b"c-1")),
        ..PublishProperties::default()
    };
    let publish = requester.client.publish_with_properties(
        "rpc/amqp",
        QoS5::AtLeastOnce,
        false,
        "ping",
        request,
    );
    publish.await.expect("publish");
    puback5(&mut requester).await;
    let seen = within(responder).await.expect("the responder");
    assert_eq!(seen.as_deref(), Some("/topic/replies.requester"));
    let reply = v5::next_publish(&mut requester.events).await;
    assert_eq!(
        (&reply.topic[..], &reply.payload[..]),
        (&b"replies/requester"[..], &b"re: ping"[..])
    );
    let correlation = reply.properties.and_then(|p| p.correlation_data);
    assert_eq!(correlation.as_deref(), Some(&b"c-1"[..]));
}

#[tokio::test]
async fn an_amqp_request_gets_an_mqtt5_reply_through_a_queue_response_topic() {
    let broker = Broker::start().await;
    let mut responder = mqtt5_client(&broker, "responder", Protocol::Mqtt5).await;
    subscribe5(&mut responder, "rpc/mqtt5").await;
    let responder = tokio::spawn(mqtt5_respond(responder));
    let (_connection, channel) = broker.channel().await;
    let options = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel.queue_declare("".into(), options, FieldTable::default());
    let reply_queue = within(declared)
        .await
        .expect("queue.declare")
        .name()
        .to_string();
    let mut replies = consume(&channel, &reply_queue).await;
    let properties = BasicProperties::default()
        .with_reply_to(reply_queue.as_str().into())
        .with_correlation_id("c-2".into());
    publish_with(&channel, "amq.topic", "rpc.mqtt5", b"ping", properties).await;
    let seen = within(responder).await.expect("the responder");
    assert_eq!(seen, Some(format!("$queue/{reply_queue}")));
    let reply = next_delivery(&mut replies).await;
    assert_eq!(reply.data, b"re: ping");
    let correlation = reply
        .properties
        .correlation_id()
        .as_ref()
        .map(|c| c.as_str());
    assert_eq!(correlation, Some("c-2"));
}

/// A STOMP SEND to `destination` that asks for the reply on a `/temp-queue/`.
fn temp_queue_request(destination: &str, correlation_id: &str) -> Frame {
    common::stomp::send(destination, "ping")
        .with("reply-to", "/temp-queue/replies")
        .with("correlation-id", correlation_id)
}

#[tokio::test]
async fn a_stomp_temp_queue_request_gets_an_amqp_reply() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare_bound(&channel, "rpc-amqp", "rpc.amqp").await;
    let responder = tokio::spawn(amqp_respond(channel.clone(), "rpc-amqp"));
    let mut requester = StompClient::open(&broker).await;
    requester
        .request(temp_queue_request("/topic/rpc.amqp", "c-3"))
        .await;
    let seen = within(responder).await.expect("the responder");
    let seen = seen.expect("a reply-to");
    assert!(
        !seen.starts_with('/'),
        "a temp queue's reply-to is its queue: {seen}"
    );
    let reply = requester.expect_message("re: ping").await;
    assert_eq!(reply.header("correlation-id"), Some("c-3"));
}

#[tokio::test]
async fn a_stomp_temp_queue_request_gets_an_mqtt5_reply() {
    let broker = Broker::start().await;
    let mut responder = mqtt5_client(&broker, "responder", Protocol::Mqtt5).await;
    subscribe5(&mut responder, "rpc/mqtt5").await;
    let responder = tokio::spawn(mqtt5_respond(responder));
    let mut requester = StompClient::open(&broker).await;
    requester
        .request(temp_queue_request("/topic/rpc.mqtt5", "c-4"))
        .await;
    let seen = within(responder).await.expect("the responder");
    let seen = seen.expect("a Response Topic");
    assert!(seen.starts_with("$queue/"), "{seen}");
    let reply = requester.expect_message("re: ping").await;
    assert_eq!(reply.header("correlation-id"), Some("c-4"));
}
