//! Octets to packets: the fixed header, then each packet type's variable header and payload.
//!
//! Runs on the connection task, on its read buffer. See the parent module for the layout, the
//! rules enforced here and the ones left to the session.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use bytes::{Buf, BytesMut};

use super::connect::decode_connect;
use super::packet::reason::allowed;
use super::properties;
use super::wire::{Reader, VarInt, read_var_int};
use super::{
    Ack, AckProperties, Auth, ConnAck, ConnAckProperties, DecodeError, Disconnect,
    DisconnectProperties, Packet, PacketId, ProtocolVersion, Publish, PublishProperties, QoS,
};
use crate::topic;

mod subscriptions;

use subscriptions::{decode_suback, decode_subscribe, decode_unsuback, decode_unsubscribe};

/// The largest amount [`decode`] reserves ahead for a packet still arriving. Reserving is only
/// an optimisation; past this the buffer grows with the octets that actually arrive, so that a
/// five-octet fixed header announcing 256 MiB cannot make us allocate 256 MiB.
const RESERVE_AHEAD_MAX: usize = 1 << 20;

/// The packet types of spec 2.1.2, Table 2-1.
pub(super) mod packet_type {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBREL: u8 = 6;
    pub const PUBCOMP: u8 = 7;
    pub const SUBSCRIBE: u8 = 8;
    pub const SUBACK: u8 = 9;
    pub const UNSUBSCRIBE: u8 = 10;
    pub const UNSUBACK: u8 = 11;
    pub const PINGREQ: u8 = 12;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;
    pub const AUTH: u8 = 15;
}

use packet_type::*;

/// The first octet and the remaining length, checked.
#[derive(Debug, Clone, Copy)]
struct FixedHeader {
    packet_type: u8,
    flags: u8,
    /// The octets of the fixed header: 1 plus those of the remaining length.
    header_size: usize,
    /// The whole packet, fixed header included, as Maximum Packet Size counts it.
    packet_size: usize,
}

/// Decodes one packet from the front of `buf`.
///
/// `version` is the version the connection's CONNECT settled; `None` before it, when only a
/// CONNECT is accepted. A CONNECT is always decoded by its own protocol level. `Ok(None)` means
/// more octets are needed: nothing is consumed, though `buf` may have reserved room.
/// `max_packet_size` counts the whole packet, fixed header included, as MQTT 5's Maximum
/// Packet Size does; 0 means no limit but the protocol's own. A packet over the limit is
/// refused from its fixed header alone, before its body is buffered; until the CONNECT is
/// accepted the caller passes a lower limit than afterwards (STYLE.md section 2).
///
/// After an error the connection is finished; the packet's octets may or may not have been
/// consumed.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = decode_fixed_header(buf, version, max_packet_size)? else {
        return Ok(None);
    };
    if buf.len() < header.packet_size {
        let missing = header.packet_size - buf.len();
        buf.reserve(missing.min(RESERVE_AHEAD_MAX));
        return Ok(None);
    }
    let mut octets = buf.split_to(header.packet_size).freeze();
    octets.advance(header.header_size);
    let version = version.unwrap_or(ProtocolVersion::V3_1_1);
    let mut r = Reader::new(octets, version.is_v5());
    decode_body(header, version, &mut r).map(Some)
}

