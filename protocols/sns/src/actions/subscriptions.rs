//! Subscribe, ConfirmSubscription, Unsubscribe, ListSubscriptions(ByTopic),
//! Get/SetSubscriptionAttributes.
//!
//! A confirmed subscription is a durable queue of its own bound to the topic's exchange, and a
//! delivery task that empties it ([`crate::delivery`]). `sqs` subscriptions are confirmed at
//! once (same account, as on AWS); `http`/`https` ones wait for the endpoint to visit the
//! SubscribeURL of the SubscriptionConfirmation POSTed to it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqbridge_broker_api::{BindingSpec, Destination, Headers, QueueSpec};
use mqbridge_sqs::service::{new_uuid, now_ms};
use serde_json::{Map, Value, json};

use crate::envelope::{Confirmation, iso_timestamp};
use crate::error::{ErrorKind, SnsError};
use crate::filter::{FilterPolicy, Scope};
use crate::params::Params;
use crate::registry::Subscription;
use crate::service::{ACCOUNT_ID, Context, SnsService, topic_name};
use crate::signing::SignatureVersion;

const SETTABLE: &[&str] = &[
    "RawMessageDelivery",
    "FilterPolicy",
    "FilterPolicyScope",
    "RedrivePolicy",
    "DeliveryPolicy",
    "SubscriptionRoleArn",
];
const PAGE: usize = 100;
/// AWS's limit of filter policies per topic.
const FILTER_POLICIES_MAX: usize = 200;
const PENDING: &str = "PendingConfirmation";

pub(super) async fn subscribe(
    service: &Arc<SnsService>,
    params: &Params,
    context: &Context,
) -> Result<Value, SnsError> {
    let topic = service.topic(params.required("TopicArn")?)?;
    let protocol = params.required("Protocol")?;
    let endpoint = params.string("Endpoint")?.unwrap_or("");
    match protocol {
        "sqs" => check_queue_arn(endpoint)?,
        "http" | "https" => crate::http_client::check_endpoint(protocol, endpoint)
            .map_err(|m| SnsError::new(ErrorKind::InvalidParameter, m))?,
        other => {
            return Err(SnsError::invalid(format!(
                "Amazon SNS does not support this protocol string: {other}"
            )));
        }
    }
    // Checked together: a FilterPolicy is read in the scope given beside it.
    let attributes: std::collections::BTreeMap<String, String> =
        params.string_map("Attributes")?.into_iter().collect();
    for (name, value) in &attributes {
        check_attribute(service, &topic.name, None, name, value, &attributes)
            .map_err(|e| with_reason(e, "Attributes Reason: "))?;
    }
    let show_arn = params.boolean("ReturnSubscriptionArn")?.unwrap_or(false);
    let existing = service
        .subscriptions
        .values()
        .into_iter()
        .find(|s| s.topic == topic.name && s.protocol == protocol && s.endpoint == endpoint);
    if let Some(existing) = existing {
        if !attributes.is_empty() && attributes != existing.attributes {
            return Err(SnsError::invalid(
                "Attributes Reason: Subscription already exists with different attributes",
            ));
        }
        return Ok(json!({"SubscriptionArn": shown_arn(&existing, show_arn)}));
    }
    let sqs = protocol == "sqs";
    let subscription = Subscription {
        arn: format!("{}:{}", SnsService::topic_arn(&topic.name), new_uuid()),
        topic: topic.name.clone(),
        protocol: protocol.to_owned(),
        endpoint: endpoint.to_owned(),
        attributes,
        token: (!sqs).then(new_token),
        confirmed: sqs,
        host: context.host.clone(),
    };
    // Recorded first: the delivery task that activation starts reads it.
    service
        .subscriptions
        .insert_new(&subscription.arn, subscription.clone());
    if !sqs {
        tokio::spawn(send_confirmation(Arc::clone(service), subscription.clone()));
    } else if let Err(error) = activate(service, &subscription).await {
        service.subscriptions.remove(&subscription.arn);
        return Err(error);
    }
    Ok(json!({"SubscriptionArn": shown_arn(&subscription, show_arn)}))
}

