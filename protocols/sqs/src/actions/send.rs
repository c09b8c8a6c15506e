//! SendMessage and SendMessageBatch.
//!
//! A message is answered 200 only once the core has confirmed it: for the durable queues SQS
//! declares, after the journal has synced it (every SQS message is persistent).

use std::sync::Arc;

use mqbridge_broker_api::Message;
use serde_json::{Map, Value};

use crate::actions::batch;
use crate::attributes::{self, MessageAttribute};
use crate::error::{ErrorKind, SqsError};
use crate::params::Params;
use crate::service::{ResolvedQueue, SqsService, new_uuid, now_ms};
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
}

pub async fn send_message(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let prepared = prepare(&queue, params)?;
    let accepted = publish_all(service, &queue, std::slice::from_ref(&prepared)).await?;
    if accepted.first() != Some(&true) {
        return Err(not_stored());
    }
    Ok(Value::Object(prepared.result))
}

pub async fn send_message_batch(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let entries = batch::entries(params)?;
    let queue = service.resolve(params)?;
    let mut failed = Vec::new();
    let mut ready = Vec::new();
    for (id, entry) in entries {
        match prepare(&queue, &entry) {
            Ok(prepared) => ready.push((id, prepared)),
            Err(error) => failed.push(batch::failure(&id, &error)),
        }
    }
    let total: usize = ready.iter().map(|(_, p)| p.size).sum();
    if total > BATCH_BYTES_MAX {
        return Err(SqsError::new(
            ErrorKind::BatchRequestTooLong,
            format!(
                "Batch requests cannot be longer than {BATCH_BYTES_MAX} bytes. You have sent {total} bytes."
            ),
        ));
    }
    let prepared: Vec<&Prepared> = ready.iter().map(|(_, p)| p).collect();
    let accepted = publish_all(service, &queue, &prepared).await?;
    let mut successful = Vec::new();
    for ((id, prepared), stored) in ready.into_iter().zip(accepted) {
        if stored {
            let mut result = prepared.result;
            result.insert("Id".into(), Value::String(id));
            successful.push(Value::Object(result));
        } else {
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
    let (delayed, now): (Vec<_>, Vec<_>) = prepared
        .iter()
        .enumerate()
        .partition(|(_, p)| p.borrow().delayed);
    let mut accepted = vec![false; prepared.len()];
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

/// Validates one message (of SendMessage, or one batch entry) and builds it.
fn prepare(queue: &ResolvedQueue, params: &Params) -> Result<Prepared, SqsError> {
    let body = params.required("MessageBody")?.to_owned();
    if body.is_empty() {
        return Err(SqsError::missing("MessageBody"));
    }
    if !translate::is_valid_text(&body) {
        return Err(SqsError::new(
            ErrorKind::InvalidMessageContents,
            "Invalid binary character in the message body. Only characters allowed by the XML \
             1.0 specification may be sent.",
        ));
    }
    if params.get("MessageDeduplicationId").is_some() {
        return Err(SqsError::invalid(
            "The request includes a parameter that is not valid for this queue type: \
             MessageDeduplicationId.",
        ));
    }
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
    let mut message = translate::outgoing(&queue.name, &body, &attributes, &message_id, now);
    // MessageRetentionPeriod as the core's per-message TTL: an unreceived message older than
    // the retention period is dropped (or dead-lettered by an AMQP dead-letter exchange).
    let retention_secs = u64::try_from(queue.meta.integer("MessageRetentionPeriod")).unwrap_or(0);
    message.properties.expiration_ms = Some(retention_secs.saturating_mul(1000));
    let delayed = delay > 0;
    if delayed {
        let delay_ms = u64::try_from(delay).unwrap_or(0) * 1000;
        delay::hold(&mut message, &queue.name, now + delay_ms);
    }
    let mut result = Map::new();
    result.insert("MessageId".into(), Value::String(message_id));
    result.insert(
        "MD5OfMessageBody".into(),
        Value::String(attributes::md5_of_body(&body)),
    );
    if let Some(md5) = attributes::md5_of_attributes(&attributes) {
        result.insert("MD5OfMessageAttributes".into(), Value::String(md5));
    }
    Ok(Prepared {
        message: Arc::new(message),
        result,
        size,
        delayed,
    })
}
