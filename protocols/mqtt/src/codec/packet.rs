//! The MQTT control packets as values: one type per packet, shared by 3.1, 3.1.1 and 5.
//!
//! A packet holds the union of what the three versions can carry. Fields that only MQTT 5 has
//! (properties, reason codes on acknowledgements) are defaults when a 3.x packet is decoded and
//! are not written when one is encoded; see the deviations in the parent module. The types
//! carry what they can of the spec's invariants: packet identifiers are [`PacketId`]
//! (`NonZeroU16`, [MQTT-2.2.1-3]) and QoS is an enum without the forbidden value 3.

use std::num::NonZeroU16;

use bytes::Bytes;

/// The protocol versions we speak, by the CONNECT's protocol level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name "MQIsdp", level 3 (IBM's specification, before OASIS).
    V3_1,
    /// MQTT 3.1.1: protocol name "MQTT", level 4 (OASIS Standard, 29 October 2014).
    V3_1_1,
    /// MQTT 5.0: protocol name "MQTT", level 5 (OASIS Standard, 7 March 2019).
    V5,
}

impl ProtocolVersion {
    /// The protocol level octet of the CONNECT variable header.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V3_1 => 3,
            ProtocolVersion::V3_1_1 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// The protocol name of the CONNECT variable header.
    pub fn protocol_name(self) -> &'static str {
        match self {
            ProtocolVersion::V3_1 => "MQIsdp",
            ProtocolVersion::V3_1_1 | ProtocolVersion::V5 => "MQTT",
        }
    }

    /// Whether this is MQTT 5, the only version with properties and reason codes.
    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

/// Quality of service of a PUBLISH, a will or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// Fire and forget; no acknowledgement.
    AtMostOnce = 0,
    /// Acknowledged by PUBACK; may be delivered more than once.
    AtLeastOnce = 1,
    /// The PUBREC / PUBREL / PUBCOMP exchange; delivered once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS with this wire value, or `None` for 3 and above.
    pub fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// A packet identifier; zero is not one [MQTT-2.2.1-3].
pub type PacketId = NonZeroU16;

/// MQTT 5 user properties, in wire order; names may repeat.
pub type UserProperties = Vec<(String, String)>;

/// One MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Client request to connect (type 1). Boxed: it is large and rare.
    Connect(Box<Connect>),
    /// Connect acknowledgement (type 2).
    ConnAck(ConnAck),
    /// An application message (type 3).
    Publish(Publish),
    /// QoS 1 acknowledgement (type 4).
    PubAck(Ack),
    /// QoS 2, part 1: received (type 5).
    PubRec(Ack),
    /// QoS 2, part 2: release (type 6).
    PubRel(Ack),
    /// QoS 2, part 3: complete (type 7).
    PubComp(Ack),
    /// Subscribe request (type 8).
    Subscribe(Subscribe),
    /// Subscribe acknowledgement (type 9).
    SubAck(SubAck),
    /// Unsubscribe request (type 10).
    Unsubscribe(Unsubscribe),
    /// Unsubscribe acknowledgement (type 11).
    UnsubAck(UnsubAck),
    /// Keep-alive request (type 12).
    PingReq,
    /// Keep-alive response (type 13).
    PingResp,
    /// Disconnect notification (type 14); in 3.x only the client sends it, without a reason.
    Disconnect(Disconnect),
    /// Extended authentication exchange (type 15), MQTT 5 only.
    Auth(Auth),
}

impl Packet {
    /// The packet's name in the spec, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

/// CONNECT: the first packet of every connection [MQTT-3.1.0-1].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The version the client speaks, from the protocol name and level.
    pub version: ProtocolVersion,
    /// The client identifier; may be empty, in which case the session assigns one (3.1.1 and 5)
    /// or refuses the client (3.1, or 3.1.1 without clean session, [MQTT-3.1.3-8]).
    pub client_id: String,
    /// Clean Session (3.x) or Clean Start (5).
    pub clean_start: bool,
    /// Keep Alive in seconds; 0 turns the keep-alive mechanism off.
    pub keep_alive: u16,
    /// The user name, when the user name flag is set.
    pub username: Option<String>,
    /// The password, when the password flag is set. Binary data in 3.1.1 and 5.
    pub password: Option<Bytes>,
    /// The will message, when the will flag is set.
    pub will: Option<Will>,
    /// MQTT 5 CONNECT properties; default for 3.x.
    pub properties: ConnectProperties,
}

