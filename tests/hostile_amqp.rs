//! Hostile AMQP 0-9-1 input: each case sends octets a real client would not, on a fresh raw
//! connection, and asserts the exact reply code the spec prescribes. After each case the
//! bystander (tests/common/hostile.rs) proves that another client still works and that no
//! stored message was lost. Inputs that are about resources (declared sizes, nesting, channel
//! counts) must be refused on what is declared, promptly, before the broker buffers anything.

mod common;

use bytes::BytesMut;
use common::Broker;
use common::hostile::{Bystander, promptly};
use common::raw::{FRAME_MAX, RawClient};
use lapin::protocol::{AMQPClass, basic, channel, connection};
use mqbridge_amqp::codec::{self, reply_code};

/// A broker and its bystander.
async fn setup() -> (Broker, Bystander) {
    let broker = Broker::start().await;
    let bystander = Bystander::start(&broker).await;
    (broker, bystander)
}

/// A frame of any type, channel and payload, framed as §4.2.3 says.
fn frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let size = u32::try_from(payload.len()).expect("a payload under 4 GiB");
    let mut octets = vec![frame_type];
    octets.extend_from_slice(&channel.to_be_bytes());
    octets.extend_from_slice(&size.to_be_bytes());
    octets.extend_from_slice(payload);
    octets.push(0xCE);
    octets
}

/// A method payload: class id, method id, then the arguments as given.
fn method(class_id: u16, method_id: u16, arguments: &[u8]) -> Vec<u8> {
    let mut payload = class_id.to_be_bytes().to_vec();
    payload.extend_from_slice(&method_id.to_be_bytes());
    payload.extend_from_slice(arguments);
    payload
}

fn short_string(text: &str, out: &mut Vec<u8>) {
    out.push(u8::try_from(text.len()).expect("a short string"));
    out.extend_from_slice(text.as_bytes());
}

fn long_string(octets: &[u8], out: &mut Vec<u8>) {
    let size = u32::try_from(octets.len()).expect("a long string");
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(octets);
}

/// A field table nesting `depth` tables, each the single field "a" of the one around it.
/// Written outside in: the table at depth k holds 7 * k octets (name, type, inner length).
fn nested_table(depth: u32, out: &mut Vec<u8>) {
    for level in (1..=depth).rev() {
        out.extend_from_slice(&(7 * level).to_be_bytes());
        out.extend_from_slice(&[1, b'a', b'F']);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
}

/// connection.start-ok (10.11) with `client_properties` already encoded.
fn start_ok(client_properties: &[u8], mechanism: &str, response: &[u8]) -> Vec<u8> {
    let mut arguments = client_properties.to_vec();
    short_string(mechanism, &mut arguments);
    long_string(response, &mut arguments);
    short_string("en_US", &mut arguments);
    frame(1, 0, &method(10, 11, &arguments))
}

/// queue.declare (50.10) of a non-durable queue with `arguments` already encoded.
fn queue_declare(name: &str, arguments: &[u8]) -> Vec<u8> {
    let mut payload = 0u16.to_be_bytes().to_vec();
    short_string(name, &mut payload);
    payload.push(0);
    payload.extend_from_slice(arguments);
    frame(1, 1, &method(50, 10, &payload))
}

/// A raw connection that sent the protocol header and read connection.start.
async fn started(broker: &Broker) -> RawClient {
    let mut raw = RawClient::connect(broker.server.amqp_addr).await;
    raw.send(&codec::PROTOCOL_HEADER).await;
    let (_, start) = raw.next_method().await;
    assert!(matches!(
        start,
        AMQPClass::Connection(connection::AMQPMethod::Start(_))
    ));
    raw
}

fn basic_publish(routing_key: &str) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: routing_key.into(),
        mandatory: false,
        immediate: false,
    }))
}

fn qos() -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
        prefetch_count: 1,
        global: false,
    }))
}

/// Asserts the broker closes the connection with `code`, promptly.
async fn assert_closes(raw: &mut RawClient, code: u16, what: &str) -> connection::Close {
    let close = promptly(what, raw.expect_connection_close()).await;
    assert_eq!(close.reply_code, code, "{what}: {close:?}");
    close
}

