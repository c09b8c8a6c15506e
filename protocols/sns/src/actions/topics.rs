//! CreateTopic, DeleteTopic, ListTopics, GetTopicAttributes, SetTopicAttributes. Topic `t` is
//! the durable fanout exchange `t`; an exchange of that name that already exists (declared
//! over AMQP, of any type) becomes the topic as it is.

use std::collections::BTreeMap;
use std::sync::Arc;

use mqbridge_broker_api::{BrokerError, ExchangeKind, ExchangeSpec, Headers};
use serde_json::{Map, Value, json};

use crate::error::SnsError;
use crate::params::Params;
use crate::registry::Topic;
use crate::service::{ACCOUNT_ID, SnsService};

/// The attributes a client may set, on any topic.
const SETTABLE: &[&str] = &[
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "SignatureVersion",
    "TracingConfig",
    "KmsMasterKeyId",
    "DataProtectionPolicy",
    "ArchivePolicy",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPFailureFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "SQSSuccessFeedbackRoleArn",
    "SQSFailureFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
];
/// Only FIFO topics have these.
const FIFO_SETTABLE: &[&str] = &["ContentBasedDeduplication", "FifoThroughputScope"];
/// AWS's page size for ListTopics.
const PAGE: usize = 100;
const NAME_MAX: usize = 256;

pub(super) fn create(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let name = params.required("Name")?;
    let attributes: BTreeMap<String, String> =
        params.string_map("Attributes")?.into_iter().collect();
    let fifo = attributes
        .get("FifoTopic")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    check_name(name, fifo)?;
    for (key, value) in &attributes {
        check_attribute(key, value, fifo, true)?;
    }
    let tags = super::tags::parse(params)?;
    if let Some(existing) = service.topics.get(name) {
        if attributes
            .iter()
            .any(|(k, v)| existing.attributes.get(k) != Some(v))
        {
            return Err(SnsError::invalid(
                "Attributes Reason: Topic already exists with different attributes",
            ));
        }
        return Ok(json!({"TopicArn": SnsService::topic_arn(name)}));
    }
    declare_exchange(service, name)?;
    let mut topic = Topic {
        name: name.to_owned(),
        attributes,
        tags: tags.into_iter().collect(),
    };
    if fifo {
        topic.attributes.insert("FifoTopic".into(), "true".into());
    } else {
        topic.attributes.remove("FifoTopic");
    }
    service.topics.insert_new(name, topic);
    Ok(json!({"TopicArn": SnsService::topic_arn(name)}))
}

