//! CreateQueue, GetQueueUrl, ListQueues, DeleteQueue, PurgeQueue, ListDeadLetterSourceQueues.
//!
//! An SQS queue `q` is the core's durable queue `q` in the SQS vhost, so AMQP, MQTT and STOMP
//! clients see the same messages. SQS's own metadata lives in the registry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use mqbridge_broker_api::{BrokerError, HeaderValue, Headers, QueueSpec, Settlement};
use serde_json::{Value, json};

use crate::error::{ErrorKind, SqsError};
use crate::fifo;
use crate::params::Params;
use crate::registry::{self, QueueMeta};
use crate::service::{Context, SqsService, now_ms};

/// AWS: "You can associate up to 50 tags with a queue".
pub const TAGS_MAX: usize = 50;
/// ListQueues answers at most this many URLs (AWS's limit, with or without MaxResults).
const LIST_MAX: i64 = 1000;

pub async fn create_queue(
    service: &SqsService,
    params: &Params,
    context: &Context,
) -> Result<Value, SqsError> {
    let name = params.required("QueueName")?;
    let (fifo, requested) = queue_type(params.string_map("Attributes")?)?;
    if !registry::valid_queue_name(name, fifo) {
        return Err(SqsError::invalid(match fifo {
            true => {
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or \
                 underscores, must end with .fifo suffix and be 1 to 80 in length."
            }
            false => {
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in \
                 length"
            }
        }));
    }
    // The one SQS name a holding queue can have (that of a standard queue `fifo`).
    if name.starts_with(crate::delay::HOLDING_PREFIX) {
        return Err(SqsError::invalid(format!(
            "Queue names starting with {} are reserved by this broker.",
            crate::delay::HOLDING_PREFIX
        )));
    }
    let attributes = registry::validate(&requested, fifo)?;
    let tags = params.string_map("tags")?;
    if tags.len() > TAGS_MAX {
        return Err(SqsError::invalid(format!(
            "Too many tags; at most {TAGS_MAX}."
        )));
    }
    declare(service, name, fifo)?;
    let url = service.queue_url(context, name);
    let mut meta = QueueMeta::new(now_ms() / 1000, fifo);
    meta.attributes.extend(attributes.iter().cloned());
    meta.tags.extend(tags);
    if let Some(existing) = service.registry.insert(name, meta) {
        let differs = attributes
            .iter()
            .find(|(k, v)| existing.attributes.get(k) != Some(v));
        if let Some((k, _)) = differs {
            return Err(SqsError::new(
                ErrorKind::QueueNameExists,
                format!(
                    "A queue already exists with the same name and a different value for attribute {k}"
                ),
            ));
        }
    }
    Ok(json!({"QueueUrl": url}))
}

/// Takes `FifoQueue` out of CreateQueue's attributes: whether the queue is FIFO, and the rest.
fn queue_type(
    mut attributes: Vec<(String, String)>,
) -> Result<(bool, Vec<(String, String)>), SqsError> {
    let Some(index) = attributes
        .iter()
        .position(|(name, _)| name == registry::FIFO_QUEUE)
    else {
        return Ok((false, attributes));
    };
    let (_, value) = attributes.remove(index);
    match value.as_str() {
        "true" => Ok((true, attributes)),
        "false" => Ok((false, attributes)),
        _ => Err(SqsError::new(
            ErrorKind::InvalidAttributeValue,
            format!("Invalid value for the parameter {}.", registry::FIFO_QUEUE),
        )),
    }
}

/// Declares the core queue: durable, so that persistent messages survive a restart; a FIFO
/// queue with the core's message groups (`crate::fifo`). A queue another protocol declared with
/// other settings is used as it is.
fn declare(service: &SqsService, name: &str, fifo: bool) -> Result<(), SqsError> {
    let mut arguments = Headers::new();
    if fifo {
        arguments.insert(fifo::GROUPS_ARGUMENT, HeaderValue::Bool(true));
    }
    let spec = QueueSpec {
        name: name.to_owned(),
        durable: true,
        exclusive: false,
        auto_delete: false,
        arguments,
    };
    match service
        .vhost
        .declare_queue(spec.clone(), false, service.connection)
    {
        Ok(_) => Ok(()),
        Err(BrokerError::PreconditionFailed(_)) => {
            service
                .vhost
                .declare_queue(spec, true, service.connection)?;
            Ok(())
        }
        Err(other) => Err(other.into()),
    }
}

pub fn get_queue_url(
    service: &SqsService,
    params: &Params,
    context: &Context,
) -> Result<Value, SqsError> {
    let queue = service.resolve_name(params.required("QueueName")?)?;
    Ok(json!({"QueueUrl": service.queue_url(context, &queue.name)}))
}

pub fn list_queues(
    service: &SqsService,
    params: &Params,
    context: &Context,
) -> Result<Value, SqsError> {
    let prefix = params.string("QueueNamePrefix")?.unwrap_or("");
    let limit = params.integer("MaxResults", 1..=LIST_MAX)?;
    let after = match params.string("NextToken")? {
        None => None,
        Some(token) => Some(
            BASE64
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SqsError::invalid("Invalid NextToken value."))?,
        ),
    };
    let names: Vec<String> = service
        .registry
        .lock()
        .keys()
        .filter(|n| n.starts_with(prefix) && after.as_ref().is_none_or(|a| *n > a))
        .cloned()
        .collect();
    // Queues deleted through another protocol are dropped here (resolve forgets them).
    let live: Vec<String> = names
        .into_iter()
        .filter(|n| service.resolve_name(n).is_ok())
        .collect();
    let take = usize::try_from(limit.unwrap_or(LIST_MAX)).unwrap_or(usize::MAX);
    let page: Vec<Value> = live
        .iter()
        .take(take)
        .map(|n| Value::String(service.queue_url(context, n)))
        .collect();
    let mut result = json!({"QueueUrls": page});
    let more = limit.is_some() && live.len() > take;
    if more && let (Some(last), Some(map)) = (live.get(take - 1), result.as_object_mut()) {
        map.insert("NextToken".into(), Value::String(BASE64.encode(last)));
    }
    Ok(result)
}

pub async fn delete_queue(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    match service
        .vhost
        .delete_queue(&queue.name, false, false, service.connection)
        .await
    {
        Ok(_) | Err(BrokerError::NotFound(_)) => {}
        Err(other) => return Err(other.into()),
    }
    service
        .delays
        .drop_queue(&service.mover_context(), &queue.name)
        .await;
    service.registry.remove(&queue.name);
    service.leases.forget_queue(&queue.name);
    service.deduplication.forget_queue(&queue.name);
    Ok(json!({}))
}

pub async fn purge_queue(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    queue.handle.purge().await?;
    for (tag, lease) in service.leases.take_queue(&queue.name) {
        service.forget_first_receive(&lease.message_id);
        lease
            .queue
            .settle(lease.owner, vec![tag], Settlement::Ack)
            .await;
    }
    Ok(json!({}))
}

pub fn dead_letter_sources(
    service: &SqsService,
    params: &Params,
    context: &Context,
) -> Result<Value, SqsError> {
    let target = service.resolve(params)?;
    let sources: Vec<Value> = service
        .registry
        .lock()
        .iter()
        .filter(|(_, meta)| {
            meta.attributes
                .get("RedrivePolicy")
                .and_then(|p| registry::redrive_policy(p))
                .is_some_and(|(dlq, _)| dlq == target.name)
        })
        .map(|(name, _)| Value::String(service.queue_url(context, name)))
        .collect();
    Ok(json!({"queueUrls": sources}))
}
