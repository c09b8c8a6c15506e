//! Flow control on every protocol: while a resource alarm is on, publishers are held back
//! (AMQP `connection.blocked`, an MQTT publisher's packets held and its socket read no
//! further, SQS `RequestThrottled`, SNS `Throttling`) and consumers keep draining; once the
//! alarm clears, publishing resumes and nothing is lost or doubled.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use common::management::{Api, sample};
use common::mqtt::{next_incoming, next_publish, subscribed};
use common::{Broker, declare, eventually, next_delivery, publish, within};
use futures_util::{Stream, StreamExt};
use lapin::Event;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use reqwest::StatusCode;
use rumqttc::{Incoming, QoS};
use tokio::sync::mpsc;

/// A watermark that one queued message of [`BODY_BYTES`] crosses, and four MQTT messages of
/// [`MQTT_BODY_BYTES`] but not three: each also counts about 900 bytes of fixed overhead, names
/// and headers (`Message::size_estimate`), so four count 11.7 KB and three 8.8 KB.
const WATERMARK_BYTES: u64 = 10_000;
const BODY_BYTES: usize = 10_000;
/// Small enough that the held publishes stay under the MQTT adapter's 16 KiB of held bytes, so
/// the PINGREQs behind them are still read.
const MQTT_BODY_BYTES: usize = 2_000;
/// MQTT messages published, of [`MQTT_BODY_BYTES`] each.
const PUBLISHED: usize = 10;

