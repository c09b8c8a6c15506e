//! Publish and PublishBatch. A publish is a persistent message on the topic's exchange:
//! routed like any other publish (so queues bound over AMQP get it, with message attributes as
//! headers), and answered once every queue it reached has stored it. While a resource alarm
//! blocks publishers, both are answered `Throttling` before anything else is looked at.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mqbridge_broker_api::{ConfirmSink, HeaderValue, Message};
use mqbridge_sqs::attributes::MessageAttribute;
use mqbridge_sqs::fifo::{DEDUPLICATION_HEADER, MESSAGE_GROUP_HEADER, SEQUENCE_HEADER};
use mqbridge_sqs::recent::Recent;
use mqbridge_sqs::service::{new_uuid, now_ms};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::envelope::iso_timestamp;
use crate::error::{ErrorKind, SnsError};
use crate::headers;
use crate::params::Params;
use crate::registry::Topic;
use crate::service::SnsService;

/// AWS's limit on a message and its attributes together.
pub const MESSAGE_SIZE_MAX: usize = 262_144;
const SUBJECT_MAX: usize = 100;
const BATCH_MAX: usize = 10;
const ENTRY_ID_MAX: usize = 80;
/// How long a FIFO topic remembers deduplication ids.
const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(300);
const DEDUPLICATION_REMEMBERED_MAX: usize = 1_000_000;

/// FIFO topics' deduplication ids (per topic) with the answer the first publish got, and the
/// sequence number counter.
pub struct FifoState {
    seen: Recent<(String, String)>,
    sequence: u128,
}

impl Default for FifoState {
    fn default() -> Self {
        FifoState {
            seen: Recent::new(DEDUPLICATION_WINDOW, DEDUPLICATION_REMEMBERED_MAX),
            // Rising across restarts: the clock in microseconds is the floor.
            sequence: u128::from(now_ms()) * 1_000_000,
        }
    }
}

pub type Fifo = Mutex<FifoState>;

enum Admitted {
    /// A new message, with its sequence number.
    New(String),
    /// A duplicate: the first publish's MessageId and SequenceNumber.
    Duplicate(String, String),
}

impl FifoState {
    fn admit(&mut self, topic: &str, deduplication: &str, message_id: &str) -> Admitted {
        let key = format!("{topic}\0{deduplication}");
        let now = Instant::now();
        if let Some((id, sequence)) = self.seen.get(&key, now) {
            return Admitted::Duplicate(id.clone(), sequence.clone());
        }
        self.sequence += 1;
        let sequence = format!("{:020}", self.sequence % 10u128.pow(20));
        self.seen
            .insert(key, (message_id.to_owned(), sequence.clone()), now);
        Admitted::New(sequence)
    }
}

pub(super) async fn publish(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    service.admit_publish()?;
    let arn = match (params.string("TopicArn")?, params.string("TargetArn")?) {
        (Some(arn), _) | (None, Some(arn)) => arn,
        (None, None) if params.get("PhoneNumber").is_some() => {
            return Err(SnsError::invalid(
                "PhoneNumber Reason: SMS is not supported",
            ));
        }
        (None, None) => return Err(SnsError::missing("TopicArn or TargetArn")),
    };
    let topic = service.topic(arn)?;
    let (message_id, sequence) = publish_one(service, &topic, params).await?;
    let mut result = json!({"MessageId": message_id});
    if let Some(sequence) = sequence {
        result["SequenceNumber"] = Value::String(sequence);
    }
    Ok(result)
}

