//! The guards every accepted connection passes (issue 11): the connection cap, the per-address
//! cap, the handshake timeout on every listener, the smaller frame limit before login, and the
//! send timeout that disconnects a consumer which stopped reading while the other consumer of
//! its queue keeps receiving and nothing is lost.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use common::management::{Api, sample};
use common::mqtt::next_publish;
use common::mqtt::raw::{Raw, V3, V5};
use common::stomp::StompClient;
use common::{Broker, WAIT, eventually, next_delivery, publish, publish_with, within};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPClass, basic, channel, connection};
use lapin::types::{FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Consumer};
use mqbridge_amqp::codec;
use mqbridge_mqtt::codec::Packet;
use mqbridge_stomp::codec::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// The handshake timeout of the timeout tests: short, and long against a loopback round trip.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);
/// The send timeout of the slow consumer tests: long enough that the well-behaved consumer's
/// first delivery always comes before it can run out.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// Messages of the slow consumer tests, and their size: together far more than a socket
/// with a small receive window and the connection's outbound backlog hold.
const BACKLOG: usize = 200;
const BODY_SIZE: usize = 64 * 1024;
/// The receive buffer of a client that never reads: small, so its window closes at once.
const STUCK_RECEIVE_BUFFER: u32 = 4096;

const DISCONNECTS: &str = "mqbridge_slow_consumer_disconnects_total";
const REFUSED: &str = "mqbridge_connections_refused_per_address_total";

async fn metric(broker: &Broker, name: &str) -> f64 {
    let text = Api::new(broker).metrics("/metrics").await;
    sample(&text, name).unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// Reads until the broker closes the connection (end of stream or reset); what it sent first.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    within(async {
        let mut received = Vec::new();
        while let Ok(1..) = stream.read_buf(&mut received).await {}
        received
    })
    .await
}

#[tokio::test]
async fn an_address_over_its_cap_is_closed_at_accept_and_let_in_once_one_goes() {
    // A long handshake timeout: only the cap can close the silent third connection in time.
    let broker = Broker::start_with(|c| {
        c.max_connections_per_address = 2;
        c.handshake_timeout_ms = 60_000;
    })
    .await;
    let amqp = broker.connect().await;
    let mut stomp = StompClient::open(&broker).await;
    let started = Instant::now();
    let mut third = within(TcpStream::connect(broker.server.mqtt_addr))
        .await
        .expect("the kernel accepts");
    let sent = until_closed(&mut third).await;
    assert!(sent.is_empty(), "no protocol has spoken yet: {sent:?}");
    assert!(started.elapsed() < WAIT / 2, "closed right after accept");
    assert_eq!(metric(&broker, REFUSED).await, 1.0);

    within(amqp.close(200, "done".into())).await.expect("close");
    eventually("the closed connection is no longer counted", || async {
        metric(&broker, "rabbitmq_connections").await == 1.0
    })
    .await;
    let mut again = StompClient::open(&broker).await;
    common::stomp::assert_alive(&mut again, "guards-again").await;
    common::stomp::assert_alive(&mut stomp, "guards-first").await;
    assert_eq!(metric(&broker, REFUSED).await, 1.0);
}

