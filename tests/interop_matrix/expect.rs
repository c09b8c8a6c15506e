//! What a receiver must see, by ARCHITECTURE.md's mapping table: first what the core holds
//! after the publisher's edge ("in"), then what the receiver's edge shows of it ("out"), and
//! the comparison with what it did show.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Value;

use crate::common::interop::{Received, TRANSFER_ENCODING, amqp_text, is_sqs_text};
use crate::samples::{Destination, Protocol, Sample};

/// What a receiver must show for one property or header.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Absent,
    Exact(String),
    /// Unix seconds between the test's start and now: the broker's publish time.
    Recent,
    /// JSON whose value at the pointer is this string.
    JsonAt(&'static str, &'static str),
}

impl Want {
    pub fn exact(text: impl Into<String>) -> Want {
        Want::Exact(text.into())
    }

    /// `None` when `got` is what is wanted, else the complaint.
    pub fn check(&self, got: Option<&str>, since: u64) -> Option<String> {
        let ok = match (self, got) {
            (Want::Absent, None) => true,
            (Want::Exact(want), Some(got)) => same_text(want, got),
            (Want::Recent, Some(got)) => got
                .parse::<u64>()
                .is_ok_and(|t| (since..=now_seconds() + 1).contains(&t)),
            (Want::JsonAt(pointer, want), Some(got)) => serde_json::from_str::<Value>(got)
                .is_ok_and(|json| json.pointer(pointer) == Some(&Value::from(*want))),
            _ => false,
        };
        (!ok).then(|| format!("expected {self:?}, got {got:?}"))
    }
}

/// Equal text, or equal JSON arrays/objects (key order is not part of the text form).
fn same_text(want: &str, got: &str) -> bool {
    let json = |text: &str| {
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(|v| v.is_array() || v.is_object())
    };
    want == got || json(want).is_some_and(|w| json(got) == Some(w))
}

pub struct Expected {
    pub body: Vec<u8>,
    pub fields: BTreeMap<&'static str, Want>,
    pub headers: BTreeMap<String, Want>,
}

/// The SenderId SQS shows when nobody is known to have published (the dev-mode account).
const ACCOUNT_ID: &str = "000000000000";
/// SQS's default MessageRetentionPeriod (4 days), which SendMessage sets as expiration.
const RETENTION_MS: &str = "345600000";

const FIELDS: [&str; 12] = [
    "persistent",
    "message-id",
    "correlation-id",
    "content-type",
    "content-encoding",
    "reply-to",
    "expiration",
    "priority",
    "timestamp",
    "type",
    "app-id",
    "user-id",
];

/// What the core holds once `sample` has passed the publisher's edge ("in" in the table).
pub fn core_expectation(
    dest: &Destination,
    sample: &Sample,
    assigned_id: Option<&str>,
) -> Expected {
    let publisher = dest.publisher;
    let mut fields: BTreeMap<_, _> = FIELDS.iter().map(|f| (*f, Want::Absent)).collect();
    fields.insert("persistent", Want::exact(sample.persistent.to_string()));
    for (name, value) in &sample.properties {
        fields.insert(name, Want::exact(value));
    }
    // Who published: the MQTT username or the STOMP login; AMQP's user-id is the publisher's
    // to set; SQS in dev mode and SNS know nobody.
    if publisher.is_mqtt() || matches!(publisher, Protocol::Stomp | Protocol::StompWs) {
        fields.insert("user-id", Want::exact("guest"));
    }
    if let Some(id) = assigned_id {
        fields.insert("message-id", Want::exact(id));
    }
    match publisher {
        // The send time, and the queue's retention period as expiration.
        Protocol::Sqs => {
            fields.insert("timestamp", Want::Recent);
            fields.insert("expiration", Want::exact(RETENTION_MS));
        }
        // The publish time; the table says expiration is "as SQS", which a topic has no
        // retention period for.
        Protocol::Sns => {
            fields.insert("timestamp", Want::Recent);
            fields.remove("expiration");
        }
        _ => {}
    }
    let mut headers = BTreeMap::new();
    for (name, _) in &sample.headers {
        let same_name = sample.headers.iter().filter(|(n, _)| n == name);
        let values: Vec<String> = same_name.map(|(_, v)| amqp_text(v)).collect();
        let text = match values.as_slice() {
            [one] => one.clone(),
            many => Value::from(many.to_vec()).to_string(),
        };
        headers.insert((*name).to_owned(), Want::Exact(text));
    }
    if publisher.is_mqtt() {
        headers.insert("x-mqtt-client-id".into(), Want::exact(dest.client_id()));
        headers.insert("x-mqtt-username".into(), Want::exact("guest"));
    }
    if let Some(format) = sample.payload_format {
        headers.insert(
            "x-mqtt-payload-format".into(),
            Want::exact(format.to_string()),
        );
    }
    if publisher == Protocol::Sqs {
        // A base64 body comes in decoded; nothing may call it base64 any more.
        headers.insert(TRANSFER_ENCODING.into(), Want::Absent);
    }
    Expected {
        body: sample.body.clone(),
        fields,
        headers,
    }
}

