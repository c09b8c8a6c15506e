//! One module per group of SNS actions: read the parameters, act on the registry and the core,
//! answer in the JSON protocol's shape.

mod publish;
mod subscriptions;
mod tags;
mod topics;

pub(crate) use publish::Fifo;

use std::sync::Arc;

use serde_json::Value;

use crate::error::{ErrorKind, SnsError};
use crate::params::Params;
use crate::service::{Context, SnsService};

pub(crate) async fn dispatch(
    service: &Arc<SnsService>,
    action: &str,
    params: &Params,
    context: &Context,
) -> Result<Value, SnsError> {
    match action {
        "CreateTopic" => topics::create(service, params),
        "DeleteTopic" => topics::delete(service, params).await,
        "ListTopics" => topics::list(service, params),
        "GetTopicAttributes" => topics::get_attributes(service, params),
        "SetTopicAttributes" => topics::set_attributes(service, params),
        "Subscribe" => subscriptions::subscribe(service, params, context).await,
        "ConfirmSubscription" => subscriptions::confirm(service, params).await,
        "Unsubscribe" => subscriptions::unsubscribe(service, params).await,
        "ListSubscriptions" => subscriptions::list(service, params, None),
        "ListSubscriptionsByTopic" => {
            let topic = service.topic(params.required("TopicArn")?)?;
            subscriptions::list(service, params, Some(&topic.name))
        }
        "GetSubscriptionAttributes" => subscriptions::get_attributes(service, params),
        "SetSubscriptionAttributes" => subscriptions::set_attributes(service, params),
        "Publish" => publish::publish(service, params).await,
        "PublishBatch" => publish::publish_batch(service, params).await,
        "TagResource" => tags::tag(service, params),
        "UntagResource" => tags::untag(service, params),
        "ListTagsForResource" => tags::list(service, params),
        other => Err(SnsError::new(
            ErrorKind::InvalidAction,
            format!("The action {other} is not valid for this endpoint."),
        )),
    }
}

/// A page of `items` from the position `NextToken` names (an opaque index), at most `page`
/// long, and the token of the next page.
pub(crate) fn page<T>(
    items: Vec<T>,
    params: &Params,
    page: usize,
) -> Result<(Vec<T>, Option<String>), SnsError> {
    let start = match params.string("NextToken")? {
        None | Some("") => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| SnsError::invalid("NextToken"))?,
    };
    let total = items.len();
    let chosen: Vec<T> = items.into_iter().skip(start).take(page).collect();
    let next = (start + chosen.len() < total).then(|| (start + chosen.len()).to_string());
    Ok((chosen, next))
}
