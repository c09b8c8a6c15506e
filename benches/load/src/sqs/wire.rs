//! The AWS JSON 1.0 bodies the SQS scenarios send and the parts of the answers they read.
//!
//! Message bodies are text: 16 lower-case hex digits naming the message (see [`message_id`]),
//! then letters up to the requested size. Send requests are encoded once as a [`Template`]
//! and only the hex digits are rewritten per request, so the client spends its time on the
//! network, not on JSON.
//!
//! ```text
//! SendMessageBatch  {"QueueUrl":"...","Entries":[{"Id":"0","MessageBody":"<id><letters>"},...]}
//! SendMessage       {"QueueUrl":"...","MessageBody":"<id><letters>"}
//! ReceiveMessage    {"QueueUrl":"...","MaxNumberOfMessages":10,"WaitTimeSeconds":W}
//! DeleteMessageBatch {"QueueUrl":"...","Entries":[{"Id":"0","ReceiptHandle":"..."},...]}
//! ```

use std::borrow::Cow;

use anyhow::{Context, bail};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Hex digits of the id at the start of every message body.
pub const ID_DIGITS: usize = 16;

/// AWS: a batch holds at most 10 entries, and ReceiveMessage returns at most 10 messages.
pub const BATCH_ENTRIES_MAX: usize = 10;

/// The id of message `sequence` of producer `producer`: the producer in the high 24 bits,
/// its own count in the low 40, so that ids never collide and a run can check them all.
pub fn message_id(producer: u32, sequence: u64) -> u64 {
    (u64::from(producer) << 40) | sequence
}

/// Splits an id back into (producer, sequence).
pub fn split_id(id: u64) -> (u32, u64) {
    ((id >> 40) as u32, id & ((1 << 40) - 1))
}

/// A send request encoded once, with the places of the message ids in it.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    id_offsets: Vec<usize>,
}

impl Template {
    /// SendMessageBatch with `entries` messages of `size` bytes each.
    pub fn send_batch(queue_url: &str, entries: usize, size: usize) -> Template {
        let mut template = Template::start(queue_url);
        template.push(b",\"Entries\":[");
        for index in 0..entries {
            if index > 0 {
                template.push(b",");
            }
            template.push(format!("{{\"Id\":\"{index}\",\"MessageBody\":\"").as_bytes());
            template.push_body(size);
            template.push(b"\"}");
        }
        template.push(b"]}");
        template
    }

    /// SendMessage with one message of `size` bytes.
    pub fn send_one(queue_url: &str, size: usize) -> Template {
        let mut template = Template::start(queue_url);
        template.push(b",\"MessageBody\":\"");
        template.push_body(size);
        template.push(b"\"}");
        template
    }

    /// A template of any bytes with one message body of `size` bytes between `before` and
    /// `after` (the caller makes sure the body needs no escaping there).
    pub fn around(before: &[u8], size: usize, after: &[u8]) -> Template {
        let mut template = Template {
            bytes: before.to_vec(),
            id_offsets: Vec::new(),
        };
        template.push_body(size);
        template.push(after);
        template
    }

    /// The request with consecutive ids from `first_id`, one per message.
    pub fn render(&self, first_id: u64) -> Bytes {
        let mut bytes = self.bytes.clone();
        for (id, &offset) in (first_id..).zip(&self.id_offsets) {
            let digits = format!("{id:0width$x}", width = ID_DIGITS);
            bytes[offset..offset + ID_DIGITS].copy_from_slice(digits.as_bytes());
        }
        Bytes::from(bytes)
    }

    /// Messages per request.
    pub fn messages(&self) -> usize {
        self.id_offsets.len()
    }