fn check_name(name: &str, fifo: bool) -> Result<(), SnsError> {
    let stem = if fifo {
        name.strip_suffix(".fifo")
    } else {
        Some(name)
    };
    let valid = stem.is_some_and(|stem| {
        !stem.is_empty()
            && name.len() <= NAME_MAX
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if valid {
        Ok(())
    } else if fifo {
        Err(SnsError::invalid(
            "Topic Name: Fifo Topic names must end with .fifo and must be made up of only \
             uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must \
             be between 1 and 256 characters long.",
        ))
    } else {
        Err(SnsError::invalid("Topic Name"))
    }
}

/// Checks one attribute; `creating` allows FifoTopic, which is set only at creation.
fn check_attribute(name: &str, value: &str, fifo: bool, creating: bool) -> Result<(), SnsError> {
    let known = SETTABLE.contains(&name)
        || (fifo && FIFO_SETTABLE.contains(&name))
        || (creating && name == "FifoTopic");
    if !known {
        return Err(SnsError::invalid(format!(
            "Attributes Reason: Unknown attribute {name}"
        )));
    }
    let valid = match name {
        "SignatureVersion" => matches!(value, "1" | "2"),
        "FifoTopic" | "ContentBasedDeduplication" => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        "FifoThroughputScope" => matches!(value, "Topic" | "MessageGroup"),
        "Policy" | "DeliveryPolicy" => serde_json::from_str::<Map<String, Value>>(value).is_ok(),
        _ => true,
    };
    if valid {
        Ok(())
    } else {
        Err(SnsError::invalid(format!(
            "Attributes Reason: {name}: invalid value"
        )))
    }
}

fn declare_exchange(service: &SnsService, name: &str) -> Result<(), SnsError> {
    let spec = ExchangeSpec {
        name: name.to_owned(),
        kind: ExchangeKind::Fanout,
        durable: true,
        auto_delete: false,
        internal: false,
        arguments: Headers::new(),
    };
    match service.vhost.declare_exchange(spec.clone(), true) {
        Ok(()) => Ok(()),
        Err(BrokerError::NotFound(_)) => {
            service
                .vhost
                .declare_exchange(spec, false)
                .map_err(|e| match e {
                    BrokerError::AccessRefused(_) => SnsError::invalid("Topic Name"),
                    other => other.into(),
                })
        }
        Err(BrokerError::AccessRefused(_)) => Err(SnsError::invalid("Topic Name")),
        Err(other) => Err(other.into()),
    }
}

pub(super) async fn delete(service: &Arc<SnsService>, params: &Params) -> Result<Value, SnsError> {
    let arn = params.required("TopicArn")?;
    let name = crate::service::topic_name(arn)?.to_owned();
    // Deleting a topic that is not there succeeds, as on AWS.
    let Some(topic) = service.topics.get(&name) else {
        return Ok(json!({}));
    };
    let subscriptions: Vec<String> = service
        .subscriptions
        .values()
        .into_iter()
        .filter(|s| s.topic == topic.name)
        .map(|s| s.arn)
        .collect();
    for arn in subscriptions {
        super::subscriptions::remove(service, &arn).await;
    }
    service.topics.remove(&name);
    match service.vhost.delete_exchange(&name, false) {
        Ok(()) | Err(BrokerError::NotFound(_)) => Ok(json!({})),
        Err(other) => Err(other.into()),
    }
}

pub(super) fn list(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let names: Vec<String> = service.topics.lock().keys().cloned().collect();
    let (names, next) = super::page(names, params, PAGE)?;
    let topics: Vec<Value> = names
        .iter()
        .map(|n| json!({"TopicArn": SnsService::topic_arn(n)}))
        .collect();
    let mut result = json!({"Topics": topics});
    if let Some(next) = next {
        result["NextToken"] = Value::String(next);
    }
    Ok(result)
}

pub(super) fn get_attributes(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let topic = service.topic(params.required("TopicArn")?)?;
    let arn = SnsService::topic_arn(&topic.name);
    let (mut confirmed, mut pending) = (0, 0);
    for subscription in service.subscriptions.values() {
        if subscription.topic == topic.name {
            if subscription.confirmed() {
                confirmed += 1;
            } else {
                pending += 1;
            }
        }
    }
    let mut attributes = Map::new();
    attributes.insert("TopicArn".into(), arn.clone().into());
    attributes.insert("Owner".into(), ACCOUNT_ID.into());
    attributes.insert("DisplayName".into(), "".into());
    attributes.insert("Policy".into(), default_policy(&arn).into());
    attributes.insert(
        "SubscriptionsConfirmed".into(),
        confirmed.to_string().into(),
    );
    attributes.insert("SubscriptionsPending".into(), pending.to_string().into());
    attributes.insert("SubscriptionsDeleted".into(), "0".into());
    attributes.insert(
        "EffectiveDeliveryPolicy".into(),
        EFFECTIVE_DELIVERY_POLICY.into(),
    );
    if topic.is_fifo() {
        attributes.insert("ContentBasedDeduplication".into(), "false".into());
    }
    for (key, value) in &topic.attributes {
        attributes.insert(key.clone(), value.clone().into());
    }
    Ok(json!({"Attributes": attributes}))
}

pub(super) fn set_attributes(service: &SnsService, params: &Params) -> Result<Value, SnsError> {
    let topic = service.topic(params.required("TopicArn")?)?;
    let name = params.required("AttributeName")?;
    let value = params.string("AttributeValue")?.unwrap_or("");
    check_attribute(name, value, topic.is_fifo(), false)?;
    service.topics.update(&topic.name, |t| {
        t.attributes.insert(name.to_owned(), value.to_owned());
    });
    Ok(json!({}))
}

const EFFECTIVE_DELIVERY_POLICY: &str = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#;

/// The policy AWS gives a new topic: the owner account may do everything.
fn default_policy(arn: &str) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                       "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                       "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT_ID}},
        }],
    })
    .to_string()
}
