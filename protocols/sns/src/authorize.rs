//! Which of the user's permissions each action needs, checked before the action runs. An SNS
//! topic is an exchange, so RabbitMQ's rules apply as they stand: changing a topic needs
//! configure on it, publishing write, and subscribing (a binding from the topic) read on it and
//! write on an SQS endpoint's queue.
//!
//! A parameter that is missing or malformed is not checked here: the action refuses it with
//! its own error next.

use mqbridge_broker_api::{BrokerError, Destination, Permission, User};

use crate::error::{ErrorKind, SnsError};
use crate::params::Params;
use crate::service::SnsService;

/// `AuthorizationError` unless `user` may open the vhost and do `action`.
pub fn check(
    service: &SnsService,
    user: &str,
    action: &str,
    params: &Params,
) -> Result<(), SnsError> {
    let denied =
        |error: BrokerError| SnsError::new(ErrorKind::AuthorizationError, error.to_string());
    let user = User {
        name: user.to_owned(),
    };
    let vhost = service
        .users
        .vhost(service.vhost.name(), &user)
        .map_err(denied)?;
    for (permission, object) in needs(action, params) {
        vhost.authorize(permission, &object).map_err(denied)?;
    }
    Ok(())
}

fn needs(action: &str, params: &Params) -> Vec<(Permission, Destination)> {
    let last = |name: &str| {
        params
            .string(name)
            .ok()
            .flatten()
            .and_then(|arn| arn.rsplit(':').next())
            .map(str::to_owned)
    };
    let topic = |permission: Permission, name: Option<String>| {
        name.map(|name| (permission, Destination::Exchange(name)))
    };
    let needs = match action {
        "CreateTopic" => {
            let name = params.string("Name").ok().flatten().map(str::to_owned);
            vec![topic(Permission::Configure, name)]
        }
        "DeleteTopic" | "SetTopicAttributes" => {
            vec![topic(Permission::Configure, last("TopicArn"))]
        }
        "TagResource" | "UntagResource" => vec![topic(Permission::Configure, last("ResourceArn"))],
        "Publish" => {
            let arn = last("TopicArn").or_else(|| last("TargetArn"));
            vec![topic(Permission::Write, arn)]
        }
        "PublishBatch" => vec![topic(Permission::Write, last("TopicArn"))],
        "Subscribe" => {
            let sqs = params.string("Protocol").ok().flatten() == Some("sqs");
            let queue = last("Endpoint")
                .filter(|_| sqs)
                .map(|name| (Permission::Write, Destination::Queue(name)));
            vec![topic(Permission::Read, last("TopicArn")), queue]
        }
        _ => Vec::new(),
    };
    needs.into_iter().flatten().collect()
}
