//! Writing property blocks: each properties struct lists its properties as [`Value`]s, in the
//! order they go on the wire, and [`put_block`] writes them behind their length.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use bytes::Bytes;

use super::id::*;
use crate::codec::wire::{Measure, Sink};
use crate::codec::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, UserProperties,
};

/// One property value on its way to the wire, typed as Table 2-4 says.
pub enum Value<'a> {
    Byte(u8),
    Two(u16),
    Four(u32),
    Variable(u32),
    Text(&'a str),
    Binary(&'a [u8]),
    Pair(&'a str, &'a str),
}

/// A set of properties that can list itself for encoding, in the order it is written.
pub trait PropertySet {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>));
}

/// Writes a property block: its length, then each property.
pub fn put_block<S: Sink>(s: &mut S, set: &dyn PropertySet) {
    let mut measure = Measure::default();
    set.visit(&mut |identifier, value| put_property(&mut measure, identifier, value));
    if let Some(error) = measure.error {
        s.reject(error);
    }
    s.put_var_int(u32::try_from(measure.len).unwrap_or(u32::MAX));
    set.visit(&mut |identifier, value| put_property(s, identifier, value));
}

fn put_property<S: Sink>(s: &mut S, identifier: u8, value: Value<'_>) {
    // Every identifier is below 128, so its Variable Byte Integer is this one octet.
    s.put_u8(identifier);
    match value {
        Value::Byte(value) => s.put_u8(value),
        Value::Two(value) => s.put_u16(value),
        Value::Four(value) => s.put_u32(value),
        Value::Variable(value) => s.put_var_int(value),
        Value::Text(value) => s.put_string(value),
        Value::Binary(value) => s.put_binary(value),
        Value::Pair(name, value) => {
            s.put_string(name);
            s.put_string(value);
        }
    }
}

/// Calls `f` when `value` is present.
fn some<'a, T>(
    f: &mut dyn FnMut(u8, Value<'_>),
    identifier: u8,
    value: Option<T>,
    wrap: fn(T) -> Value<'a>,
) {
    if let Some(value) = value {
        f(identifier, wrap(value));
    }
}

fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref()
}

fn binary(value: &Option<Bytes>) -> Option<&[u8]> {
    value.as_deref()
}

fn pairs(f: &mut dyn FnMut(u8, Value<'_>), user_properties: &UserProperties) {
    for (name, value) in user_properties {
        f(USER_PROPERTY, Value::Pair(name, value));
    }
}

/// The properties PUBLISH and the will share.
fn visit_message(p: &PublishProperties, f: &mut dyn FnMut(u8, Value<'_>)) {
    some(
        f,
        PAYLOAD_FORMAT_INDICATOR,
        p.payload_format_indicator,
        Value::Byte,
    );
    some(
        f,
        MESSAGE_EXPIRY_INTERVAL,
        p.message_expiry_interval,
        Value::Four,
    );
    some(f, CONTENT_TYPE, text(&p.content_type), Value::Text);
    some(f, RESPONSE_TOPIC, text(&p.response_topic), Value::Text);
    some(
        f,
        CORRELATION_DATA,
        binary(&p.correlation_data),
        Value::Binary,
    );
    pairs(f, &p.user_properties);
}

impl PropertySet for PublishProperties {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        visit_message(self, f);
        some(f, TOPIC_ALIAS, self.topic_alias, Value::Two);
        for &identifier in &self.subscription_identifiers {
            f(SUBSCRIPTION_IDENTIFIER, Value::Variable(identifier));
        }
    }
}

/// The will properties: the will's message properties and its delay. A topic alias or
/// subscription identifiers in `properties` are not written; a will cannot carry them.
pub struct WillProperties<'a> {
    pub properties: &'a PublishProperties,
    pub delay_interval: Option<u32>,
}

impl PropertySet for WillProperties<'_> {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        some(f, WILL_DELAY_INTERVAL, self.delay_interval, Value::Four);
        visit_message(self.properties, f);
    }
}

