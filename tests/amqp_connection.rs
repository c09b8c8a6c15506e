//! The connection's life: login with each mechanism, vhost checks, tuning, heartbeats, the
//! memory alarm's connection.blocked, and graceful shutdown.

mod common;

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use common::raw::RawClient;
use common::{
    Broker, assert_reply, assert_round_trip, connect_url, declare, get, next_error, publish,
    reply_code, within,
};
use futures_util::{Stream, StreamExt};
use lapin::Event;
use lapin::options::QueuePurgeOptions;
use lapin::types::FieldTable;
use mqbridge_amqp::codec::Frame;

const CONNECTION_FORCED: u16 = 320;
const ACCESS_REFUSED: u16 = 403;
const NOT_ALLOWED: u16 = 530;

/// Idle time that spans several heartbeat intervals of one second.
const IDLE: Duration = Duration::from_secs(3);

fn url(broker: &Broker, user: &str, password: &str, query: &str) -> String {
    let addr = broker.server.amqp_addr;
    format!("amqp://{user}:{password}@{addr}/%2f{query}")
}

#[tokio::test]
async fn plain_login_opens_a_connection() {
    let broker = Broker::start().await;
    let plain = url(&broker, "guest", "guest", "?auth_mechanism=plain");
    let connection = connect_url(&plain).await.expect("PLAIN login");
    assert_eq!(connection.status().username(), "guest");
    assert_round_trip(&connection, "plain-q").await;
}

#[tokio::test]
async fn amqplain_login_opens_a_connection() {
    let broker = Broker::start().await;
    let amqplain = url(&broker, "guest", "guest", "?auth_mechanism=amqplain");
    let connection = connect_url(&amqplain).await.expect("AMQPLAIN login");
    assert_round_trip(&connection, "amqplain-q").await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_403() {
    let broker = Broker::start().await;
    let wrong = url(
        &broker,
        "guest",
        "not-the-password",
        "?auth_mechanism=plain",
    );
    assert_reply(connect_url(&wrong).await, ACCESS_REFUSED);
}

#[tokio::test]
async fn a_wrong_password_over_amqplain_is_refused_with_403() {
    let broker = Broker::start().await;
    let wrong = url(&broker, "guest", "nope", "?auth_mechanism=amqplain");
    assert_reply(connect_url(&wrong).await, ACCESS_REFUSED);
}

#[tokio::test]
async fn an_unknown_user_is_refused_with_403() {
    let broker = Broker::start().await;
    let stranger = url(&broker, "stranger", "guest", "");
    assert_reply(connect_url(&stranger).await, ACCESS_REFUSED);
}

/// This host's address on its default route, if it has one; no packet is sent.
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn guest_from_a_non_loopback_address_is_refused_with_403() {
    // The core's unit tests cover the rule on every host; this runs it end to end where the
    // host has an address other than loopback to connect from.
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this host has no non-loopback address");
        return;
    };
    let broker = Broker::start_with(|config| config.bind = ip).await;
    let addr = broker.server.amqp_addr;
    let refused = connect_url(&format!("amqp://guest:guest@{addr}/%2f")).await;
    assert_reply(refused, ACCESS_REFUSED);
    let open = Broker::start_with(|config| {
        config.bind = ip;
        config.loopback_users.clear();
    })
    .await;
    let addr = open.server.amqp_addr;
    let allowed = connect_url(&format!("amqp://guest:guest@{addr}/%2f")).await;
    allowed.expect("guest may connect from anywhere once not loopback-only");
}

#[tokio::test]
async fn an_unknown_vhost_is_refused_with_530() {
    let broker = Broker::start().await;
    let addr = broker.server.amqp_addr;
    let unknown = format!("amqp://guest:guest@{addr}/no-such-vhost");
    assert_reply(connect_url(&unknown).await, NOT_ALLOWED);
}

#[tokio::test]
async fn lapin_takes_the_brokers_channel_max() {
    let broker = Broker::start_with(|config| config.channel_max = 5).await;
    let connection = broker.connect().await;
    assert_eq!(connection.configuration().channel_max(), 5);
}

#[tokio::test]
async fn bodies_are_split_by_the_clients_frame_max() {
    let broker = Broker::start().await;
    let small_frames = url(&broker, "guest", "guest", "?frame_max=8192");
    let connection = connect_url(&small_frames).await.expect("connect");
    assert_eq!(connection.configuration().frame_max(), 8192);
    let channel = within(connection.create_channel()).await.expect("channel");
    declare(&channel, "frames-q", FieldTable::default()).await;
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    publish(&channel, "", "frames-q", &body).await;
    let message = get(&channel, "frames-q").await.expect("a message");
    assert_eq!(message.delivery.data, body);
}

#[tokio::test]
async fn a_client_heartbeat_keeps_an_idle_connection_open() {
    let broker = Broker::start().await;
    let beating = url(&broker, "guest", "guest", "?heartbeat=1");
    let connection = connect_url(&beating).await.expect("connect");
    assert_eq!(connection.configuration().heartbeat(), 1);
    // Idle on purpose: without heartbeats both ways, one side drops the other within 2 s.
    tokio::time::sleep(IDLE).await;
    assert!(connection.status().connected());
    assert_round_trip(&connection, "client-heartbeat-q").await;
}

