//! SNS's Query protocol as the `sns-fanout` scenario speaks it: form-encoded requests, and the
//! one or two elements it reads from each XML answer. The Query protocol is the one both
//! mqbridge and moto serve for SNS (moto has no SNS JSON protocol), so both are measured on it.
//!
//! ```text
//! CreateTopic   Action=CreateTopic&Version=2010-03-31&Name=...          -> <TopicArn>
//! Subscribe     Action=Subscribe&Version=2010-03-31&TopicArn=...&Protocol=sqs&Endpoint=<queue
//!               ARN>&ReturnSubscriptionArn=true[&Attributes.entry.1.key=RawMessageDelivery
//!               &Attributes.entry.1.value=true]                         -> <SubscriptionArn>
//! Publish       Action=Publish&Version=2010-03-31&TopicArn=...&Message=<id><letters>
//!                                                                       -> <MessageId>
//! DeleteTopic   Action=DeleteTopic&Version=2010-03-31&TopicArn=...
//! ```
//!
//! What a subscribed queue receives is the Notification envelope, a JSON document whose
//! `Message` is the published text ([`envelope_message`]), or with raw delivery the text itself.

use std::borrow::Cow;

use anyhow::{Context, bail};
use bytes::Bytes;
use serde::Deserialize;

use super::wire::Template;

/// The Query protocol's SNS API version.
const VERSION: &str = "2010-03-31";

/// A form of `Action`, `Version` and the given parameters, values percent-encoded.
fn form(action: &str, parameters: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", action);
    form.append_pair("Version", VERSION);
    for (name, value) in parameters {
        form.append_pair(name, value);
    }
    form.finish()
}

pub fn create_topic(name: &str) -> Bytes {
    Bytes::from(form("CreateTopic", &[("Name", name)]))
}

/// Subscribe a queue, by its ARN, with the envelope or (`raw`) the bare message.
pub fn subscribe_queue(topic_arn: &str, queue_arn: &str, raw: bool) -> Bytes {
    let mut parameters = vec![
        ("TopicArn", topic_arn),
        ("Protocol", "sqs"),
        ("Endpoint", queue_arn),
        ("ReturnSubscriptionArn", "true"),
    ];
    if raw {
        parameters.push(("Attributes.entry.1.key", "RawMessageDelivery"));
        parameters.push(("Attributes.entry.1.value", "true"));
    }
    Bytes::from(form("Subscribe", &parameters))
}

pub fn delete_topic(topic_arn: &str) -> Bytes {
    Bytes::from(form("DeleteTopic", &[("TopicArn", topic_arn)]))
}

/// Publish of one message of `size` bytes; the id and letters need no percent-encoding.
pub fn publish_template(topic_arn: &str, size: usize) -> Template {
    let before = form("Publish", &[("TopicArn", topic_arn)]) + "&Message=";
    Template::around(before.as_bytes(), size, b"")
}

/// The text of the first `<tag>` element of an XML answer, with the five predefined entities
/// decoded (enough for ARNs and ids).
pub fn element(answer: &[u8], tag: &str) -> anyhow::Result<String> {
    let text = std::str::from_utf8(answer).context("answer is not UTF-8")?;
    let open = format!("<{tag}>");
    let start = text
        .find(&open)
        .map(|at| at + open.len())
        .with_context(|| format!("no <{tag}> in the answer"))?;
    let end = text[start..]
        .find(&format!("</{tag}>"))
        .with_context(|| format!("<{tag}> is not closed"))?;
    let value = text[start..start + end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    if value.is_empty() {
        bail!("<{tag}> is empty");
    }
    Ok(value)
}

/// The published text in a Notification envelope.
pub fn envelope_message(body: &str) -> anyhow::Result<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "Type", borrow)]
        kind: Cow<'a, str>,
        #[serde(rename = "Message", borrow)]
        message: Cow<'a, str>,
    }
    let envelope: Envelope<'_> = serde_json::from_str(body).context("Notification envelope")?;
    if envelope.kind != "Notification" {
        bail!("received an envelope of Type {}", envelope.kind);
    }
    Ok(envelope.message)
}

#[cfg(test)]
mod tests {
    use super::super::wire::{body_id, message_id};
    use super::*;

    #[test]
    fn publish_forms_carry_the_encoded_arn_and_the_id() {
        let template = publish_template("arn:aws:sns:us-east-1:000000000000:t", 64);
        let form = template.render(message_id(2, 9));
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&form)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(pairs[0], ("Action".into(), "Publish".into()));
        assert_eq!(pairs[1], ("Version".into(), VERSION.into()));
        assert_eq!(pairs[2].1, "arn:aws:sns:us-east-1:000000000000:t");
        assert_eq!(pairs[3].0, "Message");
        assert_eq!(body_id(&pairs[3].1, 64).ok(), Some(message_id(2, 9)));
        assert!(String::from_utf8_lossy(&form).contains("TopicArn=arn%3Aaws%3Asns"));
    }

    #[test]
    fn raw_subscriptions_carry_the_attribute() {
        let form = subscribe_queue("t", "arn:aws:sqs:us-east-1:1:q", true);
        let text = String::from_utf8_lossy(&form);
        assert!(text.contains("Attributes.entry.1.key=RawMessageDelivery"));
        assert!(!String::from_utf8_lossy(&subscribe_queue("t", "q", false)).contains("Raw"));
    }

    #[test]
    fn elements_are_read_and_decoded() {
        let xml = b"<?xml version=\"1.0\"?><CreateTopicResponse><CreateTopicResult>\
            <TopicArn>arn:a&amp;b</TopicArn></CreateTopicResult></CreateTopicResponse>";
        assert_eq!(element(xml, "TopicArn").ok().as_deref(), Some("arn:a&b"));
        assert!(element(xml, "MessageId").is_err());
    }

    #[test]
    fn envelopes_yield_their_message() {
        let body = r#"{"Type":"Notification","MessageId":"m","Message":"hi \"x\""}"#;
        assert_eq!(envelope_message(body).ok().as_deref(), Some("hi \"x\""));
        assert!(envelope_message(r#"{"Type":"Other","Message":"m"}"#).is_err());
    }
}
