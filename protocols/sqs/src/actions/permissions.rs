//! AddPermission and RemovePermission: statements in the queue's `Policy` attribute (see
//! `crate::policy`). The broker records the policy and returns it from GetQueueAttributes; it
//! does not enforce it.

use serde_json::{Value, json};

use crate::error::SqsError;
use crate::params::Params;
use crate::policy::{self, Grant};
use crate::service::{SqsService, now_ms};

/// The queue attribute the statements live in.
const POLICY: &str = "Policy";

pub fn add_permission(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let label = params.required("Label")?;
    let account_ids = params.strings("AWSAccountIds")?;
    let actions = params.strings("Actions")?;
    let grant = Grant {
        label,
        account_ids: &account_ids,
        actions: &actions,
    };
    let arn = SqsService::queue_arn(&queue.name);
    service.registry.update(&queue.name, |meta| {
        let current = meta.attributes.get(POLICY).map(String::as_str);
        let updated = policy::add(current, &arn, &grant)?;
        meta.attributes.insert(POLICY.to_owned(), updated);
        meta.modified_secs = now_ms() / 1000;
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn remove_permission(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let label = params.required("Label")?;
    service.registry.update(&queue.name, |meta| {
        match policy::remove(meta.attributes.get(POLICY).map(String::as_str), label)? {
            Some(updated) => meta.attributes.insert(POLICY.to_owned(), updated),
            None => meta.attributes.remove(POLICY),
        };
        meta.modified_secs = now_ms() / 1000;
        Ok(())
    })?;
    Ok(json!({}))
}