#[tokio::test]
async fn a_broker_heartbeat_keeps_an_idle_connection_open() {
    let broker = Broker::start_with(|config| config.heartbeat_secs = 1).await;
    let connection = broker.connect().await;
    assert_eq!(connection.configuration().heartbeat(), 1);
    tokio::time::sleep(IDLE).await;
    assert!(connection.status().connected());
    assert_round_trip(&connection, "broker-heartbeat-q").await;
}

#[tokio::test]
async fn the_broker_sends_heartbeats_on_an_idle_connection() {
    let broker = Broker::start().await;
    let mut raw = RawClient::connect(broker.server.amqp_addr).await;
    raw.handshake(1).await;
    let frame = raw.next_frame().await;
    assert_eq!(frame, Some(Frame::Heartbeat { channel: 0 }));
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_missed_heartbeats() {
    let broker = Broker::start().await;
    let mut raw = RawClient::connect(broker.server.amqp_addr).await;
    raw.handshake(1).await;
    let silent_since = tokio::time::Instant::now();
    raw.expect_closed().await;
    // Two intervals of silence are allowed; closing much sooner would not be heartbeats.
    assert!(silent_since.elapsed() >= Duration::from_secs(1));
}

/// The first event `wanted` accepts; an error or the end of the stream fails the test.
async fn wait_for_event(
    events: &mut (impl Stream<Item = Event> + Unpin),
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    loop {
        let event = within(events.next()).await.expect("the connection lives");
        if let Event::Error(error) = &event {
            panic!("unexpected connection error {error:?}");
        }
        if wanted(&event) {
            return event;
        }
    }
}

#[tokio::test]
async fn crossing_the_memory_watermark_blocks_and_unblocks_publishers() {
    let broker = Broker::start_with(|config| config.memory_high_watermark_bytes = 1000).await;
    let (publisher, channel) = broker.channel().await;
    let mut events = publisher.events_listener();
    declare(&channel, "watermark-q", FieldTable::default()).await;
    publish(&channel, "", "watermark-q", &[7; 2000]).await;
    let blocked = wait_for_event(&mut events, |e| matches!(e, Event::ConnectionBlocked(_))).await;
    let Event::ConnectionBlocked(reason) = blocked else {
        unreachable!("filtered above");
    };
    assert!(!reason.is_empty());
    assert!(publisher.status().blocked());
    // The blocked publisher is not read from, so another connection frees the memory.
    let (_drainer, drain) = broker.channel().await;
    let purged = within(drain.queue_purge("watermark-q".into(), QueuePurgeOptions::default()))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    wait_for_event(&mut events, |e| matches!(e, Event::ConnectionUnblocked)).await;
    assert!(!publisher.status().blocked());
    assert_round_trip(&publisher, "after-unblock-q").await;
}

#[tokio::test]
async fn a_publisher_that_connects_during_an_alarm_is_told_it_is_blocked() {
    let broker = Broker::start_with(|config| config.memory_high_watermark_bytes = 1000).await;
    let (first, channel) = broker.channel().await;
    let mut first_events = first.events_listener();
    declare(&channel, "early-q", FieldTable::default()).await;
    publish(&channel, "", "early-q", &[7; 2000]).await;
    wait_for_event(&mut first_events, |e| {
        matches!(e, Event::ConnectionBlocked(_))
    })
    .await;
    let (late, late_channel) = broker.channel().await;
    let mut late_events = late.events_listener();
    publish(&late_channel, "", "early-q", b"late").await;
    wait_for_event(&mut late_events, |e| {
        matches!(e, Event::ConnectionBlocked(_))
    })
    .await;
    assert!(late.status().blocked());
}

#[tokio::test]
async fn a_blocked_publisher_is_not_dropped_for_missed_heartbeats() {
    let broker = Broker::start_with(|config| {
        config.memory_high_watermark_bytes = 1000;
        config.heartbeat_secs = 1;
    })
    .await;
    let (publisher, channel) = broker.channel().await;
    let mut events = publisher.events_listener();
    declare(&channel, "blocked-beat-q", FieldTable::default()).await;
    publish(&channel, "", "blocked-beat-q", &[7; 2000]).await;
    wait_for_event(&mut events, |e| matches!(e, Event::ConnectionBlocked(_))).await;
    // While blocked the broker does not read the publisher, heartbeats included; it must not
    // count that silence against the client (RabbitMQ pauses its heartbeat monitor).
    tokio::time::sleep(IDLE).await;
    let (_drainer, drain) = broker.channel().await;
    within(drain.queue_purge("blocked-beat-q".into(), QueuePurgeOptions::default()))
        .await
        .expect("purge");
    wait_for_event(&mut events, |e| matches!(e, Event::ConnectionUnblocked)).await;
    assert!(publisher.status().connected());
    assert_round_trip(&publisher, "after-blocked-beat-q").await;
}

#[tokio::test]
async fn shutdown_closes_connections_with_320() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let mut events = connection.events_listener();
    let addr = broker.server.amqp_addr;
    let (_, error) =
        within(async { tokio::join!(broker.shutdown(), next_error(&mut events)) }).await;
    assert_eq!(reply_code(&error), Some(CONNECTION_FORCED));
    let refused = within(tokio::net::TcpStream::connect(addr)).await;
    assert!(refused.is_err(), "the listener is closed after shutdown");
}

#[tokio::test]
async fn a_client_close_is_answered_with_close_ok() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    within(connection.close(200, "bye".into()))
        .await
        .expect("close-ok");
    assert_round_trip(&broker.connect().await, "after-close-q").await;
}
