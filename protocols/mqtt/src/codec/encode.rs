//! Packets to octets. Each packet body is written through a [`Sink`] twice: once into a
//! [`Measure`], which yields the remaining length and refuses what the wire cannot carry, then
//! into the output after the fixed header.
//!
//! Runs on whichever task owns the output buffer (the connection task).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use bytes::{BufMut, BytesMut};

use super::connect::put_connect;
use super::decode::packet_type::*;
use super::properties::{SubscribeProperties, UserPropertiesOnly, put_block};
use super::wire::{Measure, Sink, VAR_INT_MAX, Writer, var_int_len, write_var_int};
use super::{
    Ack, AckProperties, Auth, AuthProperties, ConnAck, Disconnect, DisconnectProperties,
    EncodeError, Packet, ProtocolVersion, Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

/// Appends one packet in `version`'s layout; a CONNECT is written in its own `version` field.
///
/// What `version` cannot carry is not written: properties and reason codes in 3.x, and
/// subscription options other than QoS. An AUTH in 3.x, a value too long for its field or a
/// packet over the protocol's 268,435,455-octet remaining length is an error, and then nothing
/// is appended.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let remaining_length = measure(packet, version)?;
    let remaining_length_field = u32::try_from(remaining_length)
        .ok()
        .filter(|&length| length <= VAR_INT_MAX)
        .ok_or(EncodeError::PacketTooLarge { remaining_length })?;
    out.reserve(1 + var_int_len(remaining_length_field) + remaining_length);
    out.put_u8(first_octet(packet));
    write_var_int(remaining_length_field, out);
    let body_start = out.len();
    put_body(packet, version, &mut Writer { out });
    // Measure and Writer saw the same calls; a difference is our bug and would desynchronise
    // the peer.
    debug_assert_eq!(out.len() - body_start, remaining_length);
    Ok(())
}

/// The octets [`encode`] would append, fixed header included: what a peer's Maximum Packet
/// Size limits. For a packet `encode` refuses, the length it would have had.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let mut measure = Measure::default();
    put_body(packet, version, &mut measure);
    let field = u32::try_from(measure.len).unwrap_or(u32::MAX);
    1 + var_int_len(field) + measure.len
}

/// The remaining length of `packet`, or why it cannot be encoded.
fn measure(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let mut measure = Measure::default();
    put_body(packet, version, &mut measure);
    match measure.error {
        Some(error) => Err(error),
        None => Ok(measure.len),
    }
}

/// The packet type and flags (2.1.1).
fn first_octet(packet: &Packet) -> u8 {
    let (packet_type, flags) = match packet {
        Packet::Connect(_) => (CONNECT, 0),
        Packet::ConnAck(_) => (CONNACK, 0),
        Packet::Publish(publish) => (PUBLISH, publish_flags(publish)),
        Packet::PubAck(_) => (PUBACK, 0),
        Packet::PubRec(_) => (PUBREC, 0),
        // [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]: bits 3-0 are 0,0,1,0.
        Packet::PubRel(_) => (PUBREL, 0b0010),
        Packet::PubComp(_) => (PUBCOMP, 0),
        Packet::Subscribe(_) => (SUBSCRIBE, 0b0010),
        Packet::SubAck(_) => (SUBACK, 0),
        Packet::Unsubscribe(_) => (UNSUBSCRIBE, 0b0010),
        Packet::UnsubAck(_) => (UNSUBACK, 0),
        Packet::PingReq => (PINGREQ, 0),
        Packet::PingResp => (PINGRESP, 0),
        Packet::Disconnect(_) => (DISCONNECT, 0),
        Packet::Auth(_) => (AUTH, 0),
    };
    packet_type << 4 | flags
}

fn publish_flags(publish: &Publish) -> u8 {
    u8::from(publish.dup) << 3 | (publish.qos as u8) << 1 | u8::from(publish.retain)
}

fn put_body<S: Sink>(packet: &Packet, version: ProtocolVersion, s: &mut S) {
    let v5 = version.is_v5();
    match packet {
        Packet::Connect(connect) => put_connect(connect, s),
        Packet::ConnAck(connack) => put_connack(connack, version, s),
        Packet::Publish(publish) => put_publish(publish, v5, s),
        Packet::PubAck(ack) | Packet::PubRec(ack) | Packet::PubRel(ack) | Packet::PubComp(ack) => {
            put_ack(ack, v5, s);
        }
        Packet::Subscribe(subscribe) => put_subscribe(subscribe, v5, s),
        Packet::SubAck(suback) => put_suback(suback, v5, s),
        Packet::Unsubscribe(unsubscribe) => put_unsubscribe(unsubscribe, v5, s),
        Packet::UnsubAck(unsuback) => put_unsuback(unsuback, v5, s),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(disconnect) => put_disconnect(disconnect, v5, s),
        Packet::Auth(auth) => put_auth(auth, v5, s),
    }
}

fn put_connack<S: Sink>(connack: &ConnAck, version: ProtocolVersion, s: &mut S) {
    // 3.1 has no session present flag; the whole octet is reserved there.
    let session_present = connack.session_present && version != ProtocolVersion::V3_1;
    s.put_u8(u8::from(session_present));
    s.put_u8(connack.code);
    if version.is_v5() {
        put_block(s, &connack.properties);
    }
}

