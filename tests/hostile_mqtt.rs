//! Hostile MQTT input, 3.1.1 and 5, on fresh raw connections: each case asserts what the spec
//! prescribes (an MQTT 5 DISCONNECT reason code once connected; a plain close for 3.1.1 and
//! before CONNACK, where a CONNACK is only a MAY [MQTT-4.13.1-1]). After each case a
//! well-behaved MQTT client and the AMQP bystander (tests/common/hostile.rs) must still work,
//! and no stored message may be lost.

mod common;

use bytes::Bytes;
use common::Broker;
use common::hostile::{Bystander, promptly};
use common::mqtt::raw::{Raw, V3, V5, connect};
use common::mqtt::{Client, alive_client, assert_alive};
use mqbridge_mqtt::codec::{Packet, reason};

/// A broker, its AMQP bystander, and a well-behaved MQTT 3.1.1 client.
struct Scene {
    broker: Broker,
    bystander: Bystander,
    witness: Client,
}

impl Scene {
    async fn start() -> Scene {
        Scene::with(Broker::start().await).await
    }

    async fn with(broker: Broker) -> Scene {
        let bystander = Bystander::start(&broker).await;
        let witness = alive_client(&broker, "witness").await;
        Scene {
            broker,
            bystander,
            witness,
        }
    }

    /// The well-behaved clients still work and nothing stored is gone.
    async fn check(mut self, case: &str) {
        assert_alive(&mut self.witness, "witness", case).await;
        self.bystander.check().await;
    }
}

/// A packet: the first octet, the remaining length as a Variable Byte Integer, the body.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut octets = vec![first];
    octets.extend_from_slice(&variable_integer(body.len()));
    octets.extend_from_slice(body);
    octets
}

fn string(text: &[u8], out: &mut Vec<u8>) {
    let size = u16::try_from(text.len()).expect("a short string");
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(text);
}

/// An MQTT 5 CONNECT with `flags`, a property block and a client id of raw octets.
fn connect_v5(flags: u8, properties: &[u8], client_id: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[5, flags, 0, 30]);
    body.push(u8::try_from(properties.len()).expect("a short property block"));
    body.extend_from_slice(properties);
    string(client_id, &mut body);
    packet(0x10, &body)
}

/// An MQTT 5 PUBLISH at QoS 0 to `topic` with `properties` (under 128 octets) and `payload`.
fn publish_v5(topic: &str, properties: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic.as_bytes(), &mut body);
    body.push(u8::try_from(properties.len()).expect("a short property block"));
    body.extend_from_slice(properties);
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

/// An MQTT 5 SUBSCRIBE (packet id 1, no properties) with the given fixed-header first octet
/// and payload.
fn subscribe_v5(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 1, 0];
    body.extend_from_slice(payload);
    packet(first, &body)
}

/// A connected MQTT 5 raw client sends `octets`; the broker must answer DISCONNECT `code`.
async fn assert_v5_disconnect(scene: &Scene, octets: &[u8], code: u8) {
    let mut raw = Raw::connected(&scene.broker, V5, 30).await;
    raw.send_bytes(octets).await;
    promptly("a v5 DISCONNECT", raw.assert_disconnect(code)).await;
}

/// A fresh raw client sends `octets` before any CONNECT; the broker must close, saying nothing.
async fn assert_closed_before_connack(scene: &Scene, octets: &[u8]) {
    let mut raw = Raw::open(&scene.broker, V5).await;
    raw.send_bytes(octets).await;
    promptly("a close before CONNACK", raw.assert_closed()).await;
}

#[tokio::test]
async fn a_huge_connect_is_refused_on_its_fixed_header() {
    let scene = Scene::start().await;
    // CONNECT declaring 268,435,455 octets, the most MQTT can say; only the fixed header is
    // sent. Before CONNECT the limit is 64 KiB, so the close must not wait for the body.
    assert_closed_before_connack(&scene, &[0x10, 0xFF, 0xFF, 0xFF, 0x7F]).await;
    scene.check("after a huge CONNECT").await;
}