fn shown_arn(subscription: &Subscription, show_arn: bool) -> String {
    if subscription.confirmed() || show_arn {
        subscription.arn.clone()
    } else {
        "pending confirmation".to_owned()
    }
}

fn check_queue_arn(endpoint: &str) -> Result<(), SnsError> {
    let parts: Vec<&str> = endpoint.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, _, name] if !name.is_empty() => Ok(()),
        _ => Err(SnsError::invalid("SQS endpoint ARN")),
    }
}

/// A confirmation token: 64 random bytes, hex (AWS's are long hex strings too).
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    let more: [u8; 32] = rand::random();
    let mut token = mqbridge_sqs::hex::encode(&bytes);
    token.push_str(&mqbridge_sqs::hex::encode(&more));
    token
}

fn with_reason(mut error: SnsError, reason: &str) -> SnsError {
    if let Some(rest) = error.message.strip_prefix("Invalid parameter: ") {
        error.message = format!("Invalid parameter: {reason}{rest}");
    }
    error
}

/// Checks one subscription attribute. `current` is the subscription being changed (None while
/// subscribing); `siblings` the attributes set in the same request.
fn check_attribute(
    service: &SnsService,
    topic: &str,
    current: Option<&Subscription>,
    name: &str,
    value: &str,
    siblings: &std::collections::BTreeMap<String, String>,
) -> Result<(), SnsError> {
    if !SETTABLE.contains(&name) {
        return Err(SnsError::invalid(format!("AttributeName: {name}")));
    }
    match name {
        "RawMessageDelivery"
            if !matches!(value.to_ascii_lowercase().as_str(), "true" | "false") =>
        {
            Err(SnsError::invalid(format!(
                "RawMessageDelivery: Invalid value [{value}]. Must be true or false."
            )))
        }
        "FilterPolicyScope" if Scope::parse(value).is_none() => Err(SnsError::invalid(format!(
            "FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody or \
             MessageAttributes"
        ))),
        // A new scope must suit the policy already set.
        "FilterPolicyScope" => match (
            Scope::parse(value),
            current.and_then(|c| c.attributes.get("FilterPolicy")),
        ) {
            (Some(scope), Some(policy)) => check_filter(service, topic, current, policy, scope),
            _ => Ok(()),
        },
        "FilterPolicy" => {
            let scope = siblings
                .get("FilterPolicyScope")
                .or_else(|| current.and_then(|c| c.attributes.get("FilterPolicyScope")))
                .and_then(|s| Scope::parse(s))
                .unwrap_or(Scope::MessageAttributes);
            check_filter(service, topic, current, value, scope)
        }
        "RedrivePolicy" => {
            let target = serde_json::from_str::<Value>(value)
                .ok()
                .and_then(|p| p.get("deadLetterTargetArn")?.as_str().map(str::to_owned));
            match target {
                Some(arn) if check_queue_arn(&arn).is_ok() => Ok(()),
                _ => Err(SnsError::invalid(
                    "RedrivePolicy: deadLetterTargetArn is invalid",
                )),
            }
        }
        "DeliveryPolicy" if serde_json::from_str::<Map<String, Value>>(value).is_err() => {
            Err(SnsError::invalid("DeliveryPolicy: failed to parse JSON."))
        }
        _ => Ok(()),
    }
}

fn check_filter(
    service: &SnsService,
    topic: &str,
    current: Option<&Subscription>,
    value: &str,
    scope: Scope,
) -> Result<(), SnsError> {
    if value.is_empty() {
        return Ok(());
    }
    if let Err(error) = FilterPolicy::parse(value, scope) {
        let kind = if error.limit_exceeded {
            ErrorKind::FilterPolicyLimitExceeded
        } else {
            ErrorKind::InvalidParameter
        };
        let message = if error.message.starts_with("Filter policy scope") {
            format!("Invalid parameter: {}", error.message)
        } else {
            format!("Invalid parameter: FilterPolicy: {}", error.message)
        };
        return Err(SnsError::new(kind, message));
    }
    let others = service
        .subscriptions
        .values()
        .into_iter()
        .filter(|s| s.topic == topic && current.is_none_or(|c| c.arn != s.arn))
        .filter(|s| {
            s.attributes
                .get("FilterPolicy")
                .is_some_and(|p| !p.is_empty())
        })
        .count();
    if others >= FILTER_POLICIES_MAX {
        return Err(SnsError::new(
            ErrorKind::FilterPolicyLimitExceeded,
            "Filter policy limit exceeded",
        ));
    }
    Ok(())
}