fn put_publish<S: Sink>(publish: &Publish, v5: bool, s: &mut S) {
    s.put_string(&publish.topic);
    match (publish.qos, publish.packet_id) {
        (QoS::AtMostOnce, None) => {
            // [MQTT-3.3.1-2] "The DUP flag MUST be set to 0 for all QoS 0 messages."
            if publish.dup {
                s.reject(EncodeError::Invalid(
                    "[MQTT-3.3.1-2] QoS 0 PUBLISH with the DUP flag",
                ));
            }
        }
        (QoS::AtMostOnce, Some(_)) => s.reject(EncodeError::Invalid(
            "[MQTT-2.2.1-2] QoS 0 PUBLISH with a packet identifier",
        )),
        (_, Some(packet_id)) => s.put_u16(packet_id.get()),
        (_, None) => s.reject(EncodeError::Invalid(
            "[MQTT-2.2.1-3] QoS > 0 PUBLISH without a packet identifier",
        )),
    }
    if v5 {
        put_block(s, &publish.properties);
    }
    s.put_raw(&publish.payload);
}

fn put_ack<S: Sink>(ack: &Ack, v5: bool, s: &mut S) {
    s.put_u16(ack.packet_id.get());
    let no_properties = ack.properties == AckProperties::default();
    // MQTT 5 3.4.2.1: "The Reason Code and Property Length can be omitted if the Reason Code
    // is 0x00 (Success) and there are no Properties." The property length alone may be
    // omitted too when there are no properties (3.4.2.2.1).
    if !v5 || (ack.reason == 0 && no_properties) {
        return;
    }
    s.put_u8(ack.reason);
    if !no_properties {
        put_block(s, &ack.properties);
    }
}

fn put_subscribe<S: Sink>(subscribe: &Subscribe, v5: bool, s: &mut S) {
    s.put_u16(subscribe.packet_id.get());
    if v5 {
        let properties = SubscribeProperties {
            subscription_identifier: subscribe.subscription_identifier,
            user_properties: &subscribe.user_properties,
        };
        put_block(s, &properties);
    }
    if subscribe.filters.is_empty() {
        s.reject(EncodeError::Invalid(
            "[MQTT-3.8.3-3] SUBSCRIBE without a topic filter",
        ));
    }
    for subscription in &subscribe.filters {
        s.put_string(&subscription.filter);
        let mut options = subscription.qos as u8;
        if v5 {
            if subscription.retain_handling > 2 {
                s.reject(EncodeError::Invalid(
                    "[MQTT-5.0 3.8.3.1] retain handling above 2",
                ));
            }
            options |= u8::from(subscription.no_local) << 2
                | u8::from(subscription.retain_as_published) << 3
                | (subscription.retain_handling & 0b11) << 4;
        }
        s.put_u8(options);
    }
}

fn put_suback<S: Sink>(suback: &SubAck, v5: bool, s: &mut S) {
    s.put_u16(suback.packet_id.get());
    if v5 {
        put_block(s, &suback.properties);
        s.put_raw(&suback.reasons);
    } else {
        // 3.x has one failure code, 0x80, for every v5 failure reason.
        for &code in &suback.reasons {
            s.put_u8(if code >= 0x80 { 0x80 } else { code });
        }
    }
}

fn put_unsubscribe<S: Sink>(unsubscribe: &Unsubscribe, v5: bool, s: &mut S) {
    s.put_u16(unsubscribe.packet_id.get());
    if v5 {
        put_block(s, &UserPropertiesOnly(&unsubscribe.user_properties));
    }
    if unsubscribe.filters.is_empty() {
        s.reject(EncodeError::Invalid(
            "[MQTT-3.10.3-2] UNSUBSCRIBE without a topic filter",
        ));
    }
    for filter in &unsubscribe.filters {
        s.put_string(filter);
    }
}

fn put_unsuback<S: Sink>(unsuback: &UnsubAck, v5: bool, s: &mut S) {
    s.put_u16(unsuback.packet_id.get());
    if v5 {
        put_block(s, &unsuback.properties);
        s.put_raw(&unsuback.reasons);
    }
}

fn put_disconnect<S: Sink>(disconnect: &Disconnect, v5: bool, s: &mut S) {
    let no_properties = disconnect.properties == DisconnectProperties::default();
    // MQTT 5 3.14.2.1: "The Reason Code and Property Length can be omitted if the Reason Code
    // is 0x00 (Normal disconnecton) and there are no Properties."
    if !v5 || (disconnect.reason == 0 && no_properties) {
        return;
    }
    s.put_u8(disconnect.reason);
    if !no_properties {
        put_block(s, &disconnect.properties);
    }
}

fn put_auth<S: Sink>(auth: &Auth, v5: bool, s: &mut S) {
    if !v5 {
        s.reject(EncodeError::Invalid("AUTH exists only in MQTT 5"));
        return;
    }
    // MQTT 5 3.15.2.1: both may be omitted for Success without properties; otherwise the
    // property length is written too, as the spec only describes omitting both.
    if auth.reason == 0 && auth.properties == AuthProperties::default() {
        return;
    }
    s.put_u8(auth.reason);
    put_block(s, &auth.properties);
}