/// The will message of a CONNECT, published if the connection ends without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// A valid topic name (checked on decode).
    pub topic: String,
    /// The message body.
    pub payload: Bytes,
    /// The QoS to publish the will with.
    pub qos: QoS,
    /// Whether to publish the will as a retained message.
    pub retain: bool,
    /// MQTT 5 will properties; the will may not carry a topic alias or subscription
    /// identifiers, so those two fields stay empty.
    pub properties: PublishProperties,
    /// MQTT 5 Will Delay Interval in seconds.
    pub delay_interval: Option<u32>,
}

/// MQTT 5 CONNECT properties (spec 3.1.2.11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// Seconds the session outlives the connection; absent means 0.
    pub session_expiry_interval: Option<u32>,
    /// How many unacknowledged QoS 1 and 2 PUBLISHes the client accepts; never 0.
    pub receive_maximum: Option<u16>,
    /// The largest packet the client accepts, in octets; never 0.
    pub maximum_packet_size: Option<u32>,
    /// The highest topic alias the client accepts from the server.
    pub topic_alias_maximum: Option<u16>,
    /// 1 asks the server for Response Information in the CONNACK.
    pub request_response_information: Option<u8>,
    /// 0 asks the server to leave out reason strings and user properties.
    pub request_problem_information: Option<u8>,
    /// User properties.
    pub user_properties: UserProperties,
    /// The extended authentication method.
    pub authentication_method: Option<String>,
    /// Data for the extended authentication method.
    pub authentication_data: Option<Bytes>,
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a stored session. Not on the wire in 3.1 (always false).
    pub session_present: bool,
    /// The 3.x return code ([`reason::connack_v3`]) or the MQTT 5 reason code ([`reason`]).
    pub code: u8,
    /// MQTT 5 CONNACK properties; default for 3.x.
    pub properties: ConnAckProperties,
}

/// MQTT 5 CONNACK properties (spec 3.2.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAckProperties {
    /// The session expiry the server settled on, if it differs from the client's.
    pub session_expiry_interval: Option<u32>,
    /// How many unacknowledged QoS 1 and 2 PUBLISHes the server accepts; never 0.
    pub receive_maximum: Option<u16>,
    /// The highest QoS the server supports, 0 or 1; absent means 2.
    pub maximum_qos: Option<u8>,
    /// 0 when the server does not support retained messages.
    pub retain_available: Option<u8>,
    /// The largest packet the server accepts, in octets; never 0.
    pub maximum_packet_size: Option<u32>,
    /// The client identifier the server assigned to a client that sent an empty one.
    pub assigned_client_identifier: Option<String>,
    /// The highest topic alias the server accepts from the client.
    pub topic_alias_maximum: Option<u16>,
    /// A human-readable diagnostic.
    pub reason_string: Option<String>,
    /// User properties.
    pub user_properties: UserProperties,
    /// 0 when the server does not support wildcard subscriptions.
    pub wildcard_subscription_available: Option<u8>,
    /// 0 when the server does not support subscription identifiers.
    pub subscription_identifiers_available: Option<u8>,
    /// 0 when the server does not support shared subscriptions.
    pub shared_subscription_available: Option<u8>,
    /// The keep alive the client must use instead of its own.
    pub server_keep_alive: Option<u16>,
    /// The basis for response topics, when the client asked for it.
    pub response_information: Option<String>,
    /// Another server for the client to use.
    pub server_reference: Option<String>,
    /// The extended authentication method.
    pub authentication_method: Option<String>,
    /// Data for the extended authentication method.
    pub authentication_data: Option<Bytes>,
}

