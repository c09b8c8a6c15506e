//! CONNECT, the one packet whose layout depends on the version it announces itself.
//!
//! ```text
//! variable header:  protocol name (string "MQTT", or "MQIsdp" for 3.1)
//!                   protocol level (u8: 3, 4 or 5)
//!                   connect flags  (u8, below)
//!                   keep alive     (u16, seconds)
//!                   properties     (MQTT 5 only)
//! payload:          client identifier (string)
//!                   will properties (MQTT 5), will topic (string), will payload (binary)
//!                                                                     if the will flag is set
//!                   user name (string)                                if its flag is set
//!                   password (binary)                                 if its flag is set
//!
//! connect flags:    7 user name | 6 password | 5 will retain | 4-3 will QoS | 2 will
//!                   1 clean session / clean start | 0 reserved, must be 0
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use super::properties::{self, WillProperties, put_block};
use super::wire::{Reader, Sink, VarInt, read_var_int};
use super::{
    Connect, ConnectProperties, DecodeError, EncodeError, ProtocolVersion, PublishProperties, QoS,
    Will,
};
use crate::topic;

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN_START: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;
const WILL_QOS_SHIFT: u8 = 3;

/// The connect flags, unpacked and checked.
struct Flags {
    clean_start: bool,
    will: Option<(QoS, bool)>,
    username: bool,
    password: bool,
}

/// The version a CONNECT at the front of `buf` announces, if the octets up to its protocol
/// level have arrived and name a version we speak.
///
/// Call it before [`decode`](super::decode()) on a connection's first packet: when decoding
/// refuses the CONNECT, this tells in which version to answer it (a 3.x CONNACK return code or
/// an MQTT 5 reason code), since the refused packet's octets may be gone.
pub fn peek_connect_version(buf: &[u8]) -> Option<ProtocolVersion> {
    let (&first, rest) = buf.split_first()?;
    if first != 0x10 {
        return None;
    }
    let VarInt::Complete(_, length_size) = read_var_int(rest) else {
        return None;
    };
    let header = rest.get(length_size..)?;
    let (name_length, header) = header.split_first_chunk::<2>()?;
    let (name, header) = header.split_at_checked(usize::from(u16::from_be_bytes(*name_length)))?;
    let level = *header.first()?;
    version_of(name, level).ok()
}

/// The version a protocol name and level announce.
fn version_of(name: &[u8], level: u8) -> Result<ProtocolVersion, DecodeError> {
    match (name, level) {
        (b"MQTT", 4) => Ok(ProtocolVersion::V3_1_1),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQIsdp", 3) => Ok(ProtocolVersion::V3_1),
        (b"MQTT" | b"MQIsdp", level) => Err(DecodeError::UnsupportedProtocolVersion { level }),
        _ => Err(DecodeError::UnsupportedProtocolName),
    }
}

/// Decodes a CONNECT's variable header and payload.
pub fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    // [MQTT-3.1.2-1] (3.1.1) "If the protocol name is incorrect the Server MAY disconnect the
    // Client, or it MAY continue processing the CONNECT packet in accordance with some other
    // specification." [MQTT-3.1.2-2] (3.1.1) "The Server MUST respond to the CONNECT Packet
    // with a CONNACK return code 0x01 (unacceptable protocol level) and then disconnect the
    // Client if the Protocol Level is not supported by the Server."
    let name = r.binary("the protocol name")?;
    let level = r.u8("the protocol level")?;
    let version = version_of(&name, level)?;
    r.set_v5(version.is_v5());
    let flags = decode_flags(r.u8("the connect flags")?, version)?;
    let keep_alive = r.u16("the keep alive")?;
    let properties = if version.is_v5() {
        connect_properties(r)?
    } else {
        ConnectProperties::default()
    };
    // [MQTT-3.1.3-3] "The ClientID MUST be present and is the first field in the CONNECT
    // packet Payload." It may be empty; the session assigns one or refuses the client.
    let client_id = r.string("the client identifier")?;
    let will = match flags.will {
        Some((qos, retain)) => Some(decode_will(r, version, qos, retain)?),
        None => None,
    };
    let username = match flags.username {
        true => Some(r.string("the user name")?),
        false => None,
    };
    let password = match flags.password {
        true => Some(r.binary("the password")?),
        false => None,
    };
    // [MQTT-3.1.4-1] "The Server MUST validate that the CONNECT packet matches the format
    // described in section 3.1 and close the Network Connection if it does not match."
    r.finish("[MQTT-3.1.4-1] CONNECT has octets after the fields its flags announce")?;
    Ok(Connect {
        version,
        client_id,
        clean_start: flags.clean_start,
        keep_alive,
        username,
        password,
        will,
        properties,
    })
}

