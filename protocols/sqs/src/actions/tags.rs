//! TagQueue, UntagQueue and ListQueueTags: cost-allocation tags, kept with the queue's metadata.

use serde_json::{Value, json};

use crate::actions::queues::TAGS_MAX;
use crate::error::SqsError;
use crate::params::Params;
use crate::service::SqsService;

pub fn tag_queue(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let tags = params.string_map("Tags")?;
    service.registry.update(&queue.name, |meta| {
        meta.tags.extend(tags);
        if meta.tags.len() > TAGS_MAX {
            return Err(SqsError::invalid(format!(
                "Too many tags; at most {TAGS_MAX}."
            )));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn untag_queue(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let keys = params.strings("TagKeys")?;
    service.registry.update(&queue.name, |meta| {
        for key in keys {
            meta.tags.remove(&key);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_queue_tags(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    if queue.meta.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Tags": queue.meta.tags}))
}