#[tokio::test]
async fn a_huge_frame_before_login_is_refused_on_its_header_with_501() {
    let (broker, mut bystander) = setup().await;
    let mut raw = started(&broker).await;
    // Only the 7 header octets of a 4 GiB frame: the refusal must come from the declared size
    // (§4.2.3 "oversized frame ... 501"), as the handshake's frame-max is 64 KiB.
    let mut header = vec![1u8, 0, 0];
    header.extend_from_slice(&(u32::MAX - 8).to_be_bytes());
    raw.send(&header).await;
    assert_closes(&mut raw, reply_code::FRAME_ERROR, "a 4 GiB frame header").await;
    bystander.check().await;
}

#[tokio::test]
async fn a_frame_over_the_negotiated_frame_max_is_refused_on_its_header_with_501() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let mut header = vec![3u8, 0, 1];
    header.extend_from_slice(&(FRAME_MAX * 1000).to_be_bytes());
    raw.send(&header).await;
    assert_closes(
        &mut raw,
        reply_code::FRAME_ERROR,
        "a body frame over frame-max",
    )
    .await;
    bystander.check().await;
}

#[tokio::test]
async fn an_amqp_1_0_protocol_header_gets_the_0_9_1_header_back() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::connect(broker.server.amqp_addr).await;
    // §4.2.2: the server "MUST respond with a valid protocol header and then close".
    raw.send(b"AMQP\x00\x01\x00\x00").await;
    assert_eq!(raw.read_to_end().await, codec::PROTOCOL_HEADER);
    bystander.check().await;
}

#[tokio::test]
async fn a_wrong_password_is_403() {
    let (broker, mut bystander) = setup().await;
    let mut raw = started(&broker).await;
    raw.send(&start_ok(&[0, 0, 0, 0], "PLAIN", b"\0guest\0wrong"))
        .await;
    assert_closes(&mut raw, reply_code::ACCESS_REFUSED, "a wrong password").await;
    bystander.check().await;
}

#[tokio::test]
async fn an_unknown_auth_mechanism_is_503() {
    let (broker, mut bystander) = setup().await;
    let mut raw = started(&broker).await;
    raw.send(&start_ok(&[0, 0, 0, 0], "X-NOPE", b"anything"))
        .await;
    assert_closes(&mut raw, reply_code::COMMAND_INVALID, "mechanism X-NOPE").await;
    bystander.check().await;
}

#[tokio::test]
async fn a_channel_open_before_the_connection_is_open_is_503() {
    let (broker, mut bystander) = setup().await;
    let mut raw = started(&broker).await;
    let open = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
    raw.send_method(1, open).await;
    assert_closes(
        &mut raw,
        reply_code::COMMAND_INVALID,
        "channel.open during start",
    )
    .await;
    bystander.check().await;
}

#[tokio::test]
async fn deeply_nested_client_properties_before_login_are_502() {
    let (broker, mut bystander) = setup().await;
    let mut raw = started(&broker).await;
    // 9,000 tables inside each other: 63 KB, under the handshake's 64 KiB frame-max.
    let mut properties = Vec::new();
    nested_table(9_000, &mut properties);
    raw.send(&start_ok(&properties, "PLAIN", b"\0guest\0guest"))
        .await;
    let close = assert_closes(&mut raw, reply_code::SYNTAX_ERROR, "nested properties").await;
    assert_eq!((close.class_id, close.method_id), (10, 11));
    bystander.check().await;
}

#[tokio::test]
async fn deeply_nested_queue_arguments_are_502() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    // As deep as the 4 KiB frame-max the raw client negotiated allows.
    let mut arguments = Vec::new();
    nested_table(550, &mut arguments);
    raw.send(&queue_declare("nested", &arguments)).await;
    let close = assert_closes(&mut raw, reply_code::SYNTAX_ERROR, "nested arguments").await;
    assert_eq!((close.class_id, close.method_id), (50, 10));
    bystander.check().await;
}

#[tokio::test]
async fn an_unknown_field_type_is_502() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    // One field "a" of type 'Z', which §4.2.5.5 does not define.
    let arguments = [0, 0, 0, 3, 1, b'a', b'Z'];
    raw.send(&queue_declare("typeless", &arguments)).await;
    let close = assert_closes(&mut raw, reply_code::SYNTAX_ERROR, "type 'Z'").await;
    assert_eq!((close.class_id, close.method_id), (50, 10));
    bystander.check().await;
}