    fn start(queue_url: &str) -> Template {
        let mut template = Template {
            bytes: Vec::new(),
            id_offsets: Vec::new(),
        };
        template.push(b"{\"QueueUrl\":");
        let quoted = serde_json::to_string(queue_url).unwrap_or_default();
        template.push(quoted.as_bytes());
        template
    }

    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// A body of `size` bytes: the id's place, then letters (no JSON escaping needed).
    fn push_body(&mut self, size: usize) {
        self.id_offsets.push(self.bytes.len());
        self.bytes.extend(std::iter::repeat_n(b'0', ID_DIGITS));
        let letters = b"abcdefghijklmnopqrstuvwxyz".iter().copied().cycle();
        self.bytes
            .extend(letters.take(size.saturating_sub(ID_DIGITS)));
    }
}

/// `{"QueueName":"..."}`.
pub fn create_queue(name: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "QueueName": name }).to_string())
}

/// `{"QueueUrl":"..."}`, the body of DeleteQueue.
pub fn queue_only(queue_url: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "QueueUrl": queue_url }).to_string())
}

/// ReceiveMessage for up to 10 messages with a long poll of `wait_seconds`.
pub fn receive(queue_url: &str, wait_seconds: u64) -> Bytes {
    let request = serde_json::json!({
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": BATCH_ENTRIES_MAX,
        "WaitTimeSeconds": wait_seconds,
    });
    Bytes::from(request.to_string())
}

/// GetQueueAttributes for the queue's ARN.
pub fn queue_arn_request(queue_url: &str) -> Bytes {
    let request = serde_json::json!({ "QueueUrl": queue_url, "AttributeNames": ["QueueArn"] });
    Bytes::from(request.to_string())
}

/// The `QueueArn` attribute in a GetQueueAttributes answer.
pub fn queue_arn(answer: &[u8]) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Attributes {
        #[serde(rename = "QueueArn")]
        queue_arn: String,
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Attributes")]
        attributes: Attributes,
    }
    let answer: Answer = serde_json::from_slice(answer).context("GetQueueAttributes answer")?;
    Ok(answer.attributes.queue_arn)
}

/// The queue URL in a CreateQueue answer.
pub fn queue_url(answer: &[u8]) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Created {
        #[serde(rename = "QueueUrl")]
        queue_url: String,
    }
    let created: Created = serde_json::from_slice(answer).context("CreateQueue answer")?;
    Ok(created.queue_url)
}

/// The MessageId of a SendMessage answer: its presence is what says the message was taken.
pub fn message_id_of_answer(answer: &[u8]) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Sent {
        #[serde(rename = "MessageId")]
        message_id: String,
    }
    let sent: Sent = serde_json::from_slice(answer)?;
    Ok(sent.message_id)
}

/// A failed entry of a batch answer.
#[derive(Debug, Deserialize)]
struct FailedEntry {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// How many entries of a batch answer succeeded; any failed entry is an error, since the
/// scenarios send only valid entries.
pub fn batch_successes(answer: &[u8]) -> anyhow::Result<usize> {
    #[derive(Deserialize)]
    struct BatchResult {
        #[serde(rename = "Successful", default)]
        successful: Vec<serde::de::IgnoredAny>,
        #[serde(rename = "Failed", default)]
        failed: Vec<FailedEntry>,
    }
    let result: BatchResult = serde_json::from_slice(answer).context("batch answer")?;
    if let Some(failed) = result.failed.first() {
        bail!(
            "{} of {} entries failed, the first with {}: {}",
            result.failed.len(),
            result.failed.len() + result.successful.len(),
            failed.code,
            failed.message
        );
    }
    Ok(result.successful.len())
}

/// The answer of ReceiveMessage, borrowing from the answer's bytes where it can.
#[derive(Debug, Deserialize)]
pub struct Received<'a> {
    #[serde(rename = "Messages", default, borrow)]
    pub messages: Vec<ReceivedMessage<'a>>,
}

/// One received message: what DeleteMessageBatch needs and what the loss check reads.
#[derive(Debug, Deserialize)]
pub struct ReceivedMessage<'a> {
    #[serde(rename = "ReceiptHandle", borrow)]
    pub receipt_handle: Cow<'a, str>,
    #[serde(rename = "Body", borrow)]
    pub body: Cow<'a, str>,
}