/// Makes a subscription live: its queue, the binding from the topic, its delivery task.
async fn activate(service: &Arc<SnsService>, subscription: &Subscription) -> Result<(), SnsError> {
    let queue = subscription.queue_name();
    let spec = QueueSpec {
        name: queue.clone(),
        durable: true,
        exclusive: false,
        auto_delete: false,
        arguments: Headers::new(),
    };
    service
        .vhost
        .declare_queue(spec, false, service.connection)?;
    let binding = BindingSpec {
        source: subscription.topic.clone(),
        destination: Destination::Queue(queue),
        routing_key: "#".to_owned(),
        arguments: Headers::new(),
    };
    if let Err(error) = service.vhost.bind(binding, service.connection) {
        // The queue is this subscription's alone: it goes with the refusal, freeing its slot.
        let _ = service
            .vhost
            .delete_queue(&subscription.queue_name(), false, false, service.connection)
            .await;
        return Err(error.into());
    }
    service.start_delivery(subscription);
    Ok(())
}

/// Ends a subscription: its task, its queue (and with it the binding), its record.
pub(super) async fn remove(service: &SnsService, arn: &str) -> bool {
    let Some(subscription) = service.subscriptions.remove(arn) else {
        return false;
    };
    service.stop_delivery(arn);
    if subscription.confirmed() {
        let queue = subscription.queue_name();
        if let Err(error) = service
            .vhost
            .delete_queue(&queue, false, false, service.connection)
            .await
        {
            tracing::debug!(queue, %error, "SNS subscription queue already gone");
        }
    }
    true
}

