//! SendMessage and SendMessageBatch.
//!
//! A message is answered 200 only once the core has confirmed it: for the durable queues SQS
//! declares, after the journal has synced it (every SQS message is persistent). On a FIFO queue
//! a send repeating a deduplication id of the last five minutes is answered as the first one
//! was and not enqueued (`crate::fifo`). While a resource alarm blocks publishers, sends are
//! answered `RequestThrottled` before anything else is looked at.

use std::sync::Arc;

use bytes::Bytes;
use mqbridge_broker_api::{HeaderValue, Message};
use serde_json::{Map, Value};

use crate::actions::batch;
use crate::attributes::{self, MessageAttribute};
use crate::error::{ErrorKind, SqsError};
use crate::fifo::{self, Deduplication, FirstSend};
use crate::params::Params;
use crate::service::{Context, ResolvedQueue, SqsService, new_uuid, now_ms};
use crate::{delay, translate};

/// AWS: a batch's bodies and attributes together are at most 1 MiB.
const BATCH_BYTES_MAX: usize = 1_048_576;

/// A validated message, ready to publish, and the answer that goes back once it is stored.
struct Prepared {
    message: Arc<Message>,
    result: Map<String, Value>,
    size: usize,
    /// Goes to the holding queue first (see `crate::delay`).
    delayed: bool,
    /// A FIFO send's claim on its deduplication id, given back if the message is not stored.
    claim: Option<(String, FirstSend)>,
    /// A FIFO send repeating one of the last five minutes: answered, not enqueued.
    duplicate: bool,
}

impl Prepared {
    fn release_claim(&self, service: &SqsService) {
        if let (Some((key, send)), false) = (&self.claim, self.duplicate) {
            service.deduplication.release(key, send);
        }
    }
}

pub async fn send_message(
    service: &SqsService,
    params: &mut Params,
    context: &Context,
) -> Result<Value, SqsError> {
    service.admit_send()?;
    let queue = service.resolve(params)?;
    let prepared = prepare(service, &queue, params, context)?;
    let accepted = publish_all(service, &queue, std::slice::from_ref(&prepared)).await;
    if !accepted.as_ref().is_ok_and(|a| a.first() == Some(&true)) {
        prepared.release_claim(service);
        accepted?;
        return Err(not_stored());
    }
    Ok(Value::Object(prepared.result))
}

pub async fn send_message_batch(
    service: &SqsService,
    params: &mut Params,
    context: &Context,
) -> Result<Value, SqsError> {
    service.admit_send()?;
    let entries = batch::entries(params)?;
    let queue = service.resolve(params)?;
    let mut failed = Vec::new();
    let mut ready = Vec::new();
    for (id, mut entry) in entries {
        match prepare(service, &queue, &mut entry, context) {
            Ok(prepared) => ready.push((id, prepared)),
            Err(error) => failed.push(batch::failure(&id, &error)),
        }
    }
    let total: usize = ready.iter().map(|(_, p)| p.size).sum();
    if total > BATCH_BYTES_MAX {
        ready.iter().for_each(|(_, p)| p.release_claim(service));
        return Err(SqsError::new(
            ErrorKind::BatchRequestTooLong,
            format!(
                "Batch requests cannot be longer than {BATCH_BYTES_MAX} bytes. You have sent {total} bytes."
            ),
        ));
    }
    let prepared: Vec<&Prepared> = ready.iter().map(|(_, p)| p).collect();
    let accepted = match publish_all(service, &queue, &prepared).await {
        Ok(accepted) => accepted,
        Err(error) => {
            prepared.iter().for_each(|p| p.release_claim(service));
            return Err(error);
        }
    };
    let mut successful = Vec::new();
    for ((id, prepared), stored) in ready.into_iter().zip(accepted) {
        if stored {
            let mut result = prepared.result;
            result.insert("Id".into(), Value::String(id));
            successful.push(Value::Object(result));
        } else {
            prepared.release_claim(service);
            failed.push(batch::failure(&id, &not_stored()));
        }
    }
    Ok(batch::result(successful, failed))
}

