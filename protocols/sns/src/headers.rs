//! The headers SNS adds to the core message of a Publish, besides the message attributes
//! (which become headers by the SQS mapping) and the FIFO group and deduplication headers.
//! AMQP, STOMP and MQTT consumers of a queue bound to the topic's exchange see them as is;
//! SNS subscribers get them back as envelope fields.

/// The Subject, when one was given.
pub const SUBJECT: &str = "x-sns-subject";
/// MessageStructure=json: the per-protocol messages as a JSON object; the body is its
/// `default`.
pub const STRUCTURE: &str = "x-sns-message-structure";
/// When SNS accepted the message (ISO 8601, milliseconds), the envelope's Timestamp.
pub const TIMESTAMP: &str = "x-sns-timestamp";
/// The topic the message was published to.
pub const TOPIC_ARN: &str = "x-sns-topic-arn";

pub const ALL: [&str; 4] = [SUBJECT, STRUCTURE, TIMESTAMP, TOPIC_ARN];
