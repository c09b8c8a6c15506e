//! The publishing side: each protocol's client sends a sample with every field its protocol
//! has for the sample's properties and headers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use mqbridge_stomp::codec::{Command, Frame};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::PublishProperties;

use crate::common::interop::{Background, StompWs, TRANSFER_ENCODING, amqp_text, is_sqs_text};
use crate::common::mqtt::v5;
use crate::common::stomp::StompClient;
use crate::common::{self, Broker, table, text, within};
use crate::expect::reply_seen_by;
use crate::receive::{mqtt5_client, queue_url};
use crate::samples::{Destination, Protocol, Sample};

/// What a publish leaves behind: the message ids the broker assigned (SQS, SNS), and an MQTT
/// event loop that must keep running until the receivers are done.
pub struct Publication {
    pub assigned_ids: Vec<Option<String>>,
    _running: Option<Background>,
}

impl Publication {
    fn done(count: usize) -> Publication {
        Publication {
            assigned_ids: vec![None; count],
            _running: None,
        }
    }
}

/// Publishes `samples`, in order, with `dest.publisher`'s client.
pub async fn publish(
    broker: &Broker,
    channel: &Channel,
    dest: &Destination,
    samples: &[Sample],
) -> Publication {
    match dest.publisher {
        Protocol::Amqp => publish_amqp(broker, dest, samples).await,
        Protocol::Mqtt311 => publish_mqtt311(broker, dest, samples).await,
        Protocol::Mqtt5 | Protocol::MqttWs => publish_mqtt5(broker, dest, samples).await,
        Protocol::Stomp => {
            let mut client = StompClient::open(broker).await;
            for sample in samples {
                client.request(stomp_send(dest, sample)).await;
            }
            Publication::done(samples.len())
        }
        Protocol::StompWs => {
            let mut client = StompWs::open(broker).await;
            for sample in samples {
                client.request(stomp_send(dest, sample)).await;
            }
            Publication::done(samples.len())
        }
        Protocol::Sqs => publish_sqs(broker, dest, samples).await,
        Protocol::Sns => publish_sns(broker, channel, dest, samples).await,
    }
}

async fn publish_amqp(broker: &Broker, dest: &Destination, samples: &[Sample]) -> Publication {
    let (_connection, channel) = broker.channel().await;
    let confirms = channel.confirm_select(ConfirmSelectOptions::default());
    within(confirms).await.expect("confirm.select");
    for sample in samples {
        let confirm = within(channel.basic_publish(
            "amq.topic".into(),
            dest.key.as_str().into(),
            BasicPublishOptions::default(),
            &sample.body,
            amqp_properties(sample),
        ))
        .await
        .expect("basic.publish");
        let confirmation = within(confirm).await.expect("publisher confirm");
        assert!(confirmation.is_ack(), "{confirmation:?}");
    }
    Publication::done(samples.len())
}

fn amqp_properties(sample: &Sample) -> BasicProperties {
    let mode = if sample.persistent { 2 } else { 1 };
    let mut props = BasicProperties::default().with_delivery_mode(mode);
    for (name, value) in &sample.properties {
        let short = value.as_str().into();
        props = match *name {
            "message-id" => props.with_message_id(short),
            "correlation-id" => props.with_correlation_id(short),
            "content-type" => props.with_content_type(short),
            "content-encoding" => props.with_content_encoding(short),
            "reply-to" => props.with_reply_to(short),
            "expiration" => props.with_expiration(short),
            "priority" => props.with_priority(value.parse().expect("a priority")),
            "timestamp" => props.with_timestamp(value.parse().expect("seconds")),
            "type" => props.with_type(short),
            "app-id" => props.with_app_id(short),
            "user-id" => props.with_user_id(short),
            other => panic!("no AMQP property {other}"),
        };
    }
    if sample.headers.is_empty() {
        return props;
    }
    props.with_headers(table(&sample.headers))
}

