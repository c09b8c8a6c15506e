//! TagResource, UntagResource, ListTagsForResource (topics are the taggable resources).

use serde_json::{Value, json};

use crate::error::{ErrorKind, SnsError};
use crate::params::Params;
use crate::service::{SnsService, topic_name};

/// AWS's limit on tags per resource.
const TAGS_MAX: usize = 50;

/// The `Tags` list of `{Key, Value}`.
pub(super) fn parse(params: &Params) -> Result<Vec<(String, String)>, SnsError> {
    params
        .entries("Tags")?
        .iter()
        .map(|tag| {
            let key = tag.required("Key")?;
            if key.is_empty() || key.len() > 128 {
                return Err(SnsError::invalid("Tags"));
            }
            let value = tag.string("Value")?.unwrap_or("");
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

fn topic(service: &SnsService, params: &Params) -> Result<String, SnsError> {
    let name = topic_name(params.required("ResourceArn")?)?;
    if service.topics.get(name).is_none() {
        return Err(SnsError::new(
            ErrorKind::ResourceNotFound,
            "Resource does not exist",
        ));
    }
    Ok(name.to_owned())
}

pub(super) fn tag(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let name = topic(service, params)?;
    let tags = parse(params)?;
    let result = service.topics.update(&name, |topic| {
        let mut merged = topic.tags.clone();
        merged.extend(tags);
        if merged.len() > TAGS_MAX {
            return Err(SnsError::invalid(format!(
                "Tags: a topic can have at most {TAGS_MAX} tags"
            )));
        }
        topic.tags = merged;
        Ok(())
    });
    result.unwrap_or(Ok(()))?;
    Ok(json!({}))
}

pub(super) fn untag(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let name = topic(service, params)?;
    let keys = params.strings("TagKeys")?;
    service.topics.update(&name, |topic| {
        for key in &keys {
            topic.tags.remove(key);
        }
    });
    Ok(json!({}))
}

pub(super) fn list(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let name = topic(service, params)?;
    let tags: Vec<Value> = service
        .topics
        .get(&name)
        .map(|t| t.tags)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"Tags": tags}))
}