/// PUBLISH: an application message, in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Set on a redelivery; always false at QoS 0 [MQTT-3.3.1-2].
    pub dup: bool,
    /// The delivery guarantee.
    pub qos: QoS,
    /// Retain the message for future subscribers (client to server), or this message is a
    /// retained one (server to client).
    pub retain: bool,
    /// The topic name. Empty only in MQTT 5 with a topic alias.
    pub topic: String,
    /// Present exactly when QoS > 0 [MQTT-2.2.1-2].
    pub packet_id: Option<PacketId>,
    /// The message body, a zero-copy slice of the read buffer when decoded.
    pub payload: Bytes,
    /// MQTT 5 PUBLISH properties; default for 3.x.
    pub properties: PublishProperties,
}

/// MQTT 5 PUBLISH properties (spec 3.3.2.3), also the will properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// 1 when the payload is UTF-8 text, 0 (or absent) for bytes.
    pub payload_format_indicator: Option<u8>,
    /// Seconds the message lives.
    pub message_expiry_interval: Option<u32>,
    /// A topic alias, never 0 [MQTT-3.3.2-8].
    pub topic_alias: Option<u16>,
    /// Where the receiver should send a response; a topic name without wildcards.
    pub response_topic: Option<String>,
    /// Opaque data echoed in the response.
    pub correlation_data: Option<Bytes>,
    /// User properties, in order [MQTT-3.3.2-18].
    pub user_properties: UserProperties,
    /// The identifiers of the subscriptions the message matched (server to client only,
    /// [MQTT-3.3.4-6]); each in 1..=268,435,455.
    pub subscription_identifiers: Vec<u32>,
    /// A MIME-like description of the payload.
    pub content_type: Option<String>,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP. On the wire in 3.x only the packet identifier exists
/// (decoded as reason 0, no properties). In MQTT 5 the reason and properties are left out when
/// the reason is 0 and there are no properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The identifier of the PUBLISH being acknowledged.
    pub packet_id: PacketId,
    /// The MQTT 5 reason code; 0 for success.
    pub reason: u8,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}

/// The properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckProperties {
    /// A human-readable diagnostic.
    pub reason_string: Option<String>,
    /// User properties.
    pub user_properties: UserProperties,
}

impl AckProperties {
    /// Whether there is no property to write.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}

/// SUBSCRIBE: one or more subscription requests [MQTT-3.8.3-3].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The identifier the SUBACK echoes.
    pub packet_id: PacketId,
    /// The filters with their options; never empty when decoded.
    pub filters: Vec<Subscription>,
    /// MQTT 5 Subscription Identifier, in 1..=268,435,455.
    pub subscription_identifier: Option<u32>,
    /// MQTT 5 user properties.
    pub user_properties: UserProperties,
}

/// One topic filter of a SUBSCRIBE and its subscription options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// A valid topic filter, possibly `$share/{group}/{filter}` (checked on decode).
    pub filter: String,
    /// The maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// MQTT 5: do not deliver the client's own messages back to it.
    pub no_local: bool,
    /// MQTT 5: keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// MQTT 5: 0 send retained messages on subscribe, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
}

/// SUBACK: one reason code per filter of the SUBSCRIBE, in order [MQTT-3.9.3-1].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// Granted QoS (0, 1, 2) or a failure code; 3.x knows only 0x80 as failure.
    pub reasons: Vec<u8>,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}

/// UNSUBSCRIBE: one or more filters to remove [MQTT-3.10.3-2].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The identifier the UNSUBACK echoes.
    pub packet_id: PacketId,
    /// The filters, compared character by character with the session's; never empty when
    /// decoded.
    pub filters: Vec<String>,
    /// MQTT 5 user properties.
    pub user_properties: UserProperties,
}

/// UNSUBACK. In 3.x it carries only the packet identifier (decoded with no reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// MQTT 5: one reason code per filter of the UNSUBSCRIBE.
    pub reasons: Vec<u8>,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}

/// DISCONNECT. In 3.x it has no fields (decoded as reason 0, no properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// The MQTT 5 reason code; 0 is a normal disconnection.
    pub reason: u8,
    /// MQTT 5 properties.
    pub properties: DisconnectProperties,
}

/// MQTT 5 DISCONNECT properties (spec 3.14.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectProperties {
    /// A new session expiry (client to server only, [MQTT-3.14.2-2]).
    pub session_expiry_interval: Option<u32>,
    /// A human-readable diagnostic.
    pub reason_string: Option<String>,
    /// User properties.
    pub user_properties: UserProperties,
    /// Another server for the client to use.
    pub server_reference: Option<String>,
}