/// Reads and checks the fixed header without consuming it. The type and flags are checked
/// from the first octet, so that garbage (an HTTP request, a TLS hello) fails at once.
fn decode_fixed_header(
    buf: &[u8],
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
) -> Result<Option<FixedHeader>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let packet_type = first >> 4;
    let flags = first & 0x0F;
    check_type(packet_type, version)?;
    check_flags(packet_type, flags)?;
    let (remaining_length, length_size) = match read_var_int(rest) {
        VarInt::Complete(value, size) => (value as usize, size),
        VarInt::Incomplete => return Ok(None),
        // 2.1.4 / 3.1.1 2.2.3: "The maximum number of bytes in the Remaining Length field is
        // four", and [MQTT-1.5.5-1] "The encoded value MUST use the minimum number of bytes
        // necessary to represent the value".
        VarInt::Invalid => return Err(DecodeError::MalformedRemainingLength),
    };
    let header_size = 1 + length_size;
    let packet_size = header_size + remaining_length;
    // [MQTT-3.2.2-15] "The Client MUST NOT send packets exceeding Maximum Packet Size to the
    // Server. If a Server receives a packet whose size exceeds this limit, this is a Protocol
    // Error, the Server uses DISCONNECT with Reason Code 0x95 (Packet too large)". 3.1.1 has no
    // such property, but a server may refuse what it cannot hold. Checked before a single body
    // octet is buffered.
    if max_packet_size != 0 && packet_size > max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size: packet_size,
            max: max_packet_size,
        });
    }
    Ok(Some(FixedHeader {
        packet_type,
        flags,
        header_size,
        packet_size,
    }))
}

fn check_type(packet_type: u8, version: Option<ProtocolVersion>) -> Result<(), DecodeError> {
    match (packet_type, version) {
        (CONNECT, _) => Ok(()),
        // [MQTT-3.1.0-1] "After a Network Connection is established by a Client to a Server,
        // the first packet sent from the Client to the Server MUST be a CONNECT packet."
        (_, None) => Err(DecodeError::ProtocolError(
            "[MQTT-3.1.0-1] the first packet is not CONNECT",
        )),
        // Table 2-1: type 0 is "Reserved, Forbidden".
        (0, _) => Err(DecodeError::Malformed(
            "[MQTT 2.1.2] packet type 0 is reserved",
        )),
        // 3.1.1 Table 2.1: type 15 is "Reserved, Forbidden"; MQTT 5 made it AUTH.
        (AUTH, Some(version)) if !version.is_v5() => Err(DecodeError::Malformed(
            "[MQTT 3.1.1 2.2.1] packet type 15 is reserved before MQTT 5",
        )),
        _ => Ok(()),
    }
}

fn check_flags(packet_type: u8, flags: u8) -> Result<(), DecodeError> {
    if packet_type == PUBLISH {
        return check_publish_flags(flags);
    }
    let expected = match packet_type {
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        _ => 0b0000,
    };
    // [MQTT-2.2.2-1] (MQTT 5: [MQTT-2.1.3-1]) "Where a flag bit is marked as "Reserved" ... it
    // is reserved for future use and MUST be set to the value listed in that table."
    // [MQTT-2.2.2-2] "If invalid flags are received, the receiver MUST close the Network
    // Connection." [MQTT-3.6.1-1], [MQTT-3.8.1-1] and [MQTT-3.10.1-1] say the same of PUBREL,
    // SUBSCRIBE and UNSUBSCRIBE, whose bits are 0,0,1,0.
    if flags != expected {
        return Err(DecodeError::Malformed(
            "[MQTT-2.2.2-1] reserved fixed-header flag bits have the wrong value",
        ));
    }
    Ok(())
}

fn check_publish_flags(flags: u8) -> Result<(), DecodeError> {
    let qos = (flags >> 1) & 0b11;
    // [MQTT-3.3.1-4] "A PUBLISH Packet MUST NOT have both QoS bits set to 1. If a Server or
    // Client receives a PUBLISH Packet which has both QoS bits set to 1 it MUST close the
    // Network Connection."
    if qos == 3 {
        return Err(DecodeError::Malformed(
            "[MQTT-3.3.1-4] PUBLISH has both QoS bits set",
        ));
    }
    // [MQTT-3.3.1-2] "The DUP flag MUST be set to 0 for all QoS 0 messages."
    if qos == 0 && flags & 0b1000 != 0 {
        return Err(DecodeError::Malformed(
            "[MQTT-3.3.1-2] QoS 0 PUBLISH has the DUP flag set",
        ));
    }
    Ok(())
}