async fn publish_mqtt311(broker: &Broker, dest: &Destination, samples: &[Sample]) -> Publication {
    let mut options = broker.mqtt_options(&dest.client_id());
    options.set_credentials("guest", "guest");
    let common::mqtt::Client { client, mut events } = broker.mqtt(options).await;
    for sample in samples {
        let qos = match sample.persistent {
            true => rumqttc::QoS::AtLeastOnce,
            false => rumqttc::QoS::AtMostOnce,
        };
        let publish = client.publish(dest.topic(), qos, false, sample.body.clone());
        publish.await.expect("publish");
    }
    let running = tokio::spawn(async move {
        let _client = client;
        while events.poll().await.is_ok() {}
    });
    Publication {
        _running: Some(Background(running.abort_handle())),
        ..Publication::done(samples.len())
    }
}

async fn publish_mqtt5(broker: &Broker, dest: &Destination, samples: &[Sample]) -> Publication {
    let id = dest.client_id();
    let v5::Client {
        client, mut events, ..
    } = mqtt5_client(broker, &id, dest.publisher).await;
    for sample in samples {
        // QoS 2 over TCP, QoS 1 over WebSocket: both mean persistent.
        let qos = match (sample.persistent, dest.publisher) {
            (false, _) => QoS5::AtMostOnce,
            (true, Protocol::Mqtt5) => QoS5::ExactlyOnce,
            (true, _) => QoS5::AtLeastOnce,
        };
        let body = sample.body.clone();
        let publish = client.publish_with_properties(
            dest.topic(),
            qos,
            false,
            body,
            mqtt5_properties(sample),
        );
        publish.await.expect("publish");
    }
    let running = tokio::spawn(async move {
        let _client = client;
        while events.poll().await.is_ok() {}
    });
    Publication {
        _running: Some(Background(running.abort_handle())),
        ..Publication::done(samples.len())
    }
}

fn mqtt5_properties(sample: &Sample) -> PublishProperties {
    let mut props = PublishProperties {
        payload_format_indicator: sample.payload_format,
        ..PublishProperties::default()
    };
    for (name, value) in &sample.properties {
        match *name {
            "correlation-id" => props.correlation_data = Some(Bytes::from(value.clone())),
            "content-type" => props.content_type = Some(value.clone()),
            "reply-to" => props.response_topic = Some(reply_seen_by(Protocol::Mqtt5, value)),
            "expiration" => {
                let ms: u32 = value.parse().expect("ms");
                props.message_expiry_interval = Some(ms / 1000);
            }
            "message-id" => {
                let property = ("amqp-message-id".to_owned(), value.clone());
                props.user_properties.push(property);
            }
            other => props
                .user_properties
                .push((other.to_owned(), value.clone())),
        }
    }
    let headers = sample.headers.iter();
    let headers = headers.map(|(name, value)| ((*name).to_owned(), amqp_text(value)));
    props.user_properties.extend(headers);
    props
}

/// A SEND of `sample`. STOMP over TCP names the message id `amqp-message-id`, over WebSocket
/// `message-id` (both are allowed on SEND).
fn stomp_send(dest: &Destination, sample: &Sample) -> Frame {
    let mut frame = Frame::new(Command::Send)
        .with("destination", format!("/topic/{}", dest.key))
        .with_body(sample.body.clone());
    if sample.persistent {
        frame = frame.with("persistent", "true");
    }
    for (name, value) in &sample.properties {
        let header = match *name {
            "message-id" if dest.publisher == Protocol::Stomp => "amqp-message-id",
            other => other,
        };
        frame = frame.with(header, value.clone());
    }
    for (name, value) in &sample.headers {
        frame = frame.with(name, amqp_text(value));
    }
    frame
}

/// An SQS or SNS message attribute.
struct Attribute {
    name: &'static str,
    data_type: &'static str,
    /// The string value, or the binary one.
    value: Result<String, Vec<u8>>,
}