/// Validates and publishes one message; returns its MessageId and, on FIFO topics, its
/// SequenceNumber.
async fn publish_one(
    service: &SnsService,
    topic: &Topic,
    params: &Params,
) -> Result<(String, Option<String>), SnsError> {
    let text = params.string("Message")?.unwrap_or("");
    if text.is_empty() {
        return Err(SnsError::invalid("Empty message"));
    }
    let subject = params.string("Subject")?;
    if let Some(subject) = subject {
        let printable = subject
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control());
        if subject.is_empty() || subject.len() > SUBJECT_MAX || !printable {
            return Err(SnsError::invalid("Subject"));
        }
    }
    let (body, structure) = match params.string("MessageStructure")? {
        None => (text.to_owned(), None),
        Some("json") => per_protocol(text)?,
        Some(_) => return Err(SnsError::invalid("MessageStructure")),
    };
    let attributes =
        mqbridge_sqs::attributes::parse(&mqbridge_sqs::params::Params(params.0.clone()))
            .map_err(|e| SnsError::new(ErrorKind::InvalidParameterValue, e.message))?;
    let size = text.len() + attributes.iter().map(MessageAttribute::size).sum::<usize>();
    if size > MESSAGE_SIZE_MAX {
        return Err(SnsError::invalid("Message too long"));
    }
    let fifo = fifo_fields(topic, params, &body)?;
    let message_id = new_uuid();
    let now = now_ms();
    let mut message =
        mqbridge_sqs::translate::outgoing(&topic.name, &body, &attributes, &message_id, now);
    // The topic's name as the routing key: a fanout exchange ignores it, and an exchange bound
    // on to `amq.topic` delivers to MQTT subscribers of the topic of that name.
    message.exchange.clone_from(&topic.name);
    message.routing_key.clone_from(&topic.name);
    let set = |message: &mut Message, name: &str, value: String| {
        message
            .properties
            .headers
            .insert(name, HeaderValue::String(value));
    };
    set(
        &mut message,
        headers::TOPIC_ARN,
        SnsService::topic_arn(&topic.name),
    );
    set(&mut message, headers::TIMESTAMP, iso_timestamp(now));
    if let Some(subject) = subject {
        set(&mut message, headers::SUBJECT, subject.to_owned());
    }
    if let Some(structure) = structure {
        set(&mut message, headers::STRUCTURE, structure);
    }
    let Some((group, deduplication)) = fifo else {
        route(service, &topic.name, message).await?;
        return Ok((message_id, None));
    };
    // A duplicate within five minutes gets the first publish's answer and is not published.
    let sequence = match service
        .fifo
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .admit(&topic.name, &deduplication, &message_id)
    {
        Admitted::New(sequence) => sequence,
        Admitted::Duplicate(id, sequence) => return Ok((id, Some(sequence))),
    };
    set(&mut message, MESSAGE_GROUP_HEADER, group);
    set(&mut message, DEDUPLICATION_HEADER, deduplication);
    set(&mut message, SEQUENCE_HEADER, sequence.clone());
    route(service, &topic.name, message).await?;
    Ok((message_id, Some(sequence)))
}

/// MessageStructure=json: the body is the `default` message; the whole object travels in a
/// header for the subscribers of each protocol to pick theirs.
fn per_protocol(text: &str) -> Result<(String, Option<String>), SnsError> {
    let parsed: Value = serde_json::from_str(text)
        .map_err(|_| SnsError::invalid("Message Structure - JSON message body failed to parse"))?;
    let default = parsed
        .get("default")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            SnsError::invalid("Message Structure - No default entry in JSON message body")
        })?;
    Ok((default.to_owned(), Some(text.to_owned())))
}

/// The group and deduplication id of a publish to a FIFO topic; `None` on standard topics,
/// which refuse both.
fn fifo_fields(
    topic: &Topic,
    params: &Params,
    body: &str,
) -> Result<Option<(String, String)>, SnsError> {
    let group = params.string("MessageGroupId")?;
    let deduplication = params.string("MessageDeduplicationId")?;
    if !topic.is_fifo() {
        if deduplication.is_some() {
            return Err(SnsError::invalid(
                "MessageDeduplicationId Reason: The request includes MessageDeduplicationId \
                 parameter that is not valid for this topic type",
            ));
        }
        if group.is_some() {
            return Err(SnsError::invalid(
                "MessageGroupId Reason: The request includes MessageGroupId parameter that is \
                 not valid for this topic type",
            ));
        }
        return Ok(None);
    }
    let group = group.ok_or_else(|| {
        SnsError::invalid("The MessageGroupId parameter is required for FIFO topics")
    })?;
    let deduplication = match deduplication {
        Some(id) => id.to_owned(),
        None if topic.flag("ContentBasedDeduplication") => {
            mqbridge_sqs::hex::encode(&Sha256::digest(body.as_bytes()))
        }
        None => {
            return Err(SnsError::invalid(
                "The topic should either have ContentBasedDeduplication enabled or \
                 MessageDeduplicationId provided explicitly",
            ));
        }
    };
    Ok(Some((group.to_owned(), deduplication)))
}