fn decode_body(
    header: FixedHeader,
    version: ProtocolVersion,
    r: &mut Reader,
) -> Result<Packet, DecodeError> {
    let packet = match header.packet_type {
        CONNECT => Packet::Connect(Box::new(decode_connect(r)?)),
        CONNACK => Packet::ConnAck(decode_connack(r, version)?),
        PUBLISH => Packet::Publish(decode_publish(r, header.flags)?),
        PUBACK => Packet::PubAck(decode_ack(r, &PUBACK_RULES)?),
        PUBREC => Packet::PubRec(decode_ack(r, &PUBREC_RULES)?),
        PUBREL => Packet::PubRel(decode_ack(r, &PUBREL_RULES)?),
        PUBCOMP => Packet::PubComp(decode_ack(r, &PUBCOMP_RULES)?),
        SUBSCRIBE => Packet::Subscribe(decode_subscribe(r)?),
        SUBACK => Packet::SubAck(decode_suback(r)?),
        UNSUBSCRIBE => Packet::Unsubscribe(decode_unsubscribe(r)?),
        UNSUBACK => Packet::UnsubAck(decode_unsuback(r)?),
        PINGREQ => {
            r.finish("[MQTT 3.12] PINGREQ has a remaining length other than 0")?;
            Packet::PingReq
        }
        PINGRESP => {
            r.finish("[MQTT 3.13] PINGRESP has a remaining length other than 0")?;
            Packet::PingResp
        }
        DISCONNECT => Packet::Disconnect(decode_disconnect(r)?),
        _ => Packet::Auth(decode_auth(r)?),
    };
    Ok(packet)
}

/// The packet identifier of PUBLISH (QoS > 0), SUBSCRIBE and UNSUBSCRIBE.
fn request_packet_id(r: &mut Reader) -> Result<PacketId, DecodeError> {
    let id = r.u16("the packet identifier")?;
    // [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]) "Each time a Client sends a new SUBSCRIBE,
    // UNSUBSCRIBE, or PUBLISH (where QoS > 0) MQTT Control Packet it MUST assign it a non-zero
    // Packet Identifier that is currently unused."
    PacketId::new(id).ok_or(DecodeError::Malformed(if r.is_v5() {
        "[MQTT-2.2.1-3] PUBLISH, SUBSCRIBE or UNSUBSCRIBE has packet identifier 0"
    } else {
        "[MQTT-2.3.1-1] PUBLISH, SUBSCRIBE or UNSUBSCRIBE has packet identifier 0"
    }))
}

/// The packet identifier of an acknowledgement, which echoes a request's and so is never 0.
fn ack_packet_id(r: &mut Reader) -> Result<PacketId, DecodeError> {
    let id = r.u16("the packet identifier")?;
    // [MQTT-2.2.1-5], [MQTT-2.2.1-6] (3.1.1: [MQTT-2.3.1-6], [MQTT-2.3.1-7]): an
    // acknowledgement "MUST contain the same Packet Identifier" as the packet it answers.
    PacketId::new(id).ok_or(DecodeError::ProtocolError(
        "[MQTT-2.2.1-5] acknowledgement has packet identifier 0, which no request can have",
    ))
}

/// Fails with `error` unless `code` is one of `allowed`.
fn check_reason(code: u8, allowed: &[u8], error: &'static str) -> Result<u8, DecodeError> {
    if allowed.contains(&code) {
        Ok(code)
    } else {
        Err(DecodeError::ProtocolError(error))
    }
}