#[tokio::test]
async fn a_v5_publish_over_the_maximum_packet_size_is_0x95_on_its_header() {
    let broker = Broker::start_with(|config| config.mqtt_max_packet_size = 64 * 1024).await;
    let scene = Scene::with(broker).await;
    // [MQTT-3.2.2-15] the client must not exceed the Maximum Packet Size of CONNACK; the
    // server refuses with 0x95 (Packet too large). A 100 MB PUBLISH, fixed header only.
    assert_v5_disconnect(
        &scene,
        &[0x30, 0x80, 0xC2, 0xD7, 0x2F],
        reason::PACKET_TOO_LARGE,
    )
    .await;
    scene.check("after a v5 PUBLISH too large").await;
}

#[tokio::test]
async fn a_3_1_1_publish_over_the_maximum_packet_size_is_closed_on_its_header() {
    let broker = Broker::start_with(|config| config.mqtt_max_packet_size = 64 * 1024).await;
    let scene = Scene::with(broker).await;
    let mut raw = Raw::connected(&scene.broker, V3, 30).await;
    raw.send_bytes(&[0x30, 0x80, 0xC2, 0xD7, 0x2F]).await;
    promptly("a 3.1.1 close", raw.assert_closed()).await;
    scene.check("after a 3.1.1 PUBLISH too large").await;
}

#[tokio::test]
async fn a_client_id_that_is_not_utf8_is_refused() {
    let scene = Scene::start().await;
    // [MQTT-1.5.4-1] ill-formed UTF-8 is a Malformed Packet; in CONNECT, a close.
    assert_closed_before_connack(&scene, &connect_v5(0x02, &[], &[0xC3, 0x28])).await;
    scene.check("after a non-UTF-8 client id").await;
}

#[tokio::test]
async fn a_connect_with_its_reserved_flag_set_is_refused() {
    let scene = Scene::start().await;
    // [MQTT-3.1.2-3] the reserved flag must be 0, else Malformed Packet.
    assert_closed_before_connack(&scene, &connect_v5(0x03, &[], b"reserved")).await;
    scene.check("after a reserved CONNECT flag").await;
}

#[tokio::test]
async fn a_3_1_1_password_without_a_user_name_is_refused() {
    let scene = Scene::start().await;
    // [MQTT-3.1.2-22] 3.1.1: no password flag without the user name flag.
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x42, 0, 30]);
    string(b"nameless", &mut body);
    string(b"secret", &mut body);
    assert_closed_before_connack(&scene, &packet(0x10, &body)).await;
    scene.check("after a password without a user name").await;
}

#[tokio::test]
async fn a_receive_maximum_of_0_in_connect_is_refused() {
    let scene = Scene::start().await;
    // MQTT 5 3.1.2.11.3: "It is a Protocol Error to include the Receive Maximum value more
    // than once or for it to have the value 0." Property 0x21, two octets.
    assert_closed_before_connack(&scene, &connect_v5(0x02, &[0x21, 0, 0], b"zero")).await;
    scene.check("after Receive Maximum 0").await;
}

#[tokio::test]
async fn a_subscribe_without_filters_is_a_protocol_error() {
    let scene = Scene::start().await;
    // [MQTT-3.8.3-2] "A SUBSCRIBE packet with no Payload is a Protocol Error."
    let octets = subscribe_v5(0x82, &[]);
    assert_v5_disconnect(&scene, &octets, reason::PROTOCOL_ERROR).await;
    scene.check("after an empty SUBSCRIBE").await;
}

#[tokio::test]
async fn reserved_subscription_option_bits_are_malformed() {
    let scene = Scene::start().await;
    // [MQTT-3.8.3-5] bits 7 and 6 of the options are reserved; non-zero is malformed.
    let mut payload = Vec::new();
    string(b"a/b", &mut payload);
    payload.push(0xC1);
    let octets = subscribe_v5(0x82, &payload);
    assert_v5_disconnect(&scene, &octets, reason::MALFORMED_PACKET).await;
    scene.check("after reserved option bits").await;
}

