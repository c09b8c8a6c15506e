//! MQTT 5 properties (spec 2.2.2): the property block of each packet, read into and written
//! from the packet's properties struct.
//!
//! A block is a Variable Byte Integer length followed by properties, each an identifier (a
//! Variable Byte Integer; every identifier defined so far fits in one octet) and a value of the
//! type Table 2-4 gives it. Each packet type has its own reader, which accepts only the
//! identifiers Table 2-4 allows in that packet: "A Control Packet which contains an Identifier
//! which is not valid for its packet type, or contains a value not of the specified data type,
//! is a Malformed Packet" (2.2.2.2). Every property except User Property, and Subscription
//! Identifier in PUBLISH, may appear once; the spec makes a repeat a Protocol Error property by
//! property, and each reader stores a value in an `Option` that must still be empty.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use super::wire::Reader;
use super::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DecodeError,
    DisconnectProperties, PublishProperties, UserProperties,
};
use crate::topic;

mod write;

pub use write::{SubscribeProperties, UserPropertiesOnly, WillProperties, put_block};

/// Property identifiers, Table 2-4.
mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

use id::*;

/// The field name truncation errors report for any property value.
const VALUE: &str = "a property value";

/// Reads a property block, handing each identifier to `read_one`, which reads the value and
/// returns false for an identifier its packet does not allow; `not_allowed` is the error then.
fn read_block(
    r: &mut Reader,
    not_allowed: &'static str,
    mut read_one: impl FnMut(&mut Reader, u8) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.var_int("the property length")?;
    let mut block = r.sub_reader(len as usize, "the properties")?;
    while !block.is_empty() {
        let identifier = block.var_int("a property identifier")?;
        let known = match u8::try_from(identifier) {
            Ok(identifier) => read_one(&mut block, identifier)?,
            Err(_) => false,
        };
        if !known {
            return Err(DecodeError::Malformed(not_allowed));
        }
    }
    Ok(())
}

