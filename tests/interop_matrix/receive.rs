//! The receiving side: one subscribed client per protocol, and the messages it takes, each
//! turned into the protocol-neutral [`Received`] view.

use lapin::options::{BasicConsumeOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer};
use mqbridge_stomp::codec::{Command, Frame};
use rumqttc::v5::mqttbytes::QoS as QoS5;

use crate::common::interop::{Received, StompWs};
use crate::common::mqtt::v5;
use crate::common::stomp::StompClient;
use crate::common::{self, Broker, declare, next_delivery, table, text, within};
use crate::samples::{Destination, Protocol};

/// A receiver, subscribed.
pub enum Inbox {
    Amqp {
        consumer: Consumer,
        /// Kept open while the consumer runs.
        _channel: (Connection, Channel),
    },
    Mqtt311(Box<common::mqtt::Client>),
    Mqtt5(Box<v5::Client>),
    Stomp(StompClient),
    StompWs(StompWs),
    Sqs(aws_sdk_sqs::Client, String),
}

/// Sets `dest.receiver` up to get what is published to `dest` from now on.
pub async fn subscribe(broker: &Broker, channel: &Channel, dest: &Destination) -> Inbox {
    let (queue, key) = (dest.queue.as_str(), dest.key.as_str());
    let stomp_queue = format!("/queue/{queue}");
    match dest.receiver {
        Protocol::Amqp => {
            declare_bound(channel, queue, key).await;
            let (connection, channel) = broker.channel().await;
            let consumer = consume(&channel, queue).await;
            Inbox::Amqp {
                consumer,
                _channel: (connection, channel),
            }
        }
        Protocol::Stomp => {
            let mut client = StompClient::open(broker).await;
            client.subscribe("matrix", &stomp_queue, "auto").await;
            bind(channel, queue, key).await;
            Inbox::Stomp(client)
        }
        Protocol::StompWs => {
            let mut client = StompWs::open(broker).await;
            let subscribe = Frame::new(Command::Subscribe)
                .with("id", "matrix")
                .with("destination", &stomp_queue);
            client.request(subscribe).await;
            bind(channel, queue, key).await;
            Inbox::StompWs(client)
        }
        Protocol::Sqs => {
            declare_bound(channel, queue, key).await;
            let sqs = common::sqs::client(broker);
            let url = queue_url(&sqs, queue).await;
            Inbox::Sqs(sqs, url)
        }
        Protocol::Mqtt311 | Protocol::Mqtt5 | Protocol::MqttWs => {
            let hop = table(&[
                ("x-message-ttl", AMQPValue::LongInt(0)),
                ("x-dead-letter-exchange", text("amq.topic")),
                ("x-dead-letter-routing-key", text(key)),
            ]);
            declare(channel, queue, hop).await;
            subscribe_mqtt(broker, dest).await
        }
        Protocol::Sns => unreachable!("SNS only publishes"),
    }
}

async fn subscribe_mqtt(broker: &Broker, dest: &Destination) -> Inbox {
    let id = format!("receiver-{}", dest.queue);
    if dest.receiver == Protocol::Mqtt311 {
        let mut options = broker.mqtt_options(&id);
        options.set_credentials("guest", "guest");
        let mut client = broker.mqtt(options).await;
        let subscribe = client
            .client
            .subscribe(dest.topic(), rumqttc::QoS::AtLeastOnce);
        subscribe.await.expect("subscribe");
        common::mqtt::subscribed(&mut client.events).await;
        return Inbox::Mqtt311(Box::new(client));
    }
    let mut client = mqtt5_client(broker, &id, dest.receiver).await;
    subscribe5(&mut client, &dest.topic()).await;
    Inbox::Mqtt5(Box::new(client))
}

pub async fn mqtt5_client(broker: &Broker, id: &str, transport: Protocol) -> v5::Client {
    let mut options = match transport {
        Protocol::MqttWs => broker.mqtt5_ws_options(id, "/mqtt"),
        _ => broker.mqtt5_options(id),
    };
    options.set_credentials("guest", "guest");
    broker.mqtt5(options).await
}

pub async fn subscribe5(client: &mut v5::Client, filter: &str) {
    let subscribe = client.client.subscribe(filter, QoS5::AtLeastOnce);
    subscribe.await.expect("subscribe");
    v5::subscribed(&mut client.events).await;
}

pub async fn declare_bound(channel: &Channel, queue: &str, key: &str) {
    declare(channel, queue, FieldTable::default()).await;
    bind(channel, queue, key).await;
}

async fn bind(channel: &Channel, queue: &str, key: &str) {
    let options = QueueBindOptions::default();
    let bound = channel.queue_bind(
        queue.into(),
        "amq.topic".into(),
        key.into(),
        options,
        FieldTable::default(),
    );
    within(bound).await.expect("queue.bind");
}

pub async fn consume(channel: &Channel, queue: &str) -> Consumer {
    let options = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let consumer = channel.basic_consume(queue.into(), "".into(), options, FieldTable::default());
    within(consumer).await.expect("basic.consume")
}

pub async fn queue_url(sqs: &aws_sdk_sqs::Client, queue: &str) -> String {
    let url = within(sqs.get_queue_url().queue_name(queue).send()).await;
    url.expect("GetQueueUrl").queue_url.expect("a queue URL")
}

/// Takes `count` messages into `into`; each wait is bounded by the helpers.
pub async fn take(inbox: &mut Inbox, count: usize, into: &mut Vec<Received>) {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    while into.len() < count {
        match inbox {
            Inbox::Amqp { consumer, .. } => {
                into.push(Received::from_amqp(&next_delivery(consumer).await));
            }
            Inbox::Mqtt311(client) => {
                let publish = common::mqtt::next_publish(&mut client.events).await;
                into.push(Received::from_mqtt311(&publish));
            }
            Inbox::Mqtt5(client) => {
                into.push(Received::from_mqtt5(
                    &v5::next_publish(&mut client.events).await,
                ));
            }
            Inbox::Stomp(client) => {
                into.push(Received::from_stomp(&client.expect(Command::Message).await));
            }
            Inbox::StompWs(client) => {
                let frame = client.next().await;
                assert_eq!(frame.command, Command::Message, "{frame:?}");
                into.push(Received::from_stomp(&frame));
            }
            Inbox::Sqs(sqs, url) => {
                let receive = sqs
                    .receive_message()
                    .queue_url(url.as_str())
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_attribute_names("All")
                    .message_system_attribute_names(MessageSystemAttributeName::All);
                let output = within(receive.send()).await.expect("ReceiveMessage");
                into.extend(output.messages().iter().map(Received::from_sqs));
            }
        }
    }
}