fn decode_flags(flags: u8, version: ProtocolVersion) -> Result<Flags, DecodeError> {
    // [MQTT-3.1.2-3] "The Server MUST validate that the reserved flag in the CONNECT packet is
    // set to 0."
    if flags & FLAG_RESERVED != 0 {
        return Err(DecodeError::Malformed(
            "[MQTT-3.1.2-3] CONNECT reserved flag is 1",
        ));
    }
    let will_qos = (flags >> WILL_QOS_SHIFT) & 0b11;
    let will_retain = flags & FLAG_WILL_RETAIN != 0;
    let will = if flags & FLAG_WILL != 0 {
        // [MQTT-3.1.2-12] (3.1.1: [MQTT-3.1.2-14]) "If the Will Flag is set to 1, the value
        // of Will QoS can be 0 (0x00), 1 (0x01), or 2 (0x02). A value of 3 (0x03) is a
        // Malformed Packet."
        let Some(qos) = QoS::from_u8(will_qos) else {
            return Err(DecodeError::Malformed(if version.is_v5() {
                "[MQTT-3.1.2-12] will QoS is 3"
            } else {
                "[MQTT-3.1.2-14] will QoS is 3"
            }));
        };
        Some((qos, will_retain))
    } else {
        check_no_will(will_qos, will_retain, version)?;
        None
    };
    let username = flags & FLAG_USERNAME != 0;
    let password = flags & FLAG_PASSWORD != 0;
    // [MQTT-3.1.2-22] (3.1.1) "If the User Name Flag is set to 0, the Password Flag MUST be set
    // to 0." MQTT 5 dropped the rule (3.1.2.9: a password without a user name is allowed).
    if password && !username && !version.is_v5() {
        return Err(DecodeError::Malformed(
            "[MQTT-3.1.2-22] CONNECT has a password flag without a user name flag",
        ));
    }
    Ok(Flags {
        clean_start: flags & FLAG_CLEAN_START != 0,
        will,
        username,
        password,
    })
}

/// The will QoS and retain bits of a CONNECT without a will.
fn check_no_will(qos: u8, retain: bool, version: ProtocolVersion) -> Result<(), DecodeError> {
    // [MQTT-3.1.2-11] "If the Will Flag is set to 0, then the Will QoS MUST be set to 0
    // (0x00)." (3.1.1 also: [MQTT-3.1.2-13].)
    if qos != 0 {
        return Err(DecodeError::Malformed(
            "[MQTT-3.1.2-11] will QoS is not 0 without a will flag",
        ));
    }
    // [MQTT-3.1.2-13] (3.1.1: [MQTT-3.1.2-15]) "If the Will Flag is set to 0, then Will Retain
    // MUST be set to 0."
    if retain {
        return Err(DecodeError::Malformed(if version.is_v5() {
            "[MQTT-3.1.2-13] will retain is set without a will flag"
        } else {
            "[MQTT-3.1.2-15] will retain is set without a will flag"
        }));
    }
    Ok(())
}

fn connect_properties(r: &mut Reader) -> Result<ConnectProperties, DecodeError> {
    let properties = properties::read_connect(r)?;
    // MQTT 5 3.1.2.11.10: "It is a Protocol Error to include Authentication Data if there is
    // no Authentication Method."
    if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
        return Err(DecodeError::ProtocolError(
            "[MQTT-5.0 3.1.2.11.10] CONNECT has authentication data but no method",
        ));
    }
    Ok(properties)
}

fn decode_will(
    r: &mut Reader,
    version: ProtocolVersion,
    qos: QoS,
    retain: bool,
) -> Result<Will, DecodeError> {
    let (properties, delay_interval) = if version.is_v5() {
        properties::read_will(r)?
    } else {
        (PublishProperties::default(), None)
    };
    // [MQTT-3.1.3-11] (3.1.1: [MQTT-3.1.3-10]) "The Will Topic MUST be a UTF-8 Encoded
    // String." It is published like any topic name, so the rules of 4.7 apply too.
    let topic = r.string("the will topic")?;
    topic::validate_name(&topic).map_err(DecodeError::InvalidTopicName)?;
    let payload = r.binary("the will payload")?;
    Ok(Will {
        topic,
        payload,
        qos,
        retain,
        properties,
        delay_interval,
    })
}

/// Writes a CONNECT body in the CONNECT's own version.
pub fn put_connect<S: Sink>(connect: &Connect, s: &mut S) {
    let version = connect.version;
    s.put_string(version.protocol_name());
    s.put_u8(version.level());
    s.put_u8(encode_flags(connect));
    if connect.password.is_some() && connect.username.is_none() && !version.is_v5() {
        s.reject(EncodeError::Invalid(
            "[MQTT-3.1.2-22] a 3.x CONNECT cannot carry a password without a user name",
        ));
    }
    s.put_u16(connect.keep_alive);
    if version.is_v5() {
        put_block(s, &connect.properties);
    }
    s.put_string(&connect.client_id);
    if let Some(will) = &connect.will {
        if version.is_v5() {
            let properties = WillProperties {
                properties: &will.properties,
                delay_interval: will.delay_interval,
            };
            put_block(s, &properties);
        }
        s.put_string(&will.topic);
        s.put_binary(&will.payload);
    }
    if let Some(username) = &connect.username {
        s.put_string(username);
    }
    if let Some(password) = &connect.password {
        s.put_binary(password);
    }
}

fn encode_flags(connect: &Connect) -> u8 {
    let mut flags = 0;
    if connect.clean_start {
        flags |= FLAG_CLEAN_START;
    }
    if let Some(will) = &connect.will {
        flags |= FLAG_WILL | (will.qos as u8) << WILL_QOS_SHIFT;
        if will.retain {
            flags |= FLAG_WILL_RETAIN;
        }
    }
    if connect.password.is_some() {
        flags |= FLAG_PASSWORD;
    }
    if connect.username.is_some() {
        flags |= FLAG_USERNAME;
    }
    flags
}