/// Routes through the topic's exchange and waits until every queue reached has the message.
async fn route(service: &SnsService, topic: &str, message: Message) -> Result<(), SnsError> {
    let mut queues = Vec::new();
    service
        .vhost
        .route(
            topic,
            &message.routing_key,
            &message.properties.headers,
            &mut queues,
        )
        .map_err(|_| SnsError::no_topic())?;
    let sink = ConfirmSink::new();
    let ticket = sink.tickets(0, queues.len());
    let message = Arc::new(message);
    for queue in &queues {
        queue.publish(Arc::clone(&message), ticket.clone()).await;
    }
    let mut done = Vec::new();
    let mut shutdown = service.shutdown.clone();
    loop {
        sink.drain(&mut done);
        if let Some((_, accepted)) = done.first() {
            return if *accepted {
                Ok(())
            } else {
                Err(SnsError::internal("The message could not be stored."))
            };
        }
        tokio::select! {
            () = sink.ready() => {}
            _ = shutdown.changed() => return Err(SnsError::internal("The broker is shutting down.")),
        }
    }
}

pub(super) async fn publish_batch(
    service: &SnsService,
    params: &Params,
) -> Result<Value, SnsError> {
    service.admit_publish()?;
    let topic = service.topic(params.required("TopicArn")?)?;
    let entries = params.entries("PublishBatchRequestEntries")?;
    check_batch(&entries)?;
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for entry in &entries {
        let id = entry.required("Id")?;
        match publish_one(service, &topic, entry).await {
            Ok((message_id, sequence)) => {
                let mut item = json!({"Id": id, "MessageId": message_id});
                if let Some(sequence) = sequence {
                    item["SequenceNumber"] = Value::String(sequence);
                }
                successful.push(item);
            }
            Err(error) if error.kind == ErrorKind::Internal => return Err(error),
            Err(error) => failed.push(json!({
                "Id": id,
                "Code": error.kind.code(),
                "Message": error.message,
                "SenderFault": true,
            })),
        }
    }
    Ok(json!({"Successful": successful, "Failed": failed}))
}

fn check_batch(entries: &[Params]) -> Result<(), SnsError> {
    if entries.is_empty() {
        return Err(SnsError::new(
            ErrorKind::EmptyBatchRequest,
            "The batch request doesn't contain any entries",
        ));
    }
    if entries.len() > BATCH_MAX {
        return Err(SnsError::new(
            ErrorKind::TooManyEntriesInBatchRequest,
            format!("The batch request contains more entries than permissible ({BATCH_MAX})"),
        ));
    }
    let mut ids = Vec::with_capacity(entries.len());
    let mut total = 0;
    for entry in entries {
        let id = entry.required("Id")?;
        let valid = !id.is_empty()
            && id.len() <= ENTRY_ID_MAX
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(SnsError::new(
                ErrorKind::InvalidBatchEntryId,
                "The Id of a batch entry in a batch request doesn't abide by the specification",
            ));
        }
        if ids.contains(&id) {
            return Err(SnsError::new(
                ErrorKind::BatchEntryIdsNotDistinct,
                "Two or more batch entries in the request have the same Id",
            ));
        }
        ids.push(id);
        total += entry.string("Message")?.map_or(0, str::len);
    }
    if total > MESSAGE_SIZE_MAX {
        return Err(SnsError::new(
            ErrorKind::BatchRequestTooLong,
            "The length of all the messages put together is more than the limit",
        ));
    }
    Ok(())
}