impl Attribute {
    pub fn new(name: &'static str, value: &AMQPValue) -> Attribute {
        let (data_type, value) = match value {
            AMQPValue::ByteArray(bytes) => ("Binary", Err(bytes.as_slice().to_vec())),
            AMQPValue::LongString(_) if matches!(name, "priority" | "expiration") => {
                ("Number", Ok(amqp_text(value)))
            }
            AMQPValue::LongString(_) => ("String", Ok(amqp_text(value))),
            other => ("Number", Ok(amqp_text(other))),
        };
        Attribute {
            name,
            data_type,
            value,
        }
    }
}

/// Every attribute of `sample`: its properties by text name, then its headers.
fn attributes(sample: &Sample) -> Vec<Attribute> {
    let properties = sample.properties.iter().map(|(n, v)| (*n, text(v)));
    let all: Vec<(&str, AMQPValue)> = properties.chain(sample.headers.iter().cloned()).collect();
    all.iter()
        .map(|(name, value)| Attribute::new(name, value))
        .collect()
}

async fn publish_sqs(broker: &Broker, dest: &Destination, samples: &[Sample]) -> Publication {
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageAttributeValue;
    let value = |kind: &str, value: Result<String, Vec<u8>>| {
        let builder = MessageAttributeValue::builder().data_type(kind);
        let builder = match value {
            Ok(text) => builder.string_value(text),
            Err(bytes) => builder.binary_value(Blob::new(bytes)),
        };
        builder.build().expect("attribute")
    };
    let sqs = common::sqs::client(broker);
    let url = queue_url(&sqs, &dest.queue).await;
    let mut assigned_ids = Vec::new();
    for sample in samples {
        let mut send = sqs.send_message().queue_url(&url);
        send = match String::from_utf8(sample.body.clone()) {
            Ok(body) if is_sqs_text(&sample.body) => send.message_body(body),
            _ => send
                .message_body(BASE64.encode(&sample.body))
                .message_attributes(TRANSFER_ENCODING, value("String", Ok("base64".into()))),
        };
        for attribute in attributes(sample) {
            let built = value(attribute.data_type, attribute.value);
            send = send.message_attributes(attribute.name, built);
        }
        let sent = within(send.send()).await.expect("SendMessage");
        assigned_ids.push(sent.message_id);
    }
    Publication {
        assigned_ids,
        _running: None,
    }
}

async fn publish_sns(
    broker: &Broker,
    channel: &Channel,
    dest: &Destination,
    samples: &[Sample],
) -> Publication {
    use aws_sdk_sns::primitives::Blob;
    use aws_sdk_sns::types::MessageAttributeValue;
    let sns = common::sns::client(broker);
    let topic = common::sns::create_topic(&sns, &dest.key).await;
    if dest.receiver == Protocol::Sqs {
        let subscribe = sns
            .subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(common::sns::queue_arn(&dest.queue))
            .attributes("RawMessageDelivery", "true");
        within(subscribe.send()).await.expect("Subscribe");
    } else {
        let options = ExchangeBindOptions::default();
        let args = FieldTable::default();
        let bound = channel.exchange_bind(
            "amq.topic".into(),
            dest.key.as_str().into(),
            "".into(),
            options,
            args,
        );
        within(bound).await.expect("exchange.bind");
    }
    let mut assigned_ids = Vec::new();
    for sample in samples {
        let body = String::from_utf8(sample.body.clone()).expect("SNS messages are text");
        let mut publish = sns.publish().topic_arn(&topic).message(body);
        for attribute in attributes(sample) {
            let builder = MessageAttributeValue::builder().data_type(attribute.data_type);
            let builder = match attribute.value {
                Ok(text) => builder.string_value(text),
                Err(bytes) => builder.binary_value(Blob::new(bytes)),
            };
            let built = builder.build().expect("attribute");
            publish = publish.message_attributes(attribute.name, built);
        }
        let published = within(publish.send()).await.expect("Publish");
        assigned_ids.push(published.message_id);
    }
    Publication {
        assigned_ids,
        _running: None,
    }
}
