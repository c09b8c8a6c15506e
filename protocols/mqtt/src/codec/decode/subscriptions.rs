//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK: lists of topic filters and of reason codes.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use super::{ack_packet_id, check_reason, request_packet_id};
use crate::codec::packet::reason::allowed;
use crate::codec::properties;
use crate::codec::wire::Reader;
use crate::codec::{
    AckProperties, DecodeError, QoS, SubAck, Subscribe, Subscription, UnsubAck, Unsubscribe,
};
use crate::topic;

pub fn decode_subscribe(r: &mut Reader) -> Result<Subscribe, DecodeError> {
    let packet_id = request_packet_id(r)?;
    let (subscription_identifier, user_properties) = if r.is_v5() {
        properties::read_subscribe(r)?
    } else {
        (None, Vec::new())
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        // [MQTT-3.8.3-1] "The Topic Filters MUST be a UTF-8 Encoded String."
        let filter = r.string("a topic filter")?;
        let options = r.u8("the subscription options")?;
        let subscription = subscription(filter, options, r.is_v5())?;
        filters.push(subscription);
    }
    // [MQTT-3.8.3-3] (MQTT 5: [MQTT-3.8.3-2]) "The payload of a SUBSCRIBE packet MUST contain
    // at least one Topic Filter / QoS pair. A SUBSCRIBE packet with no payload is a protocol
    // violation."
    if filters.is_empty() {
        return Err(DecodeError::ProtocolError(if r.is_v5() {
            "[MQTT-3.8.3-2] SUBSCRIBE has no topic filter"
        } else {
            "[MQTT-3.8.3-3] SUBSCRIBE has no topic filter"
        }));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        subscription_identifier,
        user_properties,
    })
}

/// One topic filter and its options octet.
fn subscription(filter: String, options: u8, v5: bool) -> Result<Subscription, DecodeError> {
    topic::validate_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
    let qos = QoS::from_u8(options & 0b11);
    if !v5 {
        // [MQTT-3-8.3-4] (sic, 3.1.1) "The Server MUST treat a SUBSCRIBE packet as malformed
        // and close the Network Connection if any of Reserved bits in the payload are
        // non-zero, or QoS is not 0,1 or 2."
        let Some(qos) = qos.filter(|_| options & 0b1111_1100 == 0) else {
            return Err(DecodeError::Malformed(
                "[MQTT-3.8.3-4] subscription options have reserved bits set or QoS 3",
            ));
        };
        return Ok(plain_subscription(filter, qos));
    }
    // [MQTT-3.8.3-5] "The Server MUST treat a SUBSCRIBE packet as malformed if any of Reserved
    // bits in the Payload are non-zero."
    if options & 0b1100_0000 != 0 {
        return Err(DecodeError::Malformed(
            "[MQTT-3.8.3-5] subscription options have reserved bits set",
        ));
    }
    // MQTT 5 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
    let Some(qos) = qos else {
        return Err(DecodeError::ProtocolError(
            "[MQTT-5.0 3.8.3.1] subscription maximum QoS is 3",
        ));
    };
    let retain_handling = (options >> 4) & 0b11;
    // 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
    if retain_handling == 3 {
        return Err(DecodeError::ProtocolError(
            "[MQTT-5.0 3.8.3.1] subscription retain handling is 3",
        ));
    }
    let no_local = options & 0b0100 != 0;
    // [MQTT-3.8.3-4] "It is a Protocol Error to set the No Local bit to 1 on a Shared
    // Subscription."
    if no_local && topic::split_shared(&filter).is_some() {
        return Err(DecodeError::ProtocolError(
            "[MQTT-3.8.3-4] No Local is set on a shared subscription",
        ));
    }
    Ok(Subscription {
        no_local,
        retain_as_published: options & 0b1000 != 0,
        retain_handling,
        ..plain_subscription(filter, qos)
    })
}

fn plain_subscription(filter: String, qos: QoS) -> Subscription {
    Subscription {
        filter,
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
    }
}