#[tokio::test]
async fn a_subscribe_with_wrong_fixed_header_flags_is_malformed() {
    let scene = Scene::start().await;
    // [MQTT-3.8.1-1] SUBSCRIBE's flags are 0010; [MQTT-2.1.3-1] anything else is malformed.
    let mut payload = Vec::new();
    string(b"a/b", &mut payload);
    payload.push(0x01);
    let octets = subscribe_v5(0x80, &payload);
    assert_v5_disconnect(&scene, &octets, reason::MALFORMED_PACKET).await;
    scene.check("after SUBSCRIBE flags 0000").await;
}

#[tokio::test]
async fn a_multi_level_wildcard_before_the_end_is_0x8f() {
    let scene = Scene::start().await;
    // [MQTT-4.7.1-1] '#' must be the last character of a filter: Topic Filter invalid.
    let mut payload = Vec::new();
    string(b"a/#/b", &mut payload);
    payload.push(0x01);
    let octets = subscribe_v5(0x82, &payload);
    assert_v5_disconnect(&scene, &octets, reason::TOPIC_FILTER_INVALID).await;
    scene.check("after filter a/#/b").await;
}

#[tokio::test]
async fn a_property_given_twice_is_a_protocol_error() {
    let scene = Scene::start().await;
    // MQTT 5 3.3.2.3.2: "It is a Protocol Error to include the Payload Format Indicator more
    // than once."
    let octets = publish_v5("a/b", &[0x01, 1, 0x01, 1], b"twice");
    assert_v5_disconnect(&scene, &octets, reason::PROTOCOL_ERROR).await;
    scene.check("after a duplicated property").await;
}

#[tokio::test]
async fn an_unknown_property_identifier_is_malformed() {
    let scene = Scene::start().await;
    // 2.2.2.2: a property identifier is one of the table; 0x7F is none.
    let octets = publish_v5("a/b", &[0x7F, 1], b"unknown");
    assert_v5_disconnect(&scene, &octets, reason::MALFORMED_PACKET).await;
    scene.check("after property 0x7F").await;
}

#[tokio::test]
async fn a_publish_with_both_qos_bits_set_is_malformed() {
    let scene = Scene::start().await;
    // [MQTT-3.3.1-4] "A PUBLISH Packet MUST NOT have both QoS bits set to 1."
    let mut body = Vec::new();
    string(b"a/b", &mut body);
    body.extend_from_slice(&[0, 1, 0]);
    assert_v5_disconnect(&scene, &packet(0x36, &body), reason::MALFORMED_PACKET).await;
    scene.check("after QoS 3").await;
}

#[tokio::test]
async fn the_reserved_packet_type_0_is_malformed() {
    let scene = Scene::start().await;
    assert_v5_disconnect(&scene, &[0x00, 0x00], reason::MALFORMED_PACKET).await;
    let mut raw = Raw::connected(&scene.broker, V3, 30).await;
    raw.send_bytes(&[0x00, 0x00]).await;
    promptly("a 3.1.1 close", raw.assert_closed()).await;
    scene.check("after packet type 0").await;
}

#[tokio::test]
async fn a_pubrel_with_wrong_flags_is_malformed() {
    let scene = Scene::start().await;
    // [MQTT-3.6.1-1] PUBREL's flags are 0010.
    assert_v5_disconnect(&scene, &[0x60, 0x02, 0x00, 0x01], reason::MALFORMED_PACKET).await;
    scene.check("after PUBREL flags 0000").await;
}

#[tokio::test]
async fn a_topic_alias_of_0_is_a_protocol_error() {
    let scene = Scene::start().await;
    // [MQTT-3.3.2-8] "A sender MUST NOT send a PUBLISH packet containing a Topic Alias which
    // has the value 0": a Protocol Error. (0x94 is for an alias above the maximum, 3.14.2.1.)
    let octets = publish_v5("a/b", &[0x23, 0, 0], b"alias");
    assert_v5_disconnect(&scene, &octets, reason::PROTOCOL_ERROR).await;
    scene.check("after topic alias 0").await;
}

