//! One module per group of actions: parse the parameters, call the core, map its errors.
//! Every action returns its result in the JSON protocol's shape (see `crate::render`).

mod batch;
mod move_tasks;
mod permissions;
mod queue_attributes;
mod queues;
mod receive;
mod send;
mod settle;
mod tags;

use serde_json::Value;

use crate::error::{ErrorKind, SqsError};
use crate::params::Params;
use crate::service::{Context, SqsService};

pub async fn dispatch(
    service: &SqsService,
    action: &str,
    params: &mut Params,
    context: &Context,
) -> Result<Value, SqsError> {
    match action {
        "CreateQueue" => queues::create_queue(service, params, context).await,
        "GetQueueUrl" => queues::get_queue_url(service, params, context),
        "ListQueues" => queues::list_queues(service, params, context),
        "DeleteQueue" => queues::delete_queue(service, params).await,
        "PurgeQueue" => queues::purge_queue(service, params).await,
        "ListDeadLetterSourceQueues" => queues::dead_letter_sources(service, params, context),
        "GetQueueAttributes" => queue_attributes::get(service, params),
        "SetQueueAttributes" => queue_attributes::set(service, params),
        "TagQueue" => tags::tag_queue(service, params),
        "UntagQueue" => tags::untag_queue(service, params),
        "ListQueueTags" => tags::list_queue_tags(service, params),
        "SendMessage" => send::send_message(service, params, context).await,
        "SendMessageBatch" => send::send_message_batch(service, params, context).await,
        "ReceiveMessage" => receive::receive_message(service, params).await,
        "DeleteMessage" => settle::delete_message(service, params).await,
        "DeleteMessageBatch" => settle::delete_message_batch(service, params).await,
        "ChangeMessageVisibility" => settle::change_visibility(service, params).await,
        "ChangeMessageVisibilityBatch" => settle::change_visibility_batch(service, params).await,
        "AddPermission" => permissions::add_permission(service, params),
        "RemovePermission" => permissions::remove_permission(service, params),
        "StartMessageMoveTask" => move_tasks::start(service, params),
        "CancelMessageMoveTask" => move_tasks::cancel(service, params),
        "ListMessageMoveTasks" => move_tasks::list(service, params),
        _ => Err(SqsError::new(
            ErrorKind::InvalidAction,
            format!("The action {action} is not valid for this endpoint."),
        )),
    }
}
