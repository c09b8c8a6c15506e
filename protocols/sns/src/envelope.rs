//! The JSON documents SNS hands to subscribers: the Notification envelope (in SQS queues, and
//! POSTed to HTTP endpoints) and the SubscriptionConfirmation an HTTP endpoint gets first.
//! Every one is signed ([`crate::signing`]) over the very strings it carries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mqbridge_sqs::attributes::{AttributeValue, MessageAttribute};
use serde_json::{Map, Value, json};

use crate::service::CERTIFICATE_PATH;
use crate::signing::{SignatureVersion, Signed, Signer};

/// One message as a subscription delivers it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: String,
    /// ISO 8601 with milliseconds, UTC.
    pub timestamp: String,
    /// FIFO topics only.
    pub sequence_number: Option<String>,
    pub attributes: Vec<MessageAttribute>,
}

/// Where subscribers fetch the signing certificate, under the endpoint's host.
pub fn certificate_url(host: &str) -> String {
    format!("http://{host}{CERTIFICATE_PATH}")
}

pub fn unsubscribe_url(host: &str, subscription_arn: &str) -> String {
    format!(
        "http://{host}/?Action=Unsubscribe&SubscriptionArn={}",
        encode(subscription_arn)
    )
}

pub fn subscribe_url(host: &str, topic_arn: &str, token: &str) -> String {
    format!(
        "http://{host}/?Action=ConfirmSubscription&TopicArn={}&Token={token}",
        encode(topic_arn)
    )
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Notification {
    /// The signed envelope.
    pub fn envelope(
        &self,
        signer: &Signer,
        version: SignatureVersion,
        host: &str,
        subscription_arn: &str,
    ) -> String {
        let signature = signer.sign(
            version,
            &Signed::Notification {
                message: &self.message,
                message_id: &self.message_id,
                subject: self.subject.as_deref(),
                timestamp: &self.timestamp,
                topic_arn: &self.topic_arn,
            },
        );
        let mut envelope = Map::new();
        envelope.insert("Type".into(), "Notification".into());
        envelope.insert("MessageId".into(), self.message_id.clone().into());
        if let Some(sequence) = &self.sequence_number {
            envelope.insert("SequenceNumber".into(), sequence.clone().into());
        }
        envelope.insert("TopicArn".into(), self.topic_arn.clone().into());
        if let Some(subject) = &self.subject {
            envelope.insert("Subject".into(), subject.clone().into());
        }
        envelope.insert("Message".into(), self.message.clone().into());
        envelope.insert("Timestamp".into(), self.timestamp.clone().into());
        envelope.insert("SignatureVersion".into(), version.as_str().into());
        envelope.insert("Signature".into(), signature.into());
        envelope.insert("SigningCertURL".into(), certificate_url(host).into());
        envelope.insert(
            "UnsubscribeURL".into(),
            unsubscribe_url(host, subscription_arn).into(),
        );
        if !self.attributes.is_empty() {
            envelope.insert(
                "MessageAttributes".into(),
                attributes_json(&self.attributes),
            );
        }
        Value::Object(envelope).to_string()
    }
}

/// The envelope's attribute form: `{"name": {"Type": "String", "Value": "v"}}`, binary values
/// in base64.
fn attributes_json(attributes: &[MessageAttribute]) -> Value {
    let map = attributes
        .iter()
        .map(|attribute| {
            let value = match &attribute.value {
                AttributeValue::Text(text) => text.clone(),
                AttributeValue::Binary(bytes) => BASE64.encode(bytes),
            };
            (
                attribute.name.clone(),
                json!({"Type": attribute.data_type, "Value": value}),
            )
        })
        .collect();
    Value::Object(map)
}

/// The SubscriptionConfirmation an HTTP endpoint gets when it subscribes.
pub struct Confirmation<'a> {
    pub message_id: &'a str,
    pub topic_arn: &'a str,
    pub token: &'a str,
    pub timestamp: &'a str,
    pub host: &'a str,
}

impl Confirmation<'_> {
    pub fn document(&self, signer: &Signer, version: SignatureVersion) -> String {
        let message = format!(
            "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit \
             the SubscribeURL included in this message.",
            self.topic_arn
        );
        let subscribe_url = subscribe_url(self.host, self.topic_arn, self.token);
        let kind = "SubscriptionConfirmation";
        let signature = signer.sign(
            version,
            &Signed::Confirmation {
                kind,
                message: &message,
                message_id: self.message_id,
                subscribe_url: &subscribe_url,
                timestamp: self.timestamp,
                token: self.token,
                topic_arn: self.topic_arn,
            },
        );
        json!({
            "Type": kind,
            "MessageId": self.message_id,
            "Token": self.token,
            "TopicArn": self.topic_arn,
            "Message": message,
            "SubscribeURL": subscribe_url,
            "Timestamp": self.timestamp,
            "SignatureVersion": version.as_str(),
            "Signature": signature,
            "SigningCertURL": certificate_url(self.host),
        })
        .to_string()
    }
}

/// `2026-12-03T21:45:12.123Z` for Unix milliseconds.
pub fn iso_timestamp(ms: u64) -> String {
    let basic = mqbridge_sqs::sigv4::format_amz_date(ms / 1000);
    // yyyymmddThhmmssZ -> yyyy-mm-ddThh:mm:ss.mmmZ
    let part = |range: std::ops::Range<usize>| basic.get(range).unwrap_or("00");
    format!(
        "{}-{}-{}T{}:{}:{}.{:03}Z",
        part(0..4),
        part(4..6),
        part(6..8),
        part(9..11),
        part(11..13),
        part(13..15),
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_with_milliseconds() {
        assert_eq!(iso_timestamp(1_796_333_112_007), "2026-12-03T21:25:12.007Z");
    }
}