fn decode_connack(r: &mut Reader, version: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let flags = r.u8("the connect acknowledge flags")?;
    // [MQTT-3.2.2-1] "Bits 7-1 are reserved and MUST be set to 0." (3.1.1 says the same in
    // 3.2.2.1, without an id.)
    if flags & 0xFE != 0 {
        return Err(DecodeError::Malformed(
            "[MQTT-3.2.2-1] CONNACK reserved flag bits are not 0",
        ));
    }
    let code = r.u8("the connect reason code")?;
    let properties = if r.is_v5() {
        // [MQTT-3.2.2-8] "The Server sending the CONNACK packet MUST use one of the Connect
        // Reason Code values."
        check_reason(
            code,
            allowed::CONNACK,
            "[MQTT-3.2.2-8] CONNACK reason code is not a connect reason code",
        )?;
        properties::read_connack(r)?
    } else {
        // 3.1.1 Table 3.1: return codes 6-255 are "Reserved for future use".
        if code > 5 {
            return Err(DecodeError::ProtocolError(
                "[MQTT 3.1.1 3.2.2.3] CONNACK return code is reserved",
            ));
        }
        ConnAckProperties::default()
    };
    r.finish("[MQTT 3.2] CONNACK has octets after its last field")?;
    Ok(ConnAck {
        // MQTT 3.1 has no session present flag: its first CONNACK octet is reserved (and
        // unused), so bit 0 means nothing there, and encoding writes 0.
        session_present: version != ProtocolVersion::V3_1 && flags & 0x01 != 0,
        code,
        properties,
    })
}

fn decode_publish(r: &mut Reader, flags: u8) -> Result<Publish, DecodeError> {
    // check_publish_flags has refused QoS 3 already.
    let qos = QoS::from_u8((flags >> 1) & 0b11).unwrap_or(QoS::AtMostOnce);
    // [MQTT-3.3.2-1] "The Topic Name MUST be present as the first field in the PUBLISH packet
    // Variable Header. It MUST be a UTF-8 Encoded String."
    let topic = r.string("the topic name")?;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(request_packet_id(r)?),
    };
    let properties = if r.is_v5() {
        properties::read_publish(r)?
    } else {
        PublishProperties::default()
    };
    if topic.is_empty() && r.is_v5() {
        // MQTT 5 3.3.2.3.4: a PUBLISH may send "a zero length Topic Name" with a Topic Alias;
        // "It is a Protocol Error if the Topic Name is zero length and there is no Topic
        // Alias." The session resolves the alias.
        if properties.topic_alias.is_none() {
            return Err(DecodeError::ProtocolError(
                "[MQTT-5.0 3.3.2.3.4] PUBLISH has an empty topic name and no topic alias",
            ));
        }
    } else {
        // [MQTT-3.3.2-2] "The Topic Name in the PUBLISH packet MUST NOT contain wildcard
        // characters", and the rules of 4.7.3.
        topic::validate_name(&topic).map_err(DecodeError::InvalidTopicName)?;
    }
    Ok(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 0b0001 != 0,
        topic,
        packet_id,
        payload: r.rest(),
        properties,
    })
}

/// What differs between PUBACK, PUBREC, PUBREL and PUBCOMP: their reason codes and the
/// messages of their errors.
struct AckRules {
    allowed: &'static [u8],
    bad_reason: &'static str,
    bad_property: &'static str,
    trailing_v3: &'static str,
    trailing_v5: &'static str,
}

const PUBACK_RULES: AckRules = AckRules {
    allowed: allowed::PUBACK,
    bad_reason: "[MQTT-3.4.2-1] PUBACK reason code is not a PUBACK reason code",
    bad_property: "[MQTT-5.0 2.2.2.2] PUBACK has a property PUBACK may not carry",
    trailing_v3: "[MQTT 3.1.1 3.4.1] PUBACK remaining length is not 2",
    trailing_v5: "[MQTT 3.4] PUBACK has octets after its properties",
};

const PUBREC_RULES: AckRules = AckRules {
    allowed: allowed::PUBACK,
    bad_reason: "[MQTT-3.5.2-1] PUBREC reason code is not a PUBREC reason code",
    bad_property: "[MQTT-5.0 2.2.2.2] PUBREC has a property PUBREC may not carry",
    trailing_v3: "[MQTT 3.1.1 3.5.1] PUBREC remaining length is not 2",
    trailing_v5: "[MQTT 3.5] PUBREC has octets after its properties",
};

