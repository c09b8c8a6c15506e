//! TagQueue, UntagQueue and ListQueueTags: cost-allocation tags, kept with the queue's metadata.

use serde_json::{Value, json};

use crate::actions::queues::TAGS_MAX;
use crate::error::SqsError;
use crate::params::Params;
use crate::service::SqsService;

pub fn tag_queue(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let tags = params.string_map("Tags")?;
    let mut queues = service.registry.lock();
    let meta = queues.get_mut(&queue.name).ok_or_else(SqsError::no_queue)?;
    let mut updated = meta.tags.clone();
    updated.extend(tags);
    if updated.len() > TAGS_MAX {
        return Err(SqsError::invalid(format!(
            "Too many tags; at most {TAGS_MAX}."
        )));
    }
    meta.tags = updated;
    Ok(json!({}))
}

pub fn untag_queue(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let keys = params.strings("TagKeys")?;
    let mut queues = service.registry.lock();
    let meta = queues.get_mut(&queue.name).ok_or_else(SqsError::no_queue)?;
    for key in keys {
        meta.tags.remove(&key);
    }
    Ok(json!({}))
}

pub fn list_queue_tags(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    if queue.meta.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Tags": queue.meta.tags}))
}