/// Publishes each message to its queue or, if delayed, to the holding queue; returns whether
/// each was stored, in order.
async fn publish_all<P: std::borrow::Borrow<Prepared>>(
    service: &SqsService,
    queue: &ResolvedQueue,
    prepared: &[P],
) -> Result<Vec<bool>, SqsError> {
    // Duplicates are not published, and count as stored: their first send was.
    let (delayed, now): (Vec<_>, Vec<_>) = prepared
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.borrow().duplicate)
        .partition(|(_, p)| p.borrow().delayed);
    let mut accepted: Vec<bool> = prepared.iter().map(|p| p.borrow().duplicate).collect();
    for (group, target) in [(now, None), (delayed, Some(()))] {
        if group.is_empty() {
            continue;
        }
        let handle = match target {
            None => Arc::clone(&queue.handle),
            Some(()) => {
                let context = service.mover_context();
                service.delays.holding(&context, &queue.name).await?
            }
        };
        let messages = group
            .iter()
            .map(|(_, p)| Arc::clone(&p.borrow().message))
            .collect();
        let stored = service.publish_confirmed(&handle, messages).await?;
        for ((index, _), ok) in group.into_iter().zip(stored) {
            if let Some(slot) = accepted.get_mut(index) {
                *slot = ok;
            }
        }
    }
    Ok(accepted)
}

fn not_stored() -> SqsError {
    SqsError::new(ErrorKind::InternalError, "The message could not be stored.")
}

/// Validates one message (of SendMessage, or one batch entry) and builds it. On a FIFO queue
/// this claims its deduplication id, so it runs in the order the messages were sent.
fn prepare(
    service: &SqsService,
    queue: &ResolvedQueue,
    params: &mut Params,
    context: &Context,
) -> Result<Prepared, SqsError> {
    let body = body(params)?;
    let Grouping {
        group,
        deduplication_id,
    } = grouping(queue, params, &body)?;
    let attributes = attributes::parse(params)?;
    let size = body.len() + attributes.iter().map(MessageAttribute::size).sum::<usize>();
    let size_max = usize::try_from(queue.meta.integer("MaximumMessageSize")).unwrap_or(0);
    if size > size_max {
        return Err(SqsError::invalid(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {size_max} bytes."
        )));
    }
    let delay = params
        .integer("DelaySeconds", 0..=900)?
        .unwrap_or_else(|| queue.meta.integer("DelaySeconds"));
    let message_id = new_uuid();
    let now = now_ms();
    let digest = attributes::body_digest(body.as_bytes());
    let body = Bytes::from(body);
    let mut message = translate::outgoing_body(
        &queue.name,
        body,
        Some(digest),
        &attributes,
        &message_id,
        now,
    );
    message.properties.user_id.clone_from(&context.sender);
    // MessageRetentionPeriod as the core's per-message TTL: an unreceived message older than
    // the retention period is dropped (or dead-lettered by an AMQP dead-letter exchange).
    let retention_secs = u64::try_from(queue.meta.integer("MessageRetentionPeriod")).unwrap_or(0);
    message.properties.expiration_ms = Some(retention_secs.saturating_mul(1000));
    if let Some(group) = group {
        let value = HeaderValue::String(group.into());
        message
            .properties
            .headers
            .insert(fifo::MESSAGE_GROUP_HEADER, value);
    }
    let (claim, first) = match deduplication_id {
        Some(id) => deduplicate(service, queue, &mut message, group, id),
        None => (None, None),
    };
    let delayed = delay > 0;
    if delayed {
        let delay_ms = u64::try_from(delay).unwrap_or(0) * 1000;
        delay::hold(&mut message, &queue.name, now + delay_ms);
    }
    // A duplicate is answered with the first send's id and sequence number.
    let answered = first.as_ref().or(claim.as_ref().map(|(_, send)| send));
    let mut result = Map::new();
    let answered_id = answered.map_or(message_id, |send| send.message_id.clone());
    result.insert("MessageId".into(), Value::String(answered_id));
    if let Some(send) = answered {
        let sequence = Value::String(send.sequence_number.clone());
        result.insert("SequenceNumber".into(), sequence);
    }
    let md5_of_body = crate::hex::encode(&digest);
    result.insert("MD5OfMessageBody".into(), Value::String(md5_of_body));
    if let Some(md5) = attributes::md5_of_attributes(&attributes) {
        result.insert("MD5OfMessageAttributes".into(), Value::String(md5));
    }
    Ok(Prepared {
        message: Arc::new(message),
        result,
        size,
        delayed,
        duplicate: first.is_some(),
        claim,
    })
}