const PUBREL_RULES: AckRules = AckRules {
    allowed: allowed::PUBREL,
    bad_reason: "[MQTT-3.6.2-1] PUBREL reason code is not a PUBREL reason code",
    bad_property: "[MQTT-5.0 2.2.2.2] PUBREL has a property PUBREL may not carry",
    trailing_v3: "[MQTT 3.1.1 3.6.1] PUBREL remaining length is not 2",
    trailing_v5: "[MQTT 3.6] PUBREL has octets after its properties",
};

const PUBCOMP_RULES: AckRules = AckRules {
    allowed: allowed::PUBREL,
    bad_reason: "[MQTT-3.7.2-1] PUBCOMP reason code is not a PUBCOMP reason code",
    bad_property: "[MQTT-5.0 2.2.2.2] PUBCOMP has a property PUBCOMP may not carry",
    trailing_v3: "[MQTT 3.1.1 3.7.1] PUBCOMP remaining length is not 2",
    trailing_v5: "[MQTT 3.7] PUBCOMP has octets after its properties",
};

fn decode_ack(r: &mut Reader, rules: &AckRules) -> Result<Ack, DecodeError> {
    let packet_id = ack_packet_id(r)?;
    if !r.is_v5() {
        r.finish(rules.trailing_v3)?;
        return Ok(Ack {
            packet_id,
            reason: 0,
            properties: AckProperties::default(),
        });
    }
    // MQTT 5 3.4.2.1: "The Reason Code and Property Length can be omitted if the Reason Code
    // is 0x00 (Success) and there are no Properties"; 3.4.2.2.1: "If the Remaining Length is
    // less than 4 there is no Property Length and the value of 0 is used."
    let reason = if r.is_empty() {
        0
    } else {
        check_reason(r.u8("the reason code")?, rules.allowed, rules.bad_reason)?
    };
    let properties = if r.is_empty() {
        AckProperties::default()
    } else {
        properties::read_ack(r, rules.bad_property)?
    };
    r.finish(rules.trailing_v5)?;
    Ok(Ack {
        packet_id,
        reason,
        properties,
    })
}

fn decode_disconnect(r: &mut Reader) -> Result<Disconnect, DecodeError> {
    if !r.is_v5() {
        r.finish("[MQTT 3.1.1 3.14.1] DISCONNECT remaining length is not 0")?;
        return Ok(Disconnect {
            reason: 0,
            properties: DisconnectProperties::default(),
        });
    }
    // MQTT 5 3.14.2.1: "If the Remaining Length is less than 1 the value of 0x00 (Normal
    // disconnection) is used"; 3.14.2.2.1: "If the Remaining Length is less than 2, a value of
    // 0 is used" for the Property Length.
    let reason = if r.is_empty() {
        0
    } else {
        // [MQTT-3.14.2-1] "The Client or Server sending the DISCONNECT packet MUST use one of
        // the DISCONNECT Reason Code values."
        let bad = "[MQTT-3.14.2-1] DISCONNECT reason code is not a disconnect reason code";
        check_reason(r.u8("the reason code")?, allowed::DISCONNECT, bad)?
    };
    let properties = if r.is_empty() {
        DisconnectProperties::default()
    } else {
        properties::read_disconnect(r)?
    };
    r.finish("[MQTT 3.14] DISCONNECT has octets after its properties")?;
    Ok(Disconnect { reason, properties })
}

fn decode_auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    // MQTT 5 3.15.2.1: "The Reason Code and Property Length can be omitted if the Reason Code
    // is 0x00 (Success) and there are no Properties. In this case the AUTH has a Remaining
    // Length of 0."
    let reason = if r.is_empty() {
        0
    } else {
        // [MQTT-3.15.2-1] "The sender of the AUTH Packet MUST use one of the Authenticate
        // Reason Codes."
        let bad = "[MQTT-3.15.2-1] AUTH reason code is not an authenticate reason code";
        check_reason(r.u8("the reason code")?, allowed::AUTH, bad)?
    };
    let properties = if r.is_empty() {
        Default::default()
    } else {
        properties::read_auth(r)?
    };
    r.finish("[MQTT 3.15] AUTH has octets after its properties")?;
    Ok(Auth { reason, properties })
}
