//! MQTT over WebSocket against the real broker: rumqttc on `/ws` and `/mqtt`, the same topics as
//! plain MQTT and AMQP, and MQTT packets cut and packed across WebSocket frames.

mod common;

use common::mqtt::{next_publish, subscribed};
use common::websocket::{self, next_message};
use common::{Broker, within};
use futures_util::SinkExt;
use rumqttc::QoS;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn rumqttc_over_ws_meets_plain_mqtt_on_the_same_topics() {
    let broker = Broker::start().await;
    let mut browser = broker.mqtt(broker.mqtt_ws_options("browser", "/ws")).await;
    browser
        .client
        .subscribe("sensors/+/temp", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut browser.events).await;
    let mut device = broker.mqtt(broker.mqtt_options("device")).await;
    device
        .client
        .publish("sensors/kitchen/temp", QoS::AtLeastOnce, false, "21.5")
        .await
        .expect("publish");
    sent(&mut device.events).await;
    let got = next_publish(&mut browser.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("sensors/kitchen/temp", &b"21.5"[..])
    );
    // And back: the page publishes, the device receives.
    device
        .client
        .subscribe("commands/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut device.events).await;
    browser
        .client
        .publish(
            "commands/heater",
            QoS::AtLeastOnce,
            false,
            vec![0u8, 255, 1],
        )
        .await
        .expect("publish");
    // The browser's event loop must run for its PUBLISH to leave.
    let mut events = browser.events;
    let browser_loop = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let got = next_publish(&mut device.events).await;
    assert_eq!(&got.payload[..], [0, 255, 1]);
    browser_loop.abort();
}

#[tokio::test]
async fn the_mqtt_path_works_like_ws_and_amqp_consumers_see_websocket_publishes() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    common::declare(&channel, "from-browser", Default::default()).await;
    within(channel.queue_bind(
        "from-browser".into(),
        "amq.topic".into(),
        "page.#".into(),
        Default::default(),
        Default::default(),
    ))
    .await
    .expect("bind");
    let mut page = broker.mqtt(broker.mqtt_ws_options("page", "/mqtt")).await;
    page.client
        .publish("page/clicked", QoS::AtLeastOnce, false, "button 1")
        .await
        .expect("publish");
    within(async {
        loop {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_))) =
                page.events.poll().await
            {
                return;
            }
        }
    })
    .await;
    let message = common::get(&channel, "from-browser")
        .await
        .expect("a message");
    assert_eq!(message.delivery.data, b"button 1");
}

/// CONNECT (3.1.1, client id "w", keep alive 60 s).
const CONNECT: [u8; 15] = [
    0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'w',
];
/// SUBSCRIBE packet id 1 to "t" at QoS 0, then PINGREQ.
const SUBSCRIBE_AND_PING: [u8; 10] = [0x82, 6, 0, 1, 0, 1, b't', 0, 0xc0, 0];

#[tokio::test]
async fn packets_split_across_frames_and_packed_into_one_frame_both_parse() {
    let broker = Broker::start().await;
    let mut socket = websocket::open(broker.server.ws_addr, "/ws", "mqtt")
        .await
        .expect("upgrade");
    let (head, tail) = CONNECT.split_at(5);
    socket
        .send(Message::binary(head.to_vec()))
        .await
        .expect("send");
    socket
        .send(Message::binary(tail.to_vec()))
        .await
        .expect("send");
    assert_eq!(
        next_binary(&mut socket).await,
        [0x20, 2, 0, 0],
        "CONNACK accepted"
    );
    socket
        .send(Message::binary(SUBSCRIBE_AND_PING.to_vec()))
        .await
        .expect("send");
    let mut answers = Vec::new();
    while answers.len() < 7 {
        answers.extend(next_binary(&mut socket).await);
    }
    assert_eq!(answers, [0x90, 3, 0, 1, 0, 0xd0, 0], "SUBACK then PINGRESP");
}

#[tokio::test]
async fn mqtt_3_1_clients_offer_mqttv3_1() {
    let broker = Broker::start().await;
    let mut socket = websocket::open(broker.server.ws_addr, "/mqtt", "mqttv3.1")
        .await
        .expect("upgrade");
    // CONNECT with protocol name MQIsdp, level 3, client id "x".
    let connect = [
        0x10, 15, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 60, 0, 1, b'x',
    ];
    socket
        .send(Message::binary(connect.to_vec()))
        .await
        .expect("send");
    assert_eq!(next_binary(&mut socket).await, [0x20, 2, 0, 0]);
}

/// Drives `events` until its queued PUBLISH has gone out.
async fn sent(events: &mut rumqttc::EventLoop) {
    within(async {
        loop {
            let event = events.poll().await.expect("connected");
            if let rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(_)) = event {
                return;
            }
        }
    })
    .await;
}

async fn next_binary(socket: &mut websocket::WebSocket) -> Vec<u8> {
    match next_message(socket).await {
        Some(Message::Binary(bytes)) => bytes.to_vec(),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}