/// The message body, checked against SQS's character rules, and moved out of `params`: the
/// message then owns the text the request parsed, without a copy.
fn body(params: &mut Params) -> Result<String, SqsError> {
    let body = params.required("MessageBody")?;
    if body.is_empty() {
        return Err(SqsError::missing("MessageBody"));
    }
    if !translate::is_valid_text(body) {
        return Err(SqsError::new(
            ErrorKind::InvalidMessageContents,
            "Invalid binary character in the message body. Only characters allowed by the XML \
             1.0 specification may be sent.",
        ));
    }
    match params.0.remove("MessageBody") {
        Some(Value::String(body)) => Ok(body),
        _ => Err(SqsError::missing("MessageBody")),
    }
}

/// A send's group and deduplication id.
struct Grouping<'a> {
    group: Option<&'a str>,
    deduplication_id: Option<String>,
}

/// Checks the FIFO parameters against the queue's type: FIFO queues need a group and a
/// deduplication id (or content-based deduplication) and take no per-message delay; standard
/// queues take a group too (fair queues), but no deduplication id.
fn grouping<'a>(
    queue: &ResolvedQueue,
    params: &'a Params,
    body: &str,
) -> Result<Grouping<'a>, SqsError> {
    let fifo = queue.meta.is_fifo();
    let group = params.string("MessageGroupId")?;
    if let Some(group) = group {
        fifo::check_id("MessageGroupId", group)?;
    }
    let deduplication_id = params.string("MessageDeduplicationId")?;
    if fifo {
        if group.is_none() {
            return Err(SqsError::missing("MessageGroupId"));
        }
        if let Some(delay) = params.get("DelaySeconds") {
            let shown = delay
                .as_str()
                .map_or_else(|| delay.to_string(), str::to_owned);
            return Err(fifo::not_for_fifo("DelaySeconds", &shown));
        }
    } else if deduplication_id.is_some() {
        return Err(SqsError::invalid(
            "The request includes a parameter that is not valid for this queue type: \
             MessageDeduplicationId.",
        ));
    }
    let deduplication_id = match deduplication_id {
        Some(id) => Some(fifo::check_id("MessageDeduplicationId", id).map(|()| id.to_owned())?),
        None if fifo && queue.meta.flag("ContentBasedDeduplication") => {
            Some(fifo::content_id(body))
        }
        None if fifo => return Err(fifo::no_deduplication_id()),
        None => None,
    };
    Ok(Grouping {
        group,
        deduplication_id,
    })
}

/// Claims a FIFO message's deduplication id and stamps the message with it and its sequence
/// number. Returns the claim, and the first send's answer if this one is a duplicate.
fn deduplicate(
    service: &SqsService,
    queue: &ResolvedQueue,
    message: &mut Message,
    group: Option<&str>,
    id: String,
) -> (Option<(String, FirstSend)>, Option<FirstSend>) {
    let send = FirstSend {
        message_id: message.properties.message_id.clone().unwrap_or_default(),
        sequence_number: fifo::next_sequence_number(),
    };
    let scope = queue.meta.attributes.get("DeduplicationScope");
    let by_group = scope.is_some_and(|s| s == "messageGroup");
    let key = Deduplication::key(&queue.name, group.filter(|_| by_group), &id);
    let first = service.deduplication.claim(&key, &send);
    let headers = &mut message.properties.headers;
    headers.insert(fifo::DEDUPLICATION_HEADER, HeaderValue::String(id));
    let sequence = HeaderValue::String(send.sequence_number.clone());
    headers.insert(fifo::SEQUENCE_HEADER, sequence);
    (Some((key, send)), first)
}