/// Stores a property that may appear at most once.
fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        // Each property's section: "It is a Protocol Error to include the <property> more
        // than once."
        return Err(DecodeError::ProtocolError(
            "[MQTT-5.0 2.2.2.2] a property that may appear once appears twice",
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// A Byte property whose only values are 0 and 1. The spec says so of Payload Format
/// Indicator (by its table), Request Response Information, Request Problem Information,
/// Maximum QoS and the four "available" flags: "It is a Protocol Error to ... have a value
/// other than 0 or 1."
fn flag(r: &mut Reader) -> Result<u8, DecodeError> {
    match r.u8(VALUE)? {
        value @ (0 | 1) => Ok(value),
        _ => Err(DecodeError::ProtocolError(
            "[MQTT-5.0 2.2.2.2] a 0-or-1 property has another value",
        )),
    }
}

/// Receive Maximum, which "It is a Protocol Error to include ... for it to have the value 0"
/// (3.1.2.11.3, 3.2.2.3.3).
fn receive_maximum(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16(VALUE)? {
        0 => Err(DecodeError::ProtocolError(
            "[MQTT-5.0 3.1.2.11.3] Receive Maximum is 0",
        )),
        value => Ok(value),
    }
}

/// Maximum Packet Size: "It is a Protocol Error to ... for the value to be set to zero"
/// (3.1.2.11.4, 3.2.2.3.6).
fn maximum_packet_size(r: &mut Reader) -> Result<u32, DecodeError> {
    match r.u32(VALUE)? {
        0 => Err(DecodeError::ProtocolError(
            "[MQTT-5.0 3.1.2.11.4] Maximum Packet Size is 0",
        )),
        value => Ok(value),
    }
}

/// Subscription Identifier: "It is a Protocol Error if the Subscription Identifier has a
/// value of 0" (3.3.2.3.8, 3.8.2.1.2).
fn subscription_identifier(r: &mut Reader) -> Result<u32, DecodeError> {
    match r.var_int(VALUE)? {
        0 => Err(DecodeError::ProtocolError(
            "[MQTT-5.0 3.8.2.1.2] Subscription Identifier is 0",
        )),
        value => Ok(value),
    }
}

/// Response Topic, a topic name: "The Response Topic MUST NOT contain wildcard characters"
/// [MQTT-3.3.2-14]; being a topic name, [MQTT-4.7.3-1] also applies.
fn response_topic(r: &mut Reader) -> Result<String, DecodeError> {
    let name = r.string(VALUE)?;
    topic::validate_name(&name).map_err(DecodeError::InvalidTopicName)?;
    Ok(name)
}

fn user_property(r: &mut Reader, user_properties: &mut UserProperties) -> Result<(), DecodeError> {
    let name = r.string("a user property name")?;
    let value = r.string("a user property value")?;
    user_properties.push((name, value));
    Ok(())
}

/// The properties PUBLISH and the will share; false for any other identifier.
fn read_message_property(
    r: &mut Reader,
    identifier: u8,
    p: &mut PublishProperties,
) -> Result<bool, DecodeError> {
    match identifier {
        PAYLOAD_FORMAT_INDICATOR => once(&mut p.payload_format_indicator, flag(r)?)?,
        MESSAGE_EXPIRY_INTERVAL => once(&mut p.message_expiry_interval, r.u32(VALUE)?)?,
        CONTENT_TYPE => once(&mut p.content_type, r.string(VALUE)?)?,
        RESPONSE_TOPIC => once(&mut p.response_topic, response_topic(r)?)?,
        CORRELATION_DATA => once(&mut p.correlation_data, r.binary(VALUE)?)?,
        USER_PROPERTY => user_property(r, &mut p.user_properties)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// The PUBLISH property block.
pub fn read_publish(r: &mut Reader) -> Result<PublishProperties, DecodeError> {
    let mut p = PublishProperties::default();
    read_block(
        r,
        "[MQTT-5.0 2.2.2.2] PUBLISH has a property PUBLISH may not carry",
        |r, identifier| match identifier {
            TOPIC_ALIAS => match r.u16(VALUE)? {
                // [MQTT-3.3.2-8] "A sender MUST NOT send a PUBLISH packet containing a Topic
                // Alias which has the value 0."
                0 => Err(DecodeError::ProtocolError(
                    "[MQTT-3.3.2-8] Topic Alias is 0",
                )),
                alias => once(&mut p.topic_alias, alias).map(|()| true),
            },
            SUBSCRIPTION_IDENTIFIER => {
                // The one property besides User Property that may repeat: one per matching
                // subscription [MQTT-3.3.4-4].
                p.subscription_identifiers.push(subscription_identifier(r)?);
                Ok(true)
            }
            _ => read_message_property(r, identifier, &mut p),
        },
    )?;
    Ok(p)
}

/// The will property block of a CONNECT payload: the message properties and the Will Delay
/// Interval.
pub fn read_will(r: &mut Reader) -> Result<(PublishProperties, Option<u32>), DecodeError> {
    let mut p = PublishProperties::default();
    let mut delay_interval = None;
    read_block(
        r,
        "[MQTT-5.0 2.2.2.2] the will has a property a will may not carry",
        |r, identifier| match identifier {
            WILL_DELAY_INTERVAL => once(&mut delay_interval, r.u32(VALUE)?).map(|()| true),
            _ => read_message_property(r, identifier, &mut p),
        },
    )?;
    Ok((p, delay_interval))
}

/// The CONNECT property block.
pub fn read_connect(r: &mut Reader) -> Result<ConnectProperties, DecodeError> {
    let mut p = ConnectProperties::default();
    read_block(
        r,
        "[MQTT-5.0 2.2.2.2] CONNECT has a property CONNECT may not carry",
        |r, identifier| {
            match identifier {
                SESSION_EXPIRY_INTERVAL => once(&mut p.session_expiry_interval, r.u32(VALUE)?)?,
                RECEIVE_MAXIMUM => once(&mut p.receive_maximum, receive_maximum(r)?)?,
                MAXIMUM_PACKET_SIZE => once(&mut p.maximum_packet_size, maximum_packet_size(r)?)?,
                TOPIC_ALIAS_MAXIMUM => once(&mut p.topic_alias_maximum, r.u16(VALUE)?)?,
                REQUEST_RESPONSE_INFORMATION => {
                    once(&mut p.request_response_information, flag(r)?)?;
                }
                REQUEST_PROBLEM_INFORMATION => {
                    once(&mut p.request_problem_information, flag(r)?)?;
                }
                USER_PROPERTY => user_property(r, &mut p.user_properties)?,
                AUTHENTICATION_METHOD => once(&mut p.authentication_method, r.string(VALUE)?)?,
                AUTHENTICATION_DATA => once(&mut p.authentication_data, r.binary(VALUE)?)?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(p)
}

/// The CONNACK property block.
pub fn read_connack(r: &mut Reader) -> Result<ConnAckProperties, DecodeError> {
    let mut p = ConnAckProperties::default();
    read_block(
        r,
        "[MQTT-5.0 2.2.2.2] CONNACK has a property CONNACK may not carry",
        |r, identifier| read_connack_property(r, identifier, &mut p),
    )?;
    Ok(p)
}

fn read_connack_property(
    r: &mut Reader,
    identifier: u8,
    p: &mut ConnAckProperties,
) -> Result<bool, DecodeError> {
    match identifier {
        SESSION_EXPIRY_INTERVAL => once(&mut p.session_expiry_interval, r.u32(VALUE)?)?,
        RECEIVE_MAXIMUM => once(&mut p.receive_maximum, receive_maximum(r)?)?,
        MAXIMUM_QOS => once(&mut p.maximum_qos, flag(r)?)?,
        RETAIN_AVAILABLE => once(&mut p.retain_available, flag(r)?)?,
        MAXIMUM_PACKET_SIZE => once(&mut p.maximum_packet_size, maximum_packet_size(r)?)?,
        ASSIGNED_CLIENT_IDENTIFIER => {
            once(&mut p.assigned_client_identifier, r.string(VALUE)?)?;
        }
        TOPIC_ALIAS_MAXIMUM => once(&mut p.topic_alias_maximum, r.u16(VALUE)?)?,
        REASON_STRING => once(&mut p.reason_string, r.string(VALUE)?)?,
        USER_PROPERTY => user_property(r, &mut p.user_properties)?,
        WILDCARD_SUBSCRIPTION_AVAILABLE => {
            once(&mut p.wildcard_subscription_available, flag(r)?)?;
        }
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
            once(&mut p.subscription_identifiers_available, flag(r)?)?;
        }
        SHARED_SUBSCRIPTION_AVAILABLE => once(&mut p.shared_subscription_available, flag(r)?)?,
        SERVER_KEEP_ALIVE => once(&mut p.server_keep_alive, r.u16(VALUE)?)?,
        RESPONSE_INFORMATION => once(&mut p.response_information, r.string(VALUE)?)?,
        SERVER_REFERENCE => once(&mut p.server_reference, r.string(VALUE)?)?,
        AUTHENTICATION_METHOD => once(&mut p.authentication_method, r.string(VALUE)?)?,
        AUTHENTICATION_DATA => once(&mut p.authentication_data, r.binary(VALUE)?)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// The property block of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK; `not_allowed`
/// names the packet in the error.
pub fn read_ack(r: &mut Reader, not_allowed: &'static str) -> Result<AckProperties, DecodeError> {
    let mut p = AckProperties::default();
    read_block(r, not_allowed, |r, identifier| {
        match identifier {
            REASON_STRING => once(&mut p.reason_string, r.string(VALUE)?)?,
            USER_PROPERTY => user_property(r, &mut p.user_properties)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}

/// The SUBSCRIBE property block: the subscription identifier and user properties.
pub fn read_subscribe(r: &mut Reader) -> Result<(Option<u32>, UserProperties), DecodeError> {
    let mut subscription_id = None;
    let mut user_properties = UserProperties::new();
    read_block(
        r,
        "[MQTT-5.0 2.2.2.2] SUBSCRIBE has a property SUBSCRIBE may not carry",
        |r, identifier| {
            match identifier {
                // "It is a Protocol Error to include the Subscription Identifier more than
                // once" (3.8.2.1.2), unlike in PUBLISH.
                SUBSCRIPTION_IDENTIFIER => once(&mut subscription_id, subscription_identifier(r)?)?,
                USER_PROPERTY => user_property(r, &mut user_properties)?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok((subscription_id, user_properties))
}

/// The UNSUBSCRIBE property block: user properties only.
pub fn read_unsubscribe(r: &mut Reader) -> Result<UserProperties, DecodeError> {
    let mut user_properties = UserProperties::new();
    read_block(
        r,
        "[MQTT-5.0 2.2.2.2] UNSUBSCRIBE has a property UNSUBSCRIBE may not carry",
        |r, identifier| match identifier {
            USER_PROPERTY => user_property(r, &mut user_properties).map(|()| true),
            _ => Ok(false),
        },
    )?;
    Ok(user_properties)
}

/// The DISCONNECT property block.
pub fn read_disconnect(r: &mut Reader) -> Result<DisconnectProperties, DecodeError> {
    let mut p = DisconnectProperties::default();
    read_block(
        r,
        "[MQTT-5.0 2.2.2.2] DISCONNECT has a property DISCONNECT may not carry",
        |r, identifier| {
            match identifier {
                SESSION_EXPIRY_INTERVAL => once(&mut p.session_expiry_interval, r.u32(VALUE)?)?,
                REASON_STRING => once(&mut p.reason_string, r.string(VALUE)?)?,
                USER_PROPERTY => user_property(r, &mut p.user_properties)?,
                SERVER_REFERENCE => once(&mut p.server_reference, r.string(VALUE)?)?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(p)
}

/// The AUTH property block.
pub fn read_auth(r: &mut Reader) -> Result<AuthProperties, DecodeError> {
    let mut p = AuthProperties::default();
    read_block(
        r,
        "[MQTT-5.0 2.2.2.2] AUTH has a property AUTH may not carry",
        |r, identifier| {
            match identifier {
                AUTHENTICATION_METHOD => once(&mut p.authentication_method, r.string(VALUE)?)?,
                AUTHENTICATION_DATA => once(&mut p.authentication_data, r.binary(VALUE)?)?,
                REASON_STRING => once(&mut p.reason_string, r.string(VALUE)?)?,
                USER_PROPERTY => user_property(r, &mut p.user_properties)?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(p)
}
