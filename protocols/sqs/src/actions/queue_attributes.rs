//! GetQueueAttributes and SetQueueAttributes.

use serde_json::{Map, Value, json};

use crate::error::{ErrorKind, SqsError};
use crate::params::Params;
use crate::registry::{self, COMPUTED};
use crate::service::{SqsService, now_ms};

/// Attributes whose empty value removes them (AWS: "To remove the redrive policy, set it to an
/// empty string").
const REMOVABLE: &[&str] = &[
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "Policy",
    "KmsMasterKeyId",
];

pub fn get(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let wanted = params.strings("AttributeNames")?;
    let all = wanted.iter().any(|n| n == "All");
    for name in &wanted {
        let known =
            name == "All" || COMPUTED.contains(&name.as_str()) || registry::is_settable(name);
        if !known {
            return Err(SqsError::new(
                ErrorKind::InvalidAttributeName,
                format!("Unknown Attribute {name}."),
            ));
        }
    }
    let include = |name: &str| all || wanted.iter().any(|n| n == name);
    let mut out = Map::new();
    for (name, value) in &queue.meta.attributes {
        if include(name) {
            out.insert(name.clone(), Value::String(value.clone()));
        }
    }
    let computed = [
        (
            "ApproximateNumberOfMessages",
            queue.handle.message_count().to_string(),
        ),
        (
            "ApproximateNumberOfMessagesNotVisible",
            service.leases.count(&queue.name).to_string(),
        ),
        (
            "ApproximateNumberOfMessagesDelayed",
            service
                .delays
                .count(&service.mover_context(), &queue.name)
                .to_string(),
        ),
        ("CreatedTimestamp", queue.meta.created_secs.to_string()),
        (
            "LastModifiedTimestamp",
            queue.meta.modified_secs.to_string(),
        ),
        ("QueueArn", SqsService::queue_arn(&queue.name)),
    ];
    for (name, value) in computed {
        if include(name) {
            out.insert(name.to_owned(), Value::String(value));
        }
    }
    if out.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Attributes": out}))
}

pub fn set(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let requested = params.string_map("Attributes")?;
    let (removed, kept): (Vec<_>, Vec<_>) = requested
        .into_iter()
        .partition(|(name, value)| value.is_empty() && REMOVABLE.contains(&name.as_str()));
    let attributes = registry::validate(&kept, queue.meta.is_fifo())?;
    service.registry.update(&queue.name, |meta| {
        for (name, _) in removed {
            meta.attributes.remove(&name);
        }
        meta.attributes.extend(attributes);
        meta.modified_secs = now_ms() / 1000;
        Ok(())
    })?;
    Ok(json!({}))
}