impl Received<'_> {
    pub fn parse(answer: &[u8]) -> anyhow::Result<Received<'_>> {
        serde_json::from_slice(answer).context("ReceiveMessage answer")
    }
}

/// The id at the start of a message body, checking that the body has the size sent.
pub fn body_id(body: &str, size: usize) -> anyhow::Result<u64> {
    if body.len() != size.max(ID_DIGITS) {
        bail!("received a body of {} bytes, sent {size}", body.len());
    }
    let digits = body.get(..ID_DIGITS).context("body too short")?;
    u64::from_str_radix(digits, 16).with_context(|| format!("body id {digits:?}"))
}

/// DeleteMessageBatch for the given receipt handles, with entry ids `0`, `1`, ...
pub fn delete_batch(queue_url: &str, messages: &[ReceivedMessage<'_>]) -> anyhow::Result<Bytes> {
    #[derive(Serialize)]
    struct Entry<'a> {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "ReceiptHandle")]
        receipt_handle: &'a str,
    }
    #[derive(Serialize)]
    struct DeleteBatch<'a> {
        #[serde(rename = "QueueUrl")]
        queue_url: &'a str,
        #[serde(rename = "Entries")]
        entries: Vec<Entry<'a>>,
    }
    let entries = messages
        .iter()
        .enumerate()
        .map(|(index, message)| Entry {
            id: index.to_string(),
            receipt_handle: &message.receipt_handle,
        })
        .collect();
    let request = DeleteBatch { queue_url, entries };
    Ok(Bytes::from(serde_json::to_vec(&request)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_template_renders_valid_json_with_consecutive_ids() {
        let template = Template::send_batch("http://127.0.0.1:9324/000000000000/q", 10, 1024);
        assert_eq!(template.messages(), 10);
        let request: serde_json::Value =
            serde_json::from_slice(&template.render(message_id(3, 40))).expect("JSON");
        let entries = request["Entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 10);
        for (index, entry) in entries.iter().enumerate() {
            assert_eq!(entry["Id"], index.to_string());
            let body = entry["MessageBody"].as_str().expect("body");
            let id = body_id(body, 1024).expect("id");
            assert_eq!(split_id(id), (3, 40 + index as u64));
        }
        assert_eq!(request["QueueUrl"], "http://127.0.0.1:9324/000000000000/q");
    }

    #[test]
    fn single_template_renders_one_message() {
        let template = Template::send_one("http://h/1/q", 100);
        let request: serde_json::Value = serde_json::from_slice(&template.render(7)).expect("JSON");
        assert_eq!(
            body_id(request["MessageBody"].as_str().expect("body"), 100).ok(),
            Some(7)
        );
    }

    #[test]
    fn batch_answers_count_successes_and_reject_failures() {
        let ok = br#"{"Successful":[{"Id":"0","MessageId":"a"},{"Id":"1"}],"Failed":[]}"#;
        assert_eq!(batch_successes(ok).expect("ok"), 2);
        let failed = br#"{"Successful":[],"Failed":[{"Id":"0","Code":"X","Message":"no"}]}"#;
        assert!(batch_successes(failed).is_err());
    }

    #[test]
    fn receive_answers_parse_empty_and_full() {
        assert!(Received::parse(b"{}").expect("empty").messages.is_empty());
        let answer = br#"{"Messages":[{"MessageId":"m","ReceiptHandle":"r\/1","Body":"b"}]}"#;
        let received = Received::parse(answer).expect("one");
        assert_eq!(received.messages[0].receipt_handle, "r/1");
        let request = delete_batch("u", &received.messages).expect("delete");
        let request: serde_json::Value = serde_json::from_slice(&request).expect("JSON");
        assert_eq!(request["Entries"][0]["ReceiptHandle"], "r/1");
        assert_eq!(request["Entries"][0]["Id"], "0");
    }
}