#[tokio::test]
async fn a_table_longer_than_its_frame_is_502() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    // The table declares 1 MiB and the frame ends after its length.
    let arguments = (1u32 << 20).to_be_bytes();
    raw.send(&queue_declare("overlong", &arguments)).await;
    let close = assert_closes(&mut raw, reply_code::SYNTAX_ERROR, "a 1 MiB table").await;
    assert_eq!((close.class_id, close.method_id), (50, 10));
    bystander.check().await;
}

#[tokio::test]
async fn a_heartbeat_on_a_channel_other_than_0_is_501() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    // §4.2.7: heartbeat frames use channel 0; an invalid one is 501.
    raw.send(&frame(8, 1, &[])).await;
    assert_closes(
        &mut raw,
        reply_code::FRAME_ERROR,
        "a heartbeat on channel 1",
    )
    .await;
    bystander.check().await;
}

#[tokio::test]
async fn a_heartbeat_with_a_payload_is_501() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.send(&frame(8, 0, b"beat")).await;
    assert_closes(
        &mut raw,
        reply_code::FRAME_ERROR,
        "a heartbeat with a payload",
    )
    .await;
    bystander.check().await;
}

#[tokio::test]
async fn a_content_header_of_another_class_is_505() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.send_method(1, basic_publish("wrong-class")).await;
    // Content header: class 50 (queue), weight 0, body size 1, no property flags.
    let mut header = 50u16.to_be_bytes().to_vec();
    header.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    raw.send(&frame(2, 1, &header)).await;
    assert_closes(&mut raw, reply_code::UNEXPECTED_FRAME, "a class 50 header").await;
    bystander.check().await;
}

#[tokio::test]
async fn a_body_longer_than_its_header_declared_is_501() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.send_method(1, basic_publish("bystander-store")).await;
    let mut out = BytesMut::new();
    let properties = lapin::BasicProperties::default();
    codec::encode_header(1, 4, &properties, &mut out).expect("encode");
    codec::encode_body(1, b"four and more", &mut out).expect("encode");
    raw.send(&out).await;
    assert_closes(&mut raw, reply_code::FRAME_ERROR, "a body past its size").await;
    // Nothing of it reached the store queue: check() counts exactly the stored messages.
    bystander.check().await;
}

#[tokio::test]
async fn a_declared_body_of_exabytes_is_406_before_any_body() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.send_method(1, basic_publish("bystander-store")).await;
    let mut out = BytesMut::new();
    let properties = lapin::BasicProperties::default();
    let size = 1u64 << 62;
    codec::encode_header(1, size, &properties, &mut out).expect("encode");
    raw.send(&out).await;
    // A channel error (RabbitMQ's max_message_size check): the connection stays usable.
    let (channel, close) = promptly("a 4 EiB body size", raw.next_method()).await;
    let AMQPClass::Channel(channel::AMQPMethod::Close(close)) = close else {
        panic!("expected channel.close, got {close:?}");
    };
    assert_eq!(
        (channel, close.reply_code),
        (1, reply_code::PRECONDITION_FAILED)
    );
    let close_ok = AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}));
    raw.send_method(1, close_ok).await;
    raw.open_channel(2).await;
    bystander.check().await;
}

#[tokio::test]
async fn a_second_channel_open_on_an_open_channel_is_504() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let open = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
    raw.send_method(1, open).await;
    assert_closes(&mut raw, reply_code::CHANNEL_ERROR, "channel.open twice").await;
    bystander.check().await;
}

#[tokio::test]
async fn a_method_on_a_channel_after_its_close_is_504() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let close = channel::Close {
        reply_code: 200,
        reply_text: "done".into(),
        class_id: 0,
        method_id: 0,
    };
    raw.send_method(1, AMQPClass::Channel(channel::AMQPMethod::Close(close)))
        .await;
    let (_, close_ok) = raw.next_method().await;
    assert!(matches!(
        close_ok,
        AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))
    ));
    raw.send_method(1, qos()).await;
    assert_closes(
        &mut raw,
        reply_code::CHANNEL_ERROR,
        "a closed channel reused",
    )
    .await;
    bystander.check().await;
}

#[tokio::test]
async fn an_unknown_method_id_is_503() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.send(&frame(1, 1, &method(60, 255, &[]))).await;
    let close = assert_closes(&mut raw, reply_code::COMMAND_INVALID, "method 60.255").await;
    assert_eq!((close.class_id, close.method_id), (60, 255));
    bystander.check().await;
}