/// AUTH, MQTT 5 only: one step of an extended authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// 0x00 success, 0x18 continue, 0x19 re-authenticate.
    pub reason: u8,
    /// AUTH properties.
    pub properties: AuthProperties,
}

/// MQTT 5 AUTH properties (spec 3.15.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthProperties {
    /// The method, which must equal the CONNECT's [MQTT-4.12.0-5] (the session checks).
    pub authentication_method: Option<String>,
    /// Data for the method.
    pub authentication_data: Option<Bytes>,
    /// A human-readable diagnostic.
    pub reason_string: Option<String>,
    /// User properties.
    pub user_properties: UserProperties,
}

/// MQTT 5 reason codes (spec 2.4, Table 2-6). A value below 0x80 is a success.
pub mod reason {
    /// CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, AUTH: the operation succeeded.
    pub const SUCCESS: u8 = 0x00;
    /// DISCONNECT: close normally and do not publish the will.
    pub const NORMAL_DISCONNECTION: u8 = 0x00;
    /// SUBACK: the subscription is accepted with maximum QoS 0.
    pub const GRANTED_QOS_0: u8 = 0x00;
    /// SUBACK: the subscription is accepted with maximum QoS 1.
    pub const GRANTED_QOS_1: u8 = 0x01;
    /// SUBACK: the subscription is accepted with maximum QoS 2.
    pub const GRANTED_QOS_2: u8 = 0x02;
    /// DISCONNECT (client): close, but publish the will.
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    /// PUBACK, PUBREC: accepted, but nobody is subscribed.
    pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
    /// UNSUBACK: there was no such subscription.
    pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
    /// AUTH: continue the authentication with another step.
    pub const CONTINUE_AUTHENTICATION: u8 = 0x18;
    /// AUTH (client): start a re-authentication.
    pub const RE_AUTHENTICATE: u8 = 0x19;
    /// The server does not wish to reveal the reason, or none of the others applies.
    pub const UNSPECIFIED_ERROR: u8 = 0x80;
    /// The packet could not be parsed.
    pub const MALFORMED_PACKET: u8 = 0x81;
    /// The packet parsed but breaks the protocol.
    pub const PROTOCOL_ERROR: u8 = 0x82;
    /// Valid, but not accepted by this implementation.
    pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
    /// CONNACK: the server does not speak the requested protocol version.
    pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
    /// CONNACK: the client identifier is valid but not allowed.
    pub const CLIENT_IDENTIFIER_NOT_VALID: u8 = 0x85;
    /// CONNACK: the user name or password is refused.
    pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
    /// The client is not authorised to do this.
    pub const NOT_AUTHORIZED: u8 = 0x87;
    /// CONNACK: the server is not available.
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    /// CONNACK, DISCONNECT: the server is busy; try again later.
    pub const SERVER_BUSY: u8 = 0x89;
    /// CONNACK: the client is banned by administrative action.
    pub const BANNED: u8 = 0x8A;
    /// DISCONNECT: the server is shutting down.
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    /// CONNACK, DISCONNECT: the authentication method is not supported or does not match.
    pub const BAD_AUTHENTICATION_METHOD: u8 = 0x8C;
    /// DISCONNECT: nothing arrived within 1.5 times the keep alive.
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    /// DISCONNECT: another connection with the same client identifier took the session.
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    /// SUBACK, UNSUBACK, DISCONNECT: the topic filter is well formed but not accepted.
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    /// CONNACK, PUBACK, PUBREC, DISCONNECT: the topic name is well formed but not accepted.
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    /// PUBACK, PUBREC, SUBACK, UNSUBACK: the packet identifier is already in use.
    pub const PACKET_IDENTIFIER_IN_USE: u8 = 0x91;
    /// PUBREL, PUBCOMP: the packet identifier is not known.
    pub const PACKET_IDENTIFIER_NOT_FOUND: u8 = 0x92;
    /// DISCONNECT: more unacknowledged QoS > 0 PUBLISHes than Receive Maximum allows.
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    /// DISCONNECT: the topic alias is 0 or above the maximum, or unknown.
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    /// CONNACK, DISCONNECT: the packet exceeds the maximum packet size.
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    /// DISCONNECT: the received data rate is too high.
    pub const MESSAGE_RATE_TOO_HIGH: u8 = 0x96;
    /// An implementation or administrative quota is exceeded.
    pub const QUOTA_EXCEEDED: u8 = 0x97;
    /// DISCONNECT: closed by administrative action.
    pub const ADMINISTRATIVE_ACTION: u8 = 0x98;
    /// The payload does not match its Payload Format Indicator.
    pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
    /// CONNACK, DISCONNECT: the server does not support retained messages.
    pub const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
    /// CONNACK, DISCONNECT: the QoS is above the server's maximum.
    pub const QOS_NOT_SUPPORTED: u8 = 0x9B;
    /// CONNACK, DISCONNECT: use another server for now (see Server Reference).
    pub const USE_ANOTHER_SERVER: u8 = 0x9C;
    /// CONNACK, DISCONNECT: use another server from now on (see Server Reference).
    pub const SERVER_MOVED: u8 = 0x9D;
    /// SUBACK, DISCONNECT: shared subscriptions are not supported.
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9E;
    /// CONNACK, DISCONNECT: the connection rate limit is exceeded.
    pub const CONNECTION_RATE_EXCEEDED: u8 = 0x9F;
    /// DISCONNECT: the connection lasted as long as it is allowed to.
    pub const MAXIMUM_CONNECT_TIME: u8 = 0xA0;
    /// SUBACK, DISCONNECT: subscription identifiers are not supported.
    pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: u8 = 0xA1;
    /// SUBACK, DISCONNECT: wildcard subscriptions are not supported.
    pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0xA2;

