//! Connection-level (hard) errors: malformed or out-of-order input closes the offending
//! connection with the right reply code, and never disturbs another client of the same broker.
//! Most inputs here are ones lapin will not produce, so a raw client writes the octets.
//!
//! Not tested: 541 INTERNAL_ERROR, which needs a broker bug to trigger.

mod common;

use bytes::BytesMut;
use common::raw::{FRAME_MAX, RawClient};
use common::{Broker, assert_reply, assert_round_trip, within};
use lapin::options::{BasicConsumeOptions, ExchangeDeclareOptions};
use lapin::protocol::{AMQPClass, basic, queue};
use lapin::types::FieldTable;
use lapin::{Connection, ExchangeKind};
use mqbridge_amqp::codec;

const FRAME_ERROR: u16 = 501;
const SYNTAX_ERROR: u16 = 502;
const COMMAND_INVALID: u16 = 503;
const CHANNEL_ERROR: u16 = 504;
const UNEXPECTED_FRAME: u16 = 505;
const NOT_ALLOWED: u16 = 530;

/// A broker with a lapin client already connected, so that each test can check the bystander
/// still works after the raw client misbehaved.
async fn broker_with_bystander() -> (Broker, Connection) {
    let broker = Broker::start().await;
    let bystander = broker.connect().await;
    (broker, bystander)
}

/// A frame with any type, channel and payload, framed as §4.2.3 says.
fn frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let size = u32::try_from(payload.len()).expect("small payload");
    let mut octets = vec![frame_type];
    octets.extend_from_slice(&channel.to_be_bytes());
    octets.extend_from_slice(&size.to_be_bytes());
    octets.extend_from_slice(payload);
    octets.push(0xCE);
    octets
}

fn qos() -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
        prefetch_count: 1,
        global: false,
    }))
}

#[tokio::test]
async fn a_bad_frame_end_octet_is_501() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let mut octets = BytesMut::new();
    codec::encode_method(1, &qos(), &mut octets).expect("encode");
    let last = octets.len() - 1;
    octets[last] = 0x00;
    raw.send(&octets).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, FRAME_ERROR);
    assert_round_trip(&bystander, "after-bad-frame-end").await;
}

#[tokio::test]
async fn a_frame_over_frame_max_is_501() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    // Only the header: the broker must refuse the frame from its declared size alone. Twice
    // frame-max, so that even RabbitMQ's allowance for off-by-8 clients does not apply.
    let mut header = vec![3u8];
    header.extend_from_slice(&1u16.to_be_bytes());
    header.extend_from_slice(&(2 * FRAME_MAX).to_be_bytes());
    raw.send(&header).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, FRAME_ERROR);
    assert_round_trip(&bystander, "after-frame-max").await;
}

#[tokio::test]
async fn an_unknown_frame_type_is_501() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.send(&frame(9, 1, b"what")).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, FRAME_ERROR);
    assert_round_trip(&bystander, "after-frame-type").await;
}

#[tokio::test]
async fn a_truncated_method_payload_is_502() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: "truncated".into(),
        ..queue::Declare::default()
    }));
    let mut whole = BytesMut::new();
    codec::encode_method(1, &declare, &mut whole).expect("encode");
    // Class and method ids, the reserved short, and half of the queue name.
    let payload = &whole[7..7 + 10];
    raw.send(&frame(1, 1, payload)).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, SYNTAX_ERROR);
    assert_eq!((close.class_id, close.method_id), (50, 10));
    assert_round_trip(&bystander, "after-truncated").await;
}

#[tokio::test]
async fn a_server_only_method_from_the_client_is_503() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let deliver = basic::Deliver {
        consumer_tag: "fake".into(),
        delivery_tag: 1,
        redelivered: false,
        exchange: "".into(),
        routing_key: "q".into(),
    };
    raw.send_method(1, AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver)))
        .await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, COMMAND_INVALID);
    assert_eq!((close.class_id, close.method_id), (60, 60));
    assert_round_trip(&bystander, "after-deliver").await;
}

#[tokio::test]
async fn an_unknown_exchange_type_closes_the_connection_with_503() {
    let (broker, bystander) = broker_with_bystander().await;
    let (connection, channel) = broker.channel().await;
    let declared = within(channel.exchange_declare(
        "odd-x".into(),
        ExchangeKind::Custom("x-no-such-type".into()),
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_reply(declared, COMMAND_INVALID);
    assert!(!connection.status().connected());
    assert_round_trip(&bystander, "after-exchange-type").await;
}

#[tokio::test]
async fn a_method_on_a_channel_never_opened_is_504() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.send_method(7, qos()).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, CHANNEL_ERROR);
    assert_round_trip(&bystander, "after-unopened").await;
}

#[tokio::test]
async fn a_content_body_before_its_header_is_505() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let mut body = BytesMut::new();
    codec::encode_body(1, b"orphan", &mut body).expect("encode");
    raw.send(&body).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, UNEXPECTED_FRAME);
    assert_round_trip(&bystander, "after-orphan-body").await;
}

#[tokio::test]
async fn a_method_between_publish_and_its_header_is_505() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let publish = basic::Publish {
        exchange: "".into(),
        routing_key: "nowhere".into(),
        mandatory: false,
        immediate: false,
    };
    raw.send_method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(publish)))
        .await;
    raw.send_method(1, qos()).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, UNEXPECTED_FRAME);
    assert_round_trip(&bystander, "after-interleaved").await;
}

#[tokio::test]
async fn a_channel_above_channel_max_is_530() {
    let broker = Broker::start_with(|config| config.channel_max = 2).await;
    let bystander = broker.connect().await;
    let mut raw = RawClient::connect(broker.server.amqp_addr).await;
    raw.handshake(0).await;
    raw.open_channel(2).await;
    let open = AMQPClass::Channel(lapin::protocol::channel::AMQPMethod::Open(
        lapin::protocol::channel::Open {},
    ));
    raw.send_method(3, open).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(close.reply_code, NOT_ALLOWED);
    assert_round_trip(&bystander, "after-channel-max").await;
}

#[tokio::test]
async fn reusing_a_consumer_tag_on_a_channel_is_530() {
    let (broker, bystander) = broker_with_bystander().await;
    let (connection, channel) = broker.channel().await;
    common::declare(&channel, "tagged-q", FieldTable::default()).await;
    let consume = || {
        channel.basic_consume(
            "tagged-q".into(),
            "same-tag".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
    };
    let _first = within(consume()).await.expect("first consumer");
    assert_reply(within(consume()).await, NOT_ALLOWED);
    assert!(!connection.status().connected());
    assert_round_trip(&bystander, "after-tag-reuse").await;
}

#[tokio::test]
async fn garbage_instead_of_the_protocol_header_gets_the_header_back() {
    let (broker, bystander) = broker_with_bystander().await;
    let mut raw = RawClient::connect(broker.server.amqp_addr).await;
    raw.send(b"GET / HTTP/1.1\r\n\r\n").await;
    let answer = raw.read_to_end().await;
    assert_eq!(answer, b"AMQP\x00\x00\x09\x01");
    assert_round_trip(&bystander, "after-http").await;
}