#[tokio::test]
async fn a_channel_method_on_channel_0_is_503() {
    let (broker, mut bystander) = setup().await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.send_method(0, qos()).await;
    assert_closes(
        &mut raw,
        reply_code::COMMAND_INVALID,
        "basic.qos on channel 0",
    )
    .await;
    bystander.check().await;
}

#[tokio::test]
async fn a_burst_of_channel_opens_past_channel_max_is_530() {
    let broker = Broker::start_with(|config| config.channel_max = 64).await;
    let mut bystander = Bystander::start(&broker).await;
    let mut raw = RawClient::connect(broker.server.amqp_addr).await;
    raw.handshake(0).await;
    // 1,000 channel.open frames in one write; the 65th is over the limit.
    let open = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
    let mut burst = BytesMut::new();
    for id in 1..=1000 {
        codec::encode_method(id, &open, &mut burst).expect("encode");
    }
    raw.send(&burst).await;
    let close = assert_closes(&mut raw, reply_code::NOT_ALLOWED, "1,000 channels").await;
    assert!(close.reply_text.as_str().contains("65"), "{close:?}");
    bystander.check().await;
}

#[tokio::test]
async fn an_unknown_vhost_is_530() {
    let (broker, mut bystander) = setup().await;
    let mut raw = started(&broker).await;
    raw.send(&start_ok(&[0, 0, 0, 0], "PLAIN", b"\0guest\0guest"))
        .await;
    let (_, tune) = raw.next_method().await;
    assert!(matches!(
        tune,
        AMQPClass::Connection(connection::AMQPMethod::Tune(_))
    ));
    let tune_ok = connection::TuneOk {
        channel_max: 0,
        frame_max: FRAME_MAX,
        heartbeat: 0,
    };
    let tune_ok = AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok));
    raw.send_method(0, tune_ok).await;
    let open = connection::Open {
        virtual_host: "no-such-vhost".into(),
    };
    raw.send_method(0, AMQPClass::Connection(connection::AMQPMethod::Open(open)))
        .await;
    assert_closes(&mut raw, reply_code::NOT_ALLOWED, "vhost no-such-vhost").await;
    bystander.check().await;
}

#[tokio::test]
async fn deeply_nested_message_headers_are_502() {
    let (broker, mut bystander) = setup().await;
    // The second flags octet with and without the continuation bit, which amq-protocol
    // ignores: the headers table is where it reads them either way.
    for low_flags in [0x00, 0x01] {
        let mut raw = RawClient::open(broker.server.amqp_addr).await;
        raw.send_method(1, basic_publish("bystander-store")).await;
        // Content header: class 60, weight 0, body size 0, flags: headers, then the table.
        let mut header = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, low_flags];
        nested_table(500, &mut header);
        raw.send(&frame(2, 1, &header)).await;
        let close = assert_closes(&mut raw, reply_code::SYNTAX_ERROR, "nested headers").await;
        assert_eq!((close.class_id, close.method_id), (60, 0));
        bystander.check().await;
    }
}

#[tokio::test]
async fn a_deeply_nested_amqplain_response_is_503() {
    let (broker, mut bystander) = setup().await;
    let mut raw = started(&broker).await;
    // AMQPLAIN's response is a field table without its length prefix.
    let mut table = Vec::new();
    nested_table(8_000, &mut table);
    raw.send(&start_ok(&[0, 0, 0, 0], "AMQPLAIN", &table[4..]))
        .await;
    assert_closes(&mut raw, reply_code::COMMAND_INVALID, "nested AMQPLAIN").await;
    bystander.check().await;
}

#[tokio::test]
async fn headers_nested_to_the_limit_are_delivered() {
    let (broker, mut bystander) = setup().await;
    let (_connection, channel) = broker.channel().await;
    common::declare(&channel, "deep", lapin::types::FieldTable::default()).await;
    let mut headers = lapin::types::FieldTable::default();
    for _ in 1..codec::FIELD_NESTING_MAX {
        let mut outer = lapin::types::FieldTable::default();
        outer.insert("a".into(), lapin::types::AMQPValue::FieldTable(headers));
        headers = outer;
    }
    let properties = lapin::BasicProperties::default().with_headers(headers.clone());
    common::publish_with(&channel, "", "deep", b"deep", properties).await;
    let message = common::get(&channel, "deep").await.expect("the message");
    assert_eq!(message.delivery.properties.headers(), &Some(headers));
    bystander.check().await;
}