impl PropertySet for ConnectProperties {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        some(
            f,
            SESSION_EXPIRY_INTERVAL,
            self.session_expiry_interval,
            Value::Four,
        );
        some(f, RECEIVE_MAXIMUM, self.receive_maximum, Value::Two);
        some(
            f,
            MAXIMUM_PACKET_SIZE,
            self.maximum_packet_size,
            Value::Four,
        );
        some(f, TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum, Value::Two);
        let response = self.request_response_information;
        some(f, REQUEST_RESPONSE_INFORMATION, response, Value::Byte);
        let problem = self.request_problem_information;
        some(f, REQUEST_PROBLEM_INFORMATION, problem, Value::Byte);
        pairs(f, &self.user_properties);
        some(
            f,
            AUTHENTICATION_METHOD,
            text(&self.authentication_method),
            Value::Text,
        );
        some(
            f,
            AUTHENTICATION_DATA,
            binary(&self.authentication_data),
            Value::Binary,
        );
    }
}

impl PropertySet for ConnAckProperties {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        some(
            f,
            SESSION_EXPIRY_INTERVAL,
            self.session_expiry_interval,
            Value::Four,
        );
        some(f, RECEIVE_MAXIMUM, self.receive_maximum, Value::Two);
        some(f, MAXIMUM_QOS, self.maximum_qos, Value::Byte);
        some(f, RETAIN_AVAILABLE, self.retain_available, Value::Byte);
        some(
            f,
            MAXIMUM_PACKET_SIZE,
            self.maximum_packet_size,
            Value::Four,
        );
        let assigned = text(&self.assigned_client_identifier);
        some(f, ASSIGNED_CLIENT_IDENTIFIER, assigned, Value::Text);
        some(f, TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum, Value::Two);
        some(f, REASON_STRING, text(&self.reason_string), Value::Text);
        pairs(f, &self.user_properties);
        let wildcard = self.wildcard_subscription_available;
        some(f, WILDCARD_SUBSCRIPTION_AVAILABLE, wildcard, Value::Byte);
        let identifiers = self.subscription_identifiers_available;
        some(
            f,
            SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            identifiers,
            Value::Byte,
        );
        let shared = self.shared_subscription_available;
        some(f, SHARED_SUBSCRIPTION_AVAILABLE, shared, Value::Byte);
        some(f, SERVER_KEEP_ALIVE, self.server_keep_alive, Value::Two);
        some(
            f,
            RESPONSE_INFORMATION,
            text(&self.response_information),
            Value::Text,
        );
        some(
            f,
            SERVER_REFERENCE,
            text(&self.server_reference),
            Value::Text,
        );
        some(
            f,
            AUTHENTICATION_METHOD,
            text(&self.authentication_method),
            Value::Text,
        );
        some(
            f,
            AUTHENTICATION_DATA,
            binary(&self.authentication_data),
            Value::Binary,
        );
    }
}

impl PropertySet for AckProperties {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        some(f, REASON_STRING, text(&self.reason_string), Value::Text);
        pairs(f, &self.user_properties);
    }
}

impl PropertySet for DisconnectProperties {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        some(
            f,
            SESSION_EXPIRY_INTERVAL,
            self.session_expiry_interval,
            Value::Four,
        );
        some(f, REASON_STRING, text(&self.reason_string), Value::Text);
        pairs(f, &self.user_properties);
        some(
            f,
            SERVER_REFERENCE,
            text(&self.server_reference),
            Value::Text,
        );
    }
}

impl PropertySet for AuthProperties {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        some(
            f,
            AUTHENTICATION_METHOD,
            text(&self.authentication_method),
            Value::Text,
        );
        some(
            f,
            AUTHENTICATION_DATA,
            binary(&self.authentication_data),
            Value::Binary,
        );
        some(f, REASON_STRING, text(&self.reason_string), Value::Text);
        pairs(f, &self.user_properties);
    }
}

/// The SUBSCRIBE properties.
pub struct SubscribeProperties<'a> {
    pub subscription_identifier: Option<u32>,
    pub user_properties: &'a UserProperties,
}

impl PropertySet for SubscribeProperties<'_> {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        some(
            f,
            SUBSCRIPTION_IDENTIFIER,
            self.subscription_identifier,
            Value::Variable,
        );
        pairs(f, self.user_properties);
    }
}

/// The UNSUBSCRIBE properties: user properties only.
pub struct UserPropertiesOnly<'a>(pub &'a UserProperties);

impl PropertySet for UserPropertiesOnly<'_> {
    fn visit(&self, f: &mut dyn FnMut(u8, Value<'_>)) {
        pairs(f, self.0);
    }
}