pub fn decode_suback(r: &mut Reader) -> Result<SubAck, DecodeError> {
    let packet_id = ack_packet_id(r)?;
    let (properties, allowed, bad_reason) = if r.is_v5() {
        let not_allowed = "[MQTT-5.0 2.2.2.2] SUBACK has a property SUBACK may not carry";
        (
            properties::read_ack(r, not_allowed)?,
            allowed::SUBACK,
            // [MQTT-3.9.3-2] "The Server sending a SUBACK packet MUST use one of the
            // Subscribe Reason Codes for each Topic Filter received."
            "[MQTT-3.9.3-2] SUBACK reason code is not a subscribe reason code",
        )
    } else {
        (
            AckProperties::default(),
            allowed::SUBACK_V3,
            // [MQTT-3.9.3-2] (3.1.1) "SUBACK return codes other than 0x00, 0x01, 0x02 and
            // 0x80 are reserved and MUST NOT be used."
            "[MQTT-3.9.3-2] SUBACK return code is reserved",
        )
    };
    let reasons = reason_list(r, allowed, bad_reason)?;
    Ok(SubAck {
        packet_id,
        reasons,
        properties,
    })
}

/// The reason codes that fill the rest of a SUBACK or MQTT 5 UNSUBACK, one per filter of the
/// request ([MQTT-3.8.4-6], [MQTT-3.11.3-1]), so at least one.
fn reason_list(
    r: &mut Reader,
    allowed: &[u8],
    bad_reason: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    if r.is_empty() {
        return Err(DecodeError::ProtocolError(
            "[MQTT-3.8.4-6] acknowledgement has no reason code, but its request had a filter",
        ));
    }
    let codes = r.rest();
    for &code in &codes {
        check_reason(code, allowed, bad_reason)?;
    }
    Ok(codes.to_vec())
}

pub fn decode_unsubscribe(r: &mut Reader) -> Result<Unsubscribe, DecodeError> {
    let packet_id = request_packet_id(r)?;
    let user_properties = if r.is_v5() {
        properties::read_unsubscribe(r)?
    } else {
        Vec::new()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        // [MQTT-3.10.3-1] "The Topic Filters in an UNSUBSCRIBE packet MUST be UTF-8 Encoded
        // Strings." A filter no SUBSCRIBE could have made is refused like one in SUBSCRIBE.
        let filter = r.string("a topic filter")?;
        topic::validate_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
        filters.push(filter);
    }
    // [MQTT-3.10.3-2] "The Payload of an UNSUBSCRIBE packet MUST contain at least one Topic
    // Filter. An UNSUBSCRIBE packet with no Payload is a Protocol Error."
    if filters.is_empty() {
        return Err(DecodeError::ProtocolError(
            "[MQTT-3.10.3-2] UNSUBSCRIBE has no topic filter",
        ));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        user_properties,
    })
}

pub fn decode_unsuback(r: &mut Reader) -> Result<UnsubAck, DecodeError> {
    let packet_id = ack_packet_id(r)?;
    if !r.is_v5() {
        r.finish("[MQTT 3.1.1 3.11.1] UNSUBACK remaining length is not 2")?;
        return Ok(UnsubAck {
            packet_id,
            reasons: Vec::new(),
            properties: AckProperties::default(),
        });
    }
    let not_allowed = "[MQTT-5.0 2.2.2.2] UNSUBACK has a property UNSUBACK may not carry";
    let properties = properties::read_ack(r, not_allowed)?;
    // [MQTT-3.11.3-2] "The Server sending an UNSUBACK packet MUST use one of the Unsubscribe
    // Reason Code values for each Topic Filter received."
    let bad_reason = "[MQTT-3.11.3-2] UNSUBACK reason code is not an unsubscribe reason code";
    let reasons = reason_list(r, allowed::UNSUBACK, bad_reason)?;
    Ok(UnsubAck {
        packet_id,
        reasons,
        properties,
    })
}
