//! Which of the user's permissions each action needs, checked before the action runs, by
//! RabbitMQ's rules as SQS's operations map onto them (ARCHITECTURE.md, "SQS on the core"):
//! SQS names queues directly, so every check is on the queue.
//!
//! A parameter that is missing or malformed is not checked here: the action refuses it with
//! its own error next.

use mqbridge_broker_api::{Destination, Permission, User};

use crate::error::SqsError;
use crate::params::Params;
use crate::service::{Context, SqsService};

/// `AccessDenied` unless the request's user may open the vhost and do `action`.
pub fn check(
    service: &SqsService,
    action: &str,
    params: &Params,
    context: &Context,
) -> Result<(), SqsError> {
    let user = User {
        name: context.user.clone(),
    };
    let vhost = service.users.vhost(service.vhost.name(), &user)?;
    for (permission, queue) in needs(action, params) {
        vhost.authorize(permission, &Destination::Queue(queue))?;
    }
    Ok(())
}

/// The permissions `action` needs, each on a queue. Reading a queue's URL, attributes or tags
/// and listing need only access to the vhost, as RabbitMQ's listings do.
fn needs(action: &str, params: &Params) -> Vec<(Permission, String)> {
    let url = || {
        params
            .string("QueueUrl")
            .ok()
            .flatten()
            .map(crate::service::queue_name_of_url)
    };
    let arn = |name: &str| {
        params
            .string(name)
            .ok()
            .flatten()
            .and_then(|arn| arn.rsplit(':').next())
            .map(str::to_owned)
    };
    let named = |permission: Permission, queue: Option<String>| {
        queue.map(|queue| (permission, queue)).into_iter().collect()
    };
    match action {
        "CreateQueue" => {
            let name = params.string("QueueName").ok().flatten().map(str::to_owned);
            named(Permission::Configure, name)
        }
        "DeleteQueue" | "SetQueueAttributes" | "TagQueue" | "UntagQueue" | "AddPermission"
        | "RemovePermission" => named(Permission::Configure, url()),
        "SendMessage" | "SendMessageBatch" => named(Permission::Write, url()),
        "ReceiveMessage"
        | "DeleteMessage"
        | "DeleteMessageBatch"
        | "ChangeMessageVisibility"
        | "ChangeMessageVisibilityBatch"
        | "PurgeQueue" => named(Permission::Read, url()),
        "StartMessageMoveTask" => {
            let mut needs: Vec<_> = named(Permission::Read, arn("SourceArn"));
            needs.extend(named(Permission::Write, arn("DestinationArn")));
            needs
        }
        _ => Vec::new(),
    }
}