    /// The CONNACK return codes of MQTT 3.1 and 3.1.1 (3.1.1 Table 3.1). 3.x SUBACK uses
    /// [`GRANTED_QOS_0`] to [`GRANTED_QOS_2`] and 0x80 for failure.
    pub mod connack_v3 {
        /// The connection is accepted.
        pub const ACCEPTED: u8 = 0;
        /// The server does not support the requested protocol level.
        pub const UNACCEPTABLE_PROTOCOL_VERSION: u8 = 1;
        /// The client identifier is well formed but not allowed.
        pub const IDENTIFIER_REJECTED: u8 = 2;
        /// The MQTT service is unavailable.
        pub const SERVER_UNAVAILABLE: u8 = 3;
        /// The user name or password is malformed or refused.
        pub const BAD_USERNAME_OR_PASSWORD: u8 = 4;
        /// The client is not authorised to connect.
        pub const NOT_AUTHORIZED: u8 = 5;
    }

    /// The reason codes each MQTT 5 packet may carry (the spec's per-packet tables).
    /// Decoding checks received codes against them.
    pub(crate) mod allowed {
        /// Table 3-1, [MQTT-3.2.2-8].
        pub const CONNACK: &[u8] = &[
            0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
            0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
        ];
        /// Tables 3-4 and 3-5, [MQTT-3.4.2-1] and [MQTT-3.5.2-1].
        pub const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
        /// Tables 3-6 and 3-7, [MQTT-3.6.2-1] and [MQTT-3.7.2-1].
        pub const PUBREL: &[u8] = &[0x00, 0x92];
        /// Table 3-8, [MQTT-3.9.3-2].
        pub const SUBACK: &[u8] = &[
            0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
        ];
        /// 3.1.1 SUBACK return codes, [MQTT-3.9.3-2] of 3.1.1.
        pub const SUBACK_V3: &[u8] = &[0x00, 0x01, 0x02, 0x80];
        /// Table 3-9, [MQTT-3.11.3-2].
        pub const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
        /// Table 3-10, [MQTT-3.14.2-1].
        pub const DISCONNECT: &[u8] = &[
            0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93,
            0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1,
            0xA2,
        ];
        /// Table 3-11, [MQTT-3.15.2-1].
        pub const AUTH: &[u8] = &[0x00, 0x18, 0x19];
    }
}