#[tokio::test]
async fn an_auth_without_an_authentication_method_is_a_protocol_error() {
    let scene = Scene::start().await;
    // 4.12: a client that gave no Authentication Method in CONNECT may not send AUTH.
    assert_v5_disconnect(&scene, &[0xF0, 0x02, 0x18, 0x00], reason::PROTOCOL_ERROR).await;
    // AUTH does not exist in 3.1.1, where type 15 is reserved.
    let mut raw = Raw::connected(&scene.broker, V3, 30).await;
    raw.send_bytes(&[0xF0, 0x00]).await;
    promptly("a 3.1.1 close", raw.assert_closed()).await;
    scene.check("after AUTH").await;
}

#[tokio::test]
async fn a_disconnect_with_an_unknown_reason_is_a_protocol_error() {
    let scene = Scene::start().await;
    // [MQTT-3.14.2-1] a DISCONNECT's reason must be a disconnect reason code; 0x03 is none.
    assert_v5_disconnect(&scene, &[0xE0, 0x01, 0x03], reason::PROTOCOL_ERROR).await;
    scene.check("after DISCONNECT 0x03").await;
}

#[tokio::test]
async fn thousands_of_user_properties_are_carried_intact() {
    let scene = Scene::start().await;
    let mut subscriber = Raw::connected(&scene.broker, V5, 30).await;
    let mut payload = Vec::new();
    string(b"props/many", &mut payload);
    payload.push(0x00);
    subscriber.send_bytes(&subscribe_v5(0x82, &payload)).await;
    assert!(matches!(subscriber.next().await, Some(Packet::SubAck(_))));
    // 5,000 User Properties (0x26, a string pair each): the spec sets no count limit.
    let mut properties = Vec::new();
    for n in 0..5_000 {
        properties.push(0x26);
        string(format!("k{n}").as_bytes(), &mut properties);
        string(b"v", &mut properties);
    }
    let mut body = Vec::new();
    string(b"props/many", &mut body);
    body.extend_from_slice(&variable_integer(properties.len()));
    body.extend_from_slice(&properties);
    body.extend_from_slice(b"heavy");
    let mut publisher = Raw::connected_with(&scene.broker, connect(V5, "publisher", 30)).await;
    publisher.send_bytes(&packet(0x30, &body)).await;
    let publish = match subscriber.next().await {
        Some(Packet::Publish(publish)) => publish,
        other => panic!("expected the PUBLISH, got {other:?}"),
    };
    assert_eq!(publish.payload, Bytes::from_static(b"heavy"));
    assert_eq!(publish.properties.user_properties.len(), 5_000);
    scene.check("after 5,000 user properties").await;
}

#[tokio::test]
async fn thousands_of_filters_in_one_subscribe_get_one_code_each() {
    let scene = Scene::start().await;
    let mut raw = Raw::connected(&scene.broker, V3, 30).await;
    let mut body = vec![0, 7];
    for n in 0..2_000 {
        string(format!("many/{n}").as_bytes(), &mut body);
        body.push(0x01);
    }
    raw.send_bytes(&packet(0x82, &body)).await;
    let Some(Packet::SubAck(suback)) = raw.next().await else {
        panic!("expected SUBACK");
    };
    // [MQTT-3.9.3-1] one return code per filter, in order.
    assert_eq!(suback.reasons, vec![reason::GRANTED_QOS_1; 2_000]);
    scene.check("after 2,000 filters").await;
}

fn variable_integer(mut value: usize) -> Vec<u8> {
    let mut octets = Vec::new();
    loop {
        let digit = u8::try_from(value % 128).expect("one digit");
        value /= 128;
        octets.push(if value > 0 { digit | 0x80 } else { digit });
        if value == 0 {
            return octets;
        }
    }
}