#[tokio::test]
async fn a_full_broker_serves_the_next_connection_once_one_goes() {
    let broker = Broker::start_with(|c| c.max_connections = 1).await;
    let amqp = broker.connect().await;
    // The broker takes the second socket but waits for a free slot before it speaks; the
    // other listeners, idle, must not hold the slot the first connection frees.
    let mut stomp = StompClient::connect(&broker).await;
    stomp.send(&common::stomp::connect_frame("1.2")).await;
    stomp.assert_quiet().await;

    within(amqp.close(200, "done".into())).await.expect("close");
    stomp.expect(Command::Connected).await;
    common::stomp::assert_alive(&mut stomp, "guards-slot").await;
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_closed_after_the_handshake_timeout_on_every_listener() {
    let timeout = u64::try_from(HANDSHAKE_TIMEOUT.as_millis()).expect("millis");
    let broker = Broker::start_with(|c| c.handshake_timeout_ms = timeout).await;
    let server = &broker.server;
    for (listener, address) in [
        ("amqp", server.amqp_addr),
        ("mqtt", server.mqtt_addr),
        ("stomp", server.stomp_addr),
        ("websocket", server.ws_addr),
        ("sqs", server.sqs_addr),
        ("management", server.management_addr),
    ] {
        let started = Instant::now();
        let mut silent = within(TcpStream::connect(address)).await.expect("connect");
        until_closed(&mut silent).await;
        let waited = started.elapsed();
        assert!(
            waited >= HANDSHAKE_TIMEOUT,
            "{listener} closed early: {waited:?}"
        );
        assert!(
            waited < HANDSHAKE_TIMEOUT * 10,
            "{listener} closed late: {waited:?}"
        );
    }
}

/// A slow loris on the SQS/SNS endpoint: a request head that never ends is cut off.
#[tokio::test]
async fn an_http_request_head_that_never_ends_is_cut_off_in_time() {
    let timeout = u64::try_from(HANDSHAKE_TIMEOUT.as_millis()).expect("millis");
    let broker = Broker::start_with(|c| c.handshake_timeout_ms = timeout).await;
    let started = Instant::now();
    let mut client = within(TcpStream::connect(broker.server.sqs_addr))
        .await
        .expect("connect");
    within(client.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Slow: a"))
        .await
        .expect("a part of a head");
    until_closed(&mut client).await;
    let waited = started.elapsed();
    assert!(
        (HANDSHAKE_TIMEOUT..HANDSHAKE_TIMEOUT * 10).contains(&waited),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn an_amqp_client_that_stops_after_the_protocol_header_is_closed_in_time() {
    let timeout = u64::try_from(HANDSHAKE_TIMEOUT.as_millis()).expect("millis");
    let broker = Broker::start_with(|c| c.handshake_timeout_ms = timeout).await;
    let started = Instant::now();
    let mut client = within(TcpStream::connect(broker.server.amqp_addr))
        .await
        .expect("connect");
    within(client.write_all(&codec::PROTOCOL_HEADER))
        .await
        .expect("header");
    let sent = until_closed(&mut client).await;
    assert!(!sent.is_empty(), "connection.start came before the close");
    let waited = started.elapsed();
    assert!(
        (HANDSHAKE_TIMEOUT..HANDSHAKE_TIMEOUT * 10).contains(&waited),
        "{waited:?}"
    );
}

/// An MQTT CONNECT's first octets, declaring a remaining length of 64 KiB + 1, one over the
/// limit before login; the rest of the packet is never sent.
fn oversized_connect(level: u8) -> Vec<u8> {
    // 65_537 as a variable byte integer.
    vec![0x10, 0x81, 0x80, 0x04, 0, 4, b'M', b'Q', b'T', b'T', level]
}

#[tokio::test]
async fn an_mqtt5_connect_over_the_login_limit_gets_packet_too_large_on_its_declared_length() {
    let broker = Broker::start().await;
    let mut raw = Raw::open(&broker, V5).await;
    raw.send_bytes(&oversized_connect(5)).await;
    match raw.next().await {
        Some(Packet::ConnAck(connack)) => assert_eq!(connack.code, 0x95, "{connack:?}"),
        other => panic!("expected CONNACK 0x95 Packet too large, got {other:?}"),
    }
    raw.assert_closed().await;
    common::mqtt::assert_alive(
        &mut common::mqtt::alive_client(&broker, "ok").await,
        "ok",
        "m",
    )
    .await;
}

#[tokio::test]
async fn an_mqtt3_connect_over_the_login_limit_is_closed_on_its_declared_length() {
    let broker = Broker::start().await;
    let mut raw = Raw::open(&broker, V3).await;
    raw.send_bytes(&oversized_connect(4)).await;
    // 3.1.1 has no return code for it: the connection closes without a CONNACK.
    raw.assert_closed().await;
}

#[tokio::test]
async fn a_stomp_connect_declaring_a_body_over_the_login_limit_gets_an_error() {
    let broker = Broker::start().await;
    let mut client = StompClient::connect(&broker).await;
    // The body is never sent: the declared length alone is refused.
    client
        .send_bytes(b"CONNECT\naccept-version:1.2\nhost:/\ncontent-length:70000\n\n")
        .await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("frame too large"));
    let detail = String::from_utf8_lossy(&error.body).into_owned();
    assert!(detail.contains("65536 octets"), "{detail}");
    client.assert_closed().await;
    // After login the configured limit (16 MiB) applies: the same size goes through.
    let mut logged_in = StompClient::open(&broker).await;
    let body = "x".repeat(70_000);
    logged_in.publish("/queue/guards-large", &body).await;
    common::stomp::assert_alive(&mut logged_in, "guards-large-alive").await;
}

// The slow consumer cases: one client per protocol subscribes over a socket it never reads,
// next to a well-behaved consumer of the same queue.

/// Connects with a small receive window, sends `opening` and never reads.
async fn stuck_client(address: SocketAddr, opening: &[u8]) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(STUCK_RECEIVE_BUFFER)
        .expect("SO_RCVBUF");
    let mut stream = within(socket.connect(address)).await.expect("connect");
    within(stream.write_all(opening))
        .await
        .expect("opening sent");
    stream
}

fn body(index: usize) -> Vec<u8> {
    let mut body = format!("{index:08}").into_bytes();
    body.resize(BODY_SIZE, b'.');
    body
}

fn index_of(body: &[u8]) -> usize {
    let digits = std::str::from_utf8(body.get(..8).expect("an index")).expect("digits");
    digits.parse().expect("an index")
}

async fn slow_consumer_broker() -> Broker {
    let timeout = u64::try_from(SEND_TIMEOUT.as_millis()).expect("millis");
    Broker::start_with(|c| c.send_timeout_ms = timeout).await
}

/// Declares `queue` as STOMP's `/queue/` does (durable) and consumes it with prefetch 50.
async fn good_consumer(channel: &Channel, queue: &str) -> Consumer {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    within(channel.queue_declare(queue.into(), options, FieldTable::default()))
        .await
        .expect("queue.declare");
    within(channel.basic_qos(50, BasicQosOptions::default()))
        .await
        .expect("basic.qos");
    let options = BasicConsumeOptions::default();
    within(channel.basic_consume(queue.into(), "good".into(), options, FieldTable::default()))
        .await
        .expect("basic.consume")
}

/// Waits until `queue` has both consumers, the stuck one included.
async fn both_consuming(broker: &Broker, queue: &str) {
    let api = Api::new(broker);
    eventually("the stuck client consumes", || async {
        let queues = api.get_ok("/api/queues").await;
        let listed = queues.as_array().expect("a list");
        listed
            .iter()
            .any(|q| q["name"] == queue && q["consumers"] == 2)
    })
    .await;
}

/// The whole backlog reaches the well-behaved AMQP consumer: some while the stuck client is
/// still connected, the stuck client's share once it is disconnected (redelivered).
async fn every_message_reaches_the_good_consumer(broker: &Broker, consumer: &mut Consumer) {
    let mut seen = BTreeSet::new();
    let mut redelivered = 0;
    while seen.len() < BACKLOG {
        let delivery = next_delivery(consumer).await;
        if seen.is_empty() {
            assert_eq!(metric(broker, DISCONNECTS).await, 0.0, "received meanwhile");
        }
        redelivered += usize::from(delivery.redelivered);
        seen.insert(index_of(&delivery.data));
        within(delivery.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    assert_eq!(seen, (0..BACKLOG).collect(), "none lost");
    assert!(redelivered > 0, "the stuck client's deliveries came back");
    assert_eq!(metric(broker, DISCONNECTS).await, 1.0);
}

/// Runs one slow consumer case: the stuck client consumes `queue` with `opening`, the backlog
/// is published to `queue` through the default exchange.
async fn slow_consumer_case(address: impl Fn(&Broker) -> SocketAddr, queue: &str, opening: &[u8]) {
    let broker = slow_consumer_broker().await;
    let (connection, channel) = broker.channel().await;
    let mut consumer = good_consumer(&channel, queue).await;
    let mut stuck = stuck_client(address(&broker), opening).await;
    both_consuming(&broker, queue).await;
    let publisher = within(connection.create_channel()).await.expect("channel");
    for index in 0..BACKLOG {
        publish(&publisher, "", queue, &body(index)).await;
    }
    every_message_reaches_the_good_consumer(&broker, &mut consumer).await;
    // The broker has closed the stuck socket: what it still holds drains, then it ends.
    until_closed(&mut stuck).await;
}

fn amqp_method(channel: u16, method: AMQPClass, out: &mut BytesMut) {
    codec::encode_method(channel, &method, out).expect("encode");
}

/// The whole opening of an AMQP consumer, sent without waiting for a single answer: header,
/// start-ok, tune-ok, open, channel.open, basic.consume (manual acks, no prefetch limit).
fn amqp_opening(queue: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&codec::PROTOCOL_HEADER);
    let start_ok = connection::StartOk {
        client_properties: FieldTable::default(),
        mechanism: ShortString::from("PLAIN"),
        response: LongString::from("\0guest\0guest"),
        locale: ShortString::from("en_US"),
    };
    let tune_ok = connection::TuneOk {
        channel_max: 16,
        frame_max: 131_072,
        heartbeat: 0,
    };
    let open = connection::Open {
        virtual_host: ShortString::from("/"),
    };
    let consume = basic::Consume {
        queue: ShortString::from(queue),
        consumer_tag: ShortString::from("stuck"),
        no_local: false,
        no_ack: false,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    };
    use connection::AMQPMethod as C;
    amqp_method(0, AMQPClass::Connection(C::StartOk(start_ok)), &mut out);
    amqp_method(0, AMQPClass::Connection(C::TuneOk(tune_ok)), &mut out);
    amqp_method(0, AMQPClass::Connection(C::Open(open)), &mut out);
    let channel_open = channel::AMQPMethod::Open(channel::Open {});
    amqp_method(1, AMQPClass::Channel(channel_open), &mut out);
    amqp_method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Consume(consume)),
        &mut out,
    );
    out.to_vec()
}

/// A STOMP 1.2 CONNECT and a SUBSCRIBE with individual acks and room for the whole backlog.
fn stomp_opening(queue: &str) -> Vec<u8> {
    format!(
        "CONNECT\naccept-version:1.2\nhost:/\n\n\0\
         SUBSCRIBE\nid:0\ndestination:/queue/{queue}\nack:client-individual\n\
         prefetch-count:100000\n\n\0"
    )
    .into_bytes()
}

/// A client-to-server WebSocket binary frame (masked, with a zero key as RFC 6455 allows).
fn websocket_frame(payload: &[u8]) -> Vec<u8> {
    let length = u16::try_from(payload.len()).expect("a small frame");
    let mut frame = vec![0x82, 0x80 | 126];
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

#[tokio::test]
async fn an_amqp_consumer_that_stops_reading_is_disconnected_and_loses_nothing() {
    let queue = "guards-slow-amqp";
    slow_consumer_case(|b| b.server.amqp_addr, queue, &amqp_opening(queue)).await;
}

#[tokio::test]
async fn a_stomp_consumer_that_stops_reading_is_disconnected_and_loses_nothing() {
    let queue = "guards-slow-stomp";
    slow_consumer_case(|b| b.server.stomp_addr, queue, &stomp_opening(queue)).await;
}

#[tokio::test]
async fn a_websocket_consumer_that_stops_reading_is_disconnected_and_loses_nothing() {
    let queue = "guards-slow-ws";
    let mut opening =
        common::websocket::upgrade_request("/ws", "Sec-WebSocket-Protocol: v12.stomp\r\n")
            .into_bytes();
    for frame in stomp_opening(queue).split_inclusive(|&octet| octet == 0) {
        opening.extend(websocket_frame(frame));
    }
    slow_consumer_case(|b| b.server.ws_addr, queue, &opening).await;
}

/// An MQTT 5 CONNECT with Receive Maximum 65535 (no in-flight limit to speak of), and a QoS 1
/// SUBSCRIBE to `filter`.
fn mqtt_opening(filter: &str) -> Vec<u8> {
    let client_id = b"stuck";
    let mut connect = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 0];
    connect.extend_from_slice(&[3, 0x21, 0xFF, 0xFF]);
    connect.extend_from_slice(&[0, 5]);
    connect.extend_from_slice(client_id);
    let mut subscribe = vec![0, 1, 0];
    subscribe.extend_from_slice(&u16::try_from(filter.len()).expect("short").to_be_bytes());
    subscribe.extend_from_slice(filter.as_bytes());
    subscribe.push(0x01);
    let mut opening = Vec::new();
    for (first, rest) in [(0x10, connect), (0x82, subscribe)] {
        opening.push(first);
        opening.push(u8::try_from(rest.len()).expect("under 128"));
        opening.extend(rest);
    }
    opening
}

// The messages are persistent: a transient one reaches an MQTT subscriber as QoS 0, which is
// settled once written (at most once, RabbitMQ's rule too) and may go with the connection.
#[tokio::test]
async fn an_mqtt_consumer_that_stops_reading_is_disconnected_and_loses_nothing() {
    let broker = slow_consumer_broker().await;
    let filter = "$share/guards/slow";
    let mut options = broker.mqtt_options("good");
    options.set_max_packet_size(1 << 20, 1 << 20);
    let mut good = broker.mqtt(options).await;
    let subscribe = good.client.subscribe(filter, rumqttc::QoS::AtLeastOnce);
    within(subscribe).await.expect("subscribe");
    common::mqtt::subscribed(&mut good.events).await;
    let mut stuck = stuck_client(broker.server.mqtt_addr, &mqtt_opening(filter)).await;
    both_consuming(&broker, "mqtt-shared/guards/slow").await;
    let (_connection, publisher) = broker.channel().await;
    let persistent = BasicProperties::default().with_delivery_mode(2);
    for index in 0..BACKLOG {
        publish_with(
            &publisher,
            "amq.topic",
            "slow",
            &body(index),
            persistent.clone(),
        )
        .await;
    }
    let mut seen = BTreeSet::new();
    while seen.len() < BACKLOG {
        let message = next_publish(&mut good.events).await;
        if seen.is_empty() {
            assert_eq!(
                metric(&broker, DISCONNECTS).await,
                0.0,
                "received meanwhile"
            );
        }
        seen.insert(index_of(&message.payload));
    }
    assert_eq!(seen, (0..BACKLOG).collect(), "none lost");
    assert_eq!(metric(&broker, DISCONNECTS).await, 1.0);
    until_closed(&mut stuck).await;
}