/// What `dest.receiver` must show of the core's message ("out" in the table).
pub fn project(mut want: Expected, dest: &Destination) -> Expected {
    let receiver = dest.receiver;
    if let Some(Want::Exact(address)) = want.fields.get("reply-to") {
        let seen = reply_seen_by(receiver, address);
        want.fields.insert("reply-to", Want::Exact(seen));
    }
    match receiver {
        Protocol::Mqtt311 => {
            want.fields.retain(|name, _| *name == "persistent");
            want.headers.clear();
        }
        Protocol::Mqtt5 | Protocol::MqttWs => {
            if let Some(Want::Exact(ms)) = want.fields.get("expiration") {
                let seconds = ms.parse::<u64>().expect("ms").div_ceil(1000);
                want.fields
                    .insert("expiration", Want::exact(seconds.to_string()));
            }
            // Not sent out: MQTT subscribers are not told who published.
            want.fields.insert("user-id", Want::Absent);
            for name in ["x-mqtt-client-id", "x-mqtt-username"] {
                want.headers.insert(name.into(), Want::Absent);
            }
        }
        Protocol::Sqs => sqs_view(&mut want),
        Protocol::Amqp | Protocol::Stomp | Protocol::StompWs | Protocol::Sns => {}
    }
    if dest.publisher == Protocol::Sqs && receiver.is_mqtt() {
        want.fields.insert("expiration", Want::Absent);
        if receiver.is_mqtt5() {
            want.headers
                .insert("x-death".into(), Want::JsonAt("/0/reason", "expired"));
        }
    }
    want
}

/// What an SQS receiver shows: no persistence and no expiration; always a MessageId, a
/// SentTimestamp (the receive time when the message has none) and a SenderId (the account
/// when nobody is known); a body that is not SQS text in base64.
fn sqs_view(want: &mut Expected) {
    want.fields.remove("persistent");
    want.fields.insert("expiration", Want::Absent);
    if want.fields.get("message-id") == Some(&Want::Absent) {
        want.fields.remove("message-id");
    }
    if want.fields.get("timestamp") == Some(&Want::Absent) {
        want.fields.insert("timestamp", Want::Recent);
    }
    if want.fields.get("user-id") == Some(&Want::Absent) {
        want.fields.insert("user-id", Want::exact(ACCOUNT_ID));
    }
    let encoding = match is_sqs_text(&want.body) {
        true => Want::Absent,
        false => Want::exact("base64"),
    };
    want.fields.insert(TRANSFER_ENCODING, encoding);
    want.headers.remove(TRANSFER_ENCODING);
}

/// A reply address as a receiver sees it (ARCHITECTURE.md, "Reply addresses").
pub fn reply_seen_by(receiver: Protocol, address: &str) -> String {
    let queue = !address.starts_with('/');
    match receiver {
        Protocol::Mqtt5 | Protocol::MqttWs => match address.strip_prefix("/topic/") {
            Some(key) => key.replace('.', "/"),
            None => match address.strip_prefix("/exchange/") {
                Some(rest) => format!("$exchange/{rest}"),
                None => format!("$queue/{address}"),
            },
        },
        Protocol::Stomp | Protocol::StompWs if queue => format!("/reply-queue/{address}"),
        _ => address.to_owned(),
    }
}

/// Every difference between what `label`'s receiver must see and what it saw.
pub fn compare(label: &str, want: &Expected, got: &Received, since: u64) -> Vec<String> {
    let mut out = Vec::new();
    if want.body != got.body {
        let (want, got) = (
            Bytes::from(want.body.clone()),
            Bytes::from(got.body.clone()),
        );
        out.push(format!("{label}: body: expected {want:?}, got {got:?}"));
    }
    for (name, wanted) in &want.fields {
        let value = got.fields.get(name).map(String::as_str);
        if let Some(problem) = wanted.check(value, since) {
            out.push(format!("{label}: {name}: {problem}"));
        }
    }
    for (name, wanted) in &want.headers {
        let value = got.headers.get(name).map(String::as_str);
        // AWS's limit of 10 attributes: further headers are not delivered (the table).
        if value.is_none() && got.attributes_full {
            continue;
        }
        if let Some(problem) = wanted.check(value, since) {
            out.push(format!("{label}: header {name}: {problem}"));
        }
    }
    out
}

pub fn now_seconds() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.expect("after 1970").as_secs()
}