/// POSTs the SubscriptionConfirmation, trying a few times.
async fn send_confirmation(service: Arc<SnsService>, subscription: Subscription) {
    const ATTEMPTS: u32 = 3;
    let Some(token) = subscription
        .token
        .as_ref()
        .filter(|_| !subscription.confirmed)
    else {
        return;
    };
    let topic_arn = SnsService::topic_arn(&subscription.topic);
    let message_id = new_uuid();
    let version = service
        .topics
        .get(&subscription.topic)
        .and_then(|t| t.attributes.get("SignatureVersion").cloned())
        .and_then(|v| SignatureVersion::parse(&v))
        .unwrap_or_default();
    let document = Confirmation {
        message_id: &message_id,
        topic_arn: &topic_arn,
        token,
        timestamp: &iso_timestamp(now_ms()),
        host: &subscription.host,
    }
    .document(&service.signer, version);
    let headers = [
        ("x-amz-sns-message-type", "SubscriptionConfirmation"),
        ("x-amz-sns-message-id", message_id.as_str()),
        ("x-amz-sns-topic-arn", topic_arn.as_str()),
    ];
    let body = Bytes::from(document);
    for attempt in 1..=ATTEMPTS {
        let result = service
            .http
            .post(
                &subscription.endpoint,
                &headers,
                body.clone(),
                Duration::from_secs(15),
            )
            .await;
        match result {
            Ok(status) if (200..300).contains(&status) => return,
            Ok(status) => tracing::debug!(
                endpoint = subscription.endpoint,
                status,
                attempt,
                "confirmation refused"
            ),
            Err(error) => {
                tracing::debug!(endpoint = subscription.endpoint, %error, attempt, "confirmation not delivered")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub(super) async fn confirm(service: &Arc<SnsService>, params: &Params) -> Result<Value, SnsError> {
    let topic = service.topic(params.required("TopicArn")?)?;
    let token = params.required("Token")?;
    let found = service
        .subscriptions
        .values()
        .into_iter()
        .find(|s| s.topic == topic.name && s.token.as_deref() == Some(token));
    let Some(subscription) = found else {
        return Err(SnsError::invalid("Token"));
    };
    // Whoever flips the flag activates; a second visit of the link gets the same answer.
    let first = service.subscriptions.update(&subscription.arn, |s| {
        let first = !s.confirmed;
        s.confirmed = true;
        first
    });
    if first == Some(true)
        && let Err(error) = activate(service, &subscription).await
    {
        service
            .subscriptions
            .update(&subscription.arn, |s| s.confirmed = false);
        return Err(error);
    }
    Ok(json!({"SubscriptionArn": subscription.arn}))
}

pub(super) async fn unsubscribe(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let arn = params.required("SubscriptionArn")?;
    if !remove(service, arn).await {
        return Err(SnsError::no_subscription());
    }
    Ok(json!({}))
}

pub(super) fn list(
    service: &SnsService,
    params: &Params,
    topic: Option<&str>,
) -> Result<Value, SnsError> {
    let chosen: Vec<Subscription> = service
        .subscriptions
        .values()
        .into_iter()
        .filter(|s| topic.is_none_or(|t| s.topic == t))
        .collect();
    let (chosen, next) = super::page(chosen, params, PAGE)?;
    let items: Vec<Value> = chosen
        .iter()
        .map(|s| {
            json!({
                "SubscriptionArn": if s.confirmed() { s.arn.as_str() } else { PENDING },
                "Owner": ACCOUNT_ID,
                "Protocol": s.protocol,
                "Endpoint": s.endpoint,
                "TopicArn": SnsService::topic_arn(&s.topic),
            })
        })
        .collect();
    let mut result = json!({"Subscriptions": items});
    if let Some(next) = next {
        result["NextToken"] = Value::String(next);
    }
    Ok(result)
}

fn lookup(service: &SnsService, params: &Params) -> Result<Subscription, SnsError> {
    let arn = params.required("SubscriptionArn")?;
    // A subscription ARN is its topic's ARN and an id.
    let topic_part = arn.rsplit_once(':').map_or(arn, |(topic, _)| topic);
    topic_name(topic_part)?;
    service.subscription(arn)
}

pub(super) fn get_attributes(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let subscription = lookup(service, params)?;
    let mut attributes = Map::new();
    attributes.insert("SubscriptionArn".into(), subscription.arn.clone().into());
    attributes.insert(
        "TopicArn".into(),
        SnsService::topic_arn(&subscription.topic).into(),
    );
    attributes.insert("Owner".into(), ACCOUNT_ID.into());
    attributes.insert("Protocol".into(), subscription.protocol.clone().into());
    attributes.insert("Endpoint".into(), subscription.endpoint.clone().into());
    attributes.insert("ConfirmationWasAuthenticated".into(), "true".into());
    attributes.insert(
        "PendingConfirmation".into(),
        (!subscription.confirmed()).to_string().into(),
    );
    attributes.insert("RawMessageDelivery".into(), "false".into());
    for (key, value) in &subscription.attributes {
        attributes.insert(key.clone(), value.clone().into());
    }
    if attributes.contains_key("FilterPolicy") && !attributes.contains_key("FilterPolicyScope") {
        attributes.insert("FilterPolicyScope".into(), "MessageAttributes".into());
    }
    Ok(json!({"Attributes": attributes}))
}

pub(super) fn set_attributes(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let subscription = lookup(service, params)?;
    let name = params.required("AttributeName")?;
    let value = params.string("AttributeValue")?.unwrap_or("");
    check_attribute(
        service,
        &subscription.topic,
        Some(&subscription),
        name,
        value,
        &std::collections::BTreeMap::new(),
    )?;
    service.subscriptions.update(&subscription.arn, |s| {
        if value.is_empty() {
            s.attributes.remove(name);
        } else {
            s.attributes.insert(name.to_owned(), value.to_owned());
        }
    });
    Ok(json!({}))
}