async fn alarm_in_effect(api: &Api, on: bool) {
    let wanted = if on {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    eventually("the alarms health check follows the alarm", || async {
        api.get("/api/health/checks/alarms").await.0 == wanted
    })
    .await;
}

async fn wait_for_event(
    events: &mut (impl Stream<Item = Event> + Unpin),
    wanted: impl Fn(&Event) -> bool,
) {
    within(async {
        while let Some(event) = events.next().await {
            if wanted(&event) {
                return;
            }
        }
        panic!("connection events ended");
    })
    .await;
}

#[tokio::test]
async fn a_disk_free_limit_above_the_free_space_blocks_publishers_and_is_reported() {
    let limit = u64::MAX / 2;
    let broker = Broker::start_with(|config| config.disk_free_limit_bytes = limit).await;
    let api = Api::new(&broker);
    let node = &api.get_ok("/api/nodes").await[0];
    assert_eq!(node["disk_free_alarm"], true);
    assert_eq!(node["disk_free_limit"], limit);
    assert!(node["disk_free"].as_u64().is_some_and(|free| free > 0));
    assert_eq!(node["mem_alarm"], false);
    let (status, body) = api.get("/api/health/checks/alarms").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["alarms"][0]["resource"], "disk");
    let metrics = api.metrics("/metrics").await;
    assert_eq!(
        sample(&metrics, "rabbitmq_alarms_free_disk_space_watermark"),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "rabbitmq_disk_space_available_limit_bytes"),
        Some(limit as f64)
    );
    assert!(sample(&metrics, "rabbitmq_disk_space_available_bytes").is_some_and(|b| b > 0.0));

    // The first publish is read, as RabbitMQ reads it; then the publisher is blocked.
    let (publisher, channel) = broker.channel().await;
    let mut events = publisher.events_listener();
    declare(&channel, "disk-q", FieldTable::default()).await;
    publish(&channel, "", "disk-q", b"before the block").await;
    wait_for_event(&mut events, |e| matches!(e, Event::ConnectionBlocked(_))).await;
    assert!(publisher.status().blocked());
    // A consumer on another connection still drains the queue.
    let (_consumer_connection, consuming) = broker.channel().await;
    let mut consumer = within(consuming.basic_consume(
        "disk-q".into(),
        "drain".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("basic.consume");
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(delivery.data, b"before the block");
    within(delivery.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
}

/// A connection that only consumes is never told it is blocked: lapin stops writing every
/// frame once told, acks included, and the consumer that must drain the queue could not ack.
#[tokio::test]
async fn an_amqp_consumer_connection_is_not_blocked_and_drains_the_alarm_away() {
    let broker =
        Broker::start_with(|config| config.memory_high_watermark_bytes = WATERMARK_BYTES).await;
    let api = Api::new(&broker);
    let (consumer_connection, consuming) = broker.channel().await;
    declare(&consuming, "mem-q", FieldTable::default()).await;
    within(consuming.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("basic.qos");
    let mut consumer = within(consuming.basic_consume(
        "mem-q".into(),
        "drain".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("basic.consume");
    let (_publisher, channel) = broker.channel().await;
    let publishing = tokio::spawn(async move {
        for _ in 0..3 {
            publish(&channel, "", "mem-q", &[b'm'; BODY_BYTES]).await;
        }
    });
    alarm_in_effect(&api, true).await;
    for _ in 0..3 {
        let delivery = next_delivery(&mut consumer).await;
        assert!(
            !consumer_connection.status().blocked(),
            "a consumer is not blocked"
        );
        within(delivery.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    within(publishing).await.expect("every publish went out");
    alarm_in_effect(&api, false).await;
}

/// What the MQTT publisher's event loop saw, counted by a task that drives it.
#[derive(Debug)]
enum Seen {
    PubAck,
    PingResp,
}

fn drive_publisher(
    mut client: common::mqtt::Client,
) -> (rumqttc::AsyncClient, mpsc::Receiver<Seen>) {
    let (seen, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let event = match next_incoming(&mut client.events).await {
                Incoming::PubAck(_) => Seen::PubAck,
                Incoming::PingResp => Seen::PingResp,
                _ => continue,
            };
            if seen.send(event).await.is_err() {
                return;
            }
        }
    });
    (client.client, receiver)
}

async fn publish_mqtt(client: &rumqttc::AsyncClient, from: usize, to: usize) {
    for n in from..to {
        let mut body = format!("{n:04}").into_bytes();
        body.resize(MQTT_BODY_BYTES, b'.');
        within(client.publish("flow/mqtt", QoS::AtLeastOnce, false, body))
            .await
            .expect("publish queued");
    }
}

/// Counts PUBACKs until `acks` have come, returning the PINGRESPs seen meanwhile.
async fn await_seen(seen: &mut mpsc::Receiver<Seen>, acks: &mut usize, until_acks: usize) {
    within(async {
        while *acks < until_acks {
            if let Seen::PubAck = seen.recv().await.expect("publisher running") {
                *acks += 1;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_blocked_mqtt_publisher_is_held_answered_and_resumed_without_loss() {
    let broker =
        Broker::start_with(|config| config.memory_high_watermark_bytes = WATERMARK_BYTES).await;
    let options = broker.mqtt_options("flow-publisher");
    hold_and_resume(&broker, options).await;
}

#[tokio::test]
async fn a_blocked_mqtt_publisher_over_websocket_is_held_and_resumed_alike() {
    let broker =
        Broker::start_with(|config| config.memory_high_watermark_bytes = WATERMARK_BYTES).await;
    let options = broker.mqtt_ws_options("flow-ws-publisher", "/ws");
    hold_and_resume(&broker, options).await;
}

/// Crosses the watermark with a publisher connected with `options`, holds its next
/// publishes while answering its pings, then drains and checks every message came once.
async fn hold_and_resume(broker: &Broker, mut options: rumqttc::MqttOptions) {
    let api = Api::new(broker);
    // A subscriber whose event loop is not polled: its deliveries stay unacknowledged and
    // keep the queued bytes over the watermark until it drains.
    let mut subscriber = broker.mqtt(broker.mqtt_options("flow-subscriber")).await;
    within(subscriber.client.subscribe("flow/mqtt", QoS::AtLeastOnce))
        .await
        .expect("subscribe");
    subscribed(&mut subscriber.events).await;
    // Pings every second: a PINGREQ left unanswered fails the client at the next one.
    options.set_keep_alive(Duration::from_secs(1));
    let (client, mut seen) = drive_publisher(broker.mqtt(options).await);

    // Four such MQTT messages cross the watermark, three do not; all are read and acknowledged.
    let mut acks = 0;
    publish_mqtt(&client, 0, 4).await;
    await_seen(&mut seen, &mut acks, 4).await;
    alarm_in_effect(&api, true).await;
    // Under the alarm the next publishes are held: no PUBACK, while PINGREQs are answered
    // across three keep-alive periods, so the client does not give up on us.
    publish_mqtt(&client, 4, PUBLISHED).await;
    let mut pings = 0;
    within(async {
        while pings < 3 {
            match seen.recv().await.expect("publisher running") {
                Seen::PingResp => pings += 1,
                Seen::PubAck => panic!("a publish was acknowledged under the alarm"),
            }
        }
    })
    .await;

    // The subscriber drains; the alarm clears and the held publishes go in.
    let mut numbers = BTreeSet::new();
    for _ in 0..PUBLISHED {
        let publish = next_publish(&mut subscriber.events).await;
        let number = String::from_utf8_lossy(publish.payload.get(..4).expect("numbered"));
        assert!(numbers.insert(number.into_owned()), "delivered twice");
    }
    await_seen(&mut seen, &mut acks, PUBLISHED).await;
    let expected: BTreeSet<String> = (0..PUBLISHED).map(|n| format!("{n:04}")).collect();
    assert_eq!(numbers, expected);
    // Acknowledged as the loop reads on; a message delivered twice would stay unacknowledged.
    let drain = async {
        loop {
            let _ = next_incoming(&mut subscriber.events).await;
        }
    };
    let settled = eventually("the session queue is empty and settled", || async {
        let queue = api
            .get_ok("/api/queues/%2F/mqtt-session-flow-subscriber")
            .await;
        queue["messages"] == 0
    });
    tokio::select! {
        () = settled => {}
        () = drain => unreachable!("the drain loop never ends"),
    }
    alarm_in_effect(&api, false).await;
}

#[tokio::test]
async fn what_a_blocked_mqtt_client_sent_before_leaving_goes_in_once_the_alarm_clears() {
    let broker =
        Broker::start_with(|config| config.memory_high_watermark_bytes = WATERMARK_BYTES).await;
    let api = Api::new(&broker);
    let mut subscriber = broker.mqtt(broker.mqtt_options("leaver-subscriber")).await;
    within(subscriber.client.subscribe("flow/mqtt", QoS::AtLeastOnce))
        .await
        .expect("subscribe");
    subscribed(&mut subscriber.events).await;
    let (crosser, mut seen) = drive_publisher(broker.mqtt(broker.mqtt_options("crosser")).await);
    let mut acks = 0;
    publish_mqtt(&crosser, 0, 4).await;
    await_seen(&mut seen, &mut acks, 4).await;
    alarm_in_effect(&api, true).await;

    // Under the alarm a client publishes at QoS 0, disconnects and closes its socket: its
    // PUBLISH and DISCONNECT are held, not dropped with the connection.
    let mut leaver = broker.mqtt(broker.mqtt_options("leaver")).await;
    let body = b"0004 from a client that left".to_vec();
    within(
        leaver
            .client
            .publish("flow/mqtt", QoS::AtMostOnce, false, body),
    )
    .await
    .expect("publish queued");
    within(leaver.client.disconnect())
        .await
        .expect("disconnect queued");
    within(async {
        loop {
            let event = leaver.events.poll().await.expect("sent before the close");
            if let rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect) = event {
                return;
            }
        }
    })
    .await;
    drop(leaver);

    let mut numbers = BTreeSet::new();
    for _ in 0..5 {
        let publish = next_publish(&mut subscriber.events).await;
        let number = String::from_utf8_lossy(publish.payload.get(..4).expect("numbered"));
        assert!(numbers.insert(number.into_owned()), "delivered twice");
    }
    let expected: BTreeSet<String> = (0..5).map(|n| format!("{n:04}")).collect();
    assert_eq!(numbers, expected);
}

fn sqs_client_without_retries(broker: &Broker) -> aws_sdk_sqs::Client {
    let config = common::sqs::client(broker)
        .config()
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

fn sns_client_without_retries(broker: &Broker) -> aws_sdk_sns::Client {
    let config = common::sns::client(broker)
        .config()
        .to_builder()
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sns::Client::from_conf(config)
}

/// The AWS error code and HTTP status of a failed SDK call.
fn throttled<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E>>,
) -> (String, u16) {
    let error = result.expect_err("refused under the alarm");
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().map(str::to_owned);
    (
        code.expect("an error code"),
        status.expect("an HTTP answer"),
    )
}

#[tokio::test]
async fn sqs_sends_are_throttled_while_receives_and_deletes_drain() {
    let broker =
        Broker::start_with(|config| config.memory_high_watermark_bytes = WATERMARK_BYTES).await;
    let api = Api::new(&broker);
    let sqs = sqs_client_without_retries(&broker);
    let url = common::sqs::create_queue(&sqs, "flow-sqs").await;
    let body = "x".repeat(BODY_BYTES);
    let send = || {
        sqs.send_message()
            .queue_url(&url)
            .message_body(&body)
            .send()
    };
    within(send())
        .await
        .expect("the first send crosses the watermark");
    alarm_in_effect(&api, true).await;

    // SQS's own throttling error, which the SDKs classify as throttling and retry.
    assert_eq!(
        throttled(within(send()).await),
        ("RequestThrottled".to_owned(), 400)
    );
    let entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
        .id("one")
        .message_body("small")
        .build()
        .expect("an entry");
    let batch = sqs
        .send_message_batch()
        .queue_url(&url)
        .entries(entry)
        .send();
    assert_eq!(
        throttled(within(batch).await),
        ("RequestThrottled".to_owned(), 400)
    );

    // Receiving and deleting still work, and free the memory.
    let received = within(sqs.receive_message().queue_url(&url).send())
        .await
        .expect("ReceiveMessage");
    let messages = received.messages();
    assert_eq!(messages.len(), 1);
    let message = messages.first().expect("one message");
    assert_eq!(message.body(), Some(body.as_str()));
    let handle = message.receipt_handle().expect("a receipt handle");
    within(
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(handle)
            .send(),
    )
    .await
    .expect("DeleteMessage");
    alarm_in_effect(&api, false).await;
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("after")
            .send(),
    )
    .await
    .expect("sends resume once the alarm clears");
}

#[tokio::test]
async fn sns_publishes_are_throttled_while_the_subscribed_queue_drains() {
    let broker =
        Broker::start_with(|config| config.memory_high_watermark_bytes = WATERMARK_BYTES).await;
    let api = Api::new(&broker);
    let sns = sns_client_without_retries(&broker);
    let topic = common::sns::create_topic(&sns, "flow-topic").await;
    let (url, _) = common::sns::subscribe_queue(&broker, &topic, "flow-topic-q", &[]).await;
    let body = "x".repeat(BODY_BYTES);
    let publish = || sns.publish().topic_arn(&topic).message(&body).send();
    within(publish())
        .await
        .expect("the first publish crosses the watermark");
    alarm_in_effect(&api, true).await;

    assert_eq!(
        throttled(within(publish()).await),
        ("Throttling".to_owned(), 400)
    );
    let entry = aws_sdk_sns::types::PublishBatchRequestEntry::builder()
        .id("one")
        .message("small")
        .build()
        .expect("an entry");
    let batch = sns
        .publish_batch()
        .topic_arn(&topic)
        .publish_batch_request_entries(entry);
    assert_eq!(
        throttled(within(batch.send()).await),
        ("Throttling".to_owned(), 400)
    );

    let sqs = sqs_client_without_retries(&broker);
    let received = within(sqs.receive_message().queue_url(&url).send())
        .await
        .expect("ReceiveMessage");
    let messages = received.messages();
    assert_eq!(
        messages.len(),
        1,
        "only the first publish reached the queue"
    );
    let handle = messages
        .first()
        .and_then(|m| m.receipt_handle())
        .expect("a handle");
    within(
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(handle)
            .send(),
    )
    .await
    .expect("DeleteMessage");
    alarm_in_effect(&api, false).await;
    within(sns.publish().topic_arn(&topic).message("after").send())
        .await
        .expect("publishes resume once the alarm clears");
}
